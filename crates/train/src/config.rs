use momentkv_transformer::{AdapterTarget, LoraConfig};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// The settings of a LoRA fine-tuning run, named as `momentkv finetune`'s flags. The defaults
/// ([`FinetuneConfig::default`]) suit the default model (SmolLM2-135M) on a CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneConfig {
    /// Optimizer steps to train for, `T`.
    pub steps: usize,
    /// Sequences per micro-batch.
    pub batch: usize,
    /// Tokens per sequence: the window plain text is packed into, the length JSONL rows are cut to.
    pub seq_len: usize,
    /// Peak learning rate of AdamW.
    pub lr: f64,
    /// Steps of linear warmup, `w` ([`crate::WarmupCosine`]).
    pub warmup: usize,
    /// Micro-batches per optimizer step; their gradients are averaged per scored token.
    pub grad_accum: usize,
    /// The largest global gradient norm ([`crate::clip`]); 0 turns clipping off.
    pub max_grad_norm: f64,
    /// Held-out loss every this many steps (and at the start and the end); 0: start and end only.
    pub eval_every: usize,
    /// Checkpoint every this many steps (and at the end); 0: at the end only.
    pub save_every: usize,
    /// Seeds the adapter's initialisation, the data order and dropout.
    pub seed: u64,
    /// The adapter: rank, alpha, dropout, targets.
    pub lora: LoraConfig,
}

impl Default for FinetuneConfig {
    /// 100 steps of 4 × 256 tokens at 2e-4, no warmup, gradients clipped at norm 1, held-out
    /// loss every 50 steps, a checkpoint every 100; a rank-8 adapter with alpha 16 and dropout
    /// 0.05 on all seven projections.
    fn default() -> Self {
        Self {
            steps: 100,
            batch: 4,
            seq_len: 256,
            lr: 2e-4,
            warmup: 0,
            grad_accum: 1,
            max_grad_norm: 1.0,
            eval_every: 50,
            save_every: 100,
            seed: 0,
            lora: LoraConfig::new(8, 16.0)
                .with_dropout(0.05)
                .with_targets(AdapterTarget::ALL.to_vec()),
        }
    }
}

impl FinetuneConfig {
    /// Checks every setting, naming the first one at fault.
    pub fn validate(&self) -> Result<(), TrainError> {
        let at_least_one = [
            ("steps", self.steps),
            ("batch", self.batch),
            ("grad_accum", self.grad_accum),
        ];
        for (name, value) in at_least_one {
            if value == 0 {
                return Err(TrainError::setting(name, "(0) must be at least 1"));
            }
        }
        if self.seq_len < 2 {
            return Err(TrainError::setting(
                "seq_len",
                format!(
                    "({}) must be at least 2: a sequence needs a token and its successor",
                    self.seq_len
                ),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::setting(
                "lr",
                format!("({}) must be a positive number", self.lr),
            ));
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm >= 0.0) {
            return Err(TrainError::setting(
                "max_grad_norm",
                format!(
                    "({}) must be a number at least 0 (0 turns clipping off)",
                    self.max_grad_norm
                ),
            ));
        }
        self.lora
            .validate()
            .map_err(|e| TrainError::Model(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_settings_are_named() {
        FinetuneConfig::default().validate().unwrap();
        let cases = [
            (
                FinetuneConfig {
                    steps: 0,
                    ..FinetuneConfig::default()
                },
                "steps (0)",
            ),
            (
                FinetuneConfig {
                    seq_len: 1,
                    ..FinetuneConfig::default()
                },
                "seq_len (1) must be at least 2",
            ),
            (
                FinetuneConfig {
                    lr: f64::NAN,
                    ..FinetuneConfig::default()
                },
                "lr (NaN)",
            ),
            (
                FinetuneConfig {
                    lora: LoraConfig::new(0, 16.0),
                    ..FinetuneConfig::default()
                },
                "rank (0)",
            ),
        ];
        for (config, want) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
