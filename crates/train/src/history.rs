//! What a run records per step and per held-out evaluation, kept in its checkpoints so that a
//! resumed run reports and plots the whole run.

use momentkv_eval::plot::{LinePlot, Series};
use serde::{Deserialize, Serialize};

/// One optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The steps taken once this one is (1 for the first).
    pub step: usize,
    /// The mean next-token cross-entropy over the step's scored targets, in nats: the
    /// micro-batches' losses weighted by their targets.
    pub loss: f64,
    /// The learning rate the step ran at.
    pub lr: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// The real (unpadded) tokens the step read.
    pub tokens: usize,
    /// Seconds from the step's first forward pass to its update (evaluation and saving excluded).
    pub seconds: f64,
}

/// One held-out evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// The steps taken before it (0: the model before training).
    pub step: usize,
    /// The mean next-token cross-entropy over every scored target of the held-out data, in nats.
    pub loss: f64,
}

/// The records of a run, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub steps: Vec<StepRecord>,
    pub evals: Vec<EvalRecord>,
}

impl History {
    /// Training tokens per second over every recorded step: `Σ tokens / Σ seconds`.
    pub fn tokens_per_s(&self) -> Option<f64> {
        let seconds: f64 = self.steps.iter().map(|s| s.seconds).sum();
        let tokens: usize = self.steps.iter().map(|s| s.tokens).sum();
        (seconds > 0.0).then(|| tokens as f64 / seconds)
    }

    /// The loss curve: the training loss per step and the held-out loss where it was measured.
    pub fn plot(&self) -> LinePlot {
        let mut series = vec![Series {
            name: "train".into(),
            points: self.steps.iter().map(|s| (s.step as f64, s.loss)).collect(),
        }];
        if !self.evals.is_empty() {
            series.push(Series {
                name: "held-out".into(),
                points: self.evals.iter().map(|e| (e.step as f64, e.loss)).collect(),
            });
        }
        LinePlot {
            title: "Fine-tuning loss".into(),
            x_label: "step".into(),
            y_label: "loss (nats per token)".into(),
            series,
            x_at_data: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: usize, loss: f64) -> StepRecord {
        StepRecord {
            step,
            loss,
            lr: 1e-4,
            grad_norm: 1.0,
            tokens: 100,
            seconds: 0.5,
        }
    }

    #[test]
    fn speed_and_plot_cover_every_record() {
        let history = History {
            steps: vec![record(1, 3.0), record(2, 2.5)],
            evals: vec![EvalRecord { step: 0, loss: 3.2 }],
        };
        assert_eq!(history.tokens_per_s(), Some(200.0));
        assert_eq!(History::default().tokens_per_s(), None);
        let svg = history.plot().svg();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("held-out") && svg.contains("Fine-tuning loss"));
        let json = serde_json::to_string(&history).unwrap();
        assert_eq!(serde_json::from_str::<History>(&json).unwrap(), history);
    }
}
