use std::fmt;

use burn::tensor::backend::Backend;

use crate::scorer::{Inputs, Scorer};
use crate::Order;

/// How a layer's budget is shared among its KV heads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allocation {
    /// Every head keeps the same number of tokens.
    Uniform,
    /// AdaKV (Feng et al., 2024): each head keeps at least `max(1, ⌊α·keep⌋)` tokens and the rest
    /// of the layer's `kv_heads · keep` go to the best scores across its heads.
    Adaptive { alpha: f64 },
}

/// How the budget is shared among layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayerBudget {
    /// Every layer keeps the same number of tokens.
    Uniform,
    /// PyramidKV (Cai et al., 2024), with kvpress's formula: for a mean of `m` kept tokens, layer
    /// budgets fall linearly from `2m − m/β` (first layer) to `m/β` (last), the first capped at
    /// `context − window`; where the last would fall below the window `w`, the uniform budget.
    Pyramid { window: usize, beta: f64 },
    /// One budget pooled over every layer and head (KVzip's default): the `layers · kv_heads ·
    /// keep` best scores of the whole model are kept, so what each layer keeps follows its
    /// scores. Selected once for all layers ([`crate::KvCache::end_replay`]); a layer on its own
    /// keeps `keep`.
    Joint,
}

impl LayerBudget {
    /// Tokens per head that layer `layer` of `layers` keeps out of the `context` it holds, when
    /// the uniform budget keeps `keep` tokens, `mean` before rounding (a compression ratio's
    /// `context · (1 − ratio)`).
    pub fn keep(
        &self,
        layer: usize,
        layers: usize,
        context: usize,
        keep: usize,
        mean: f64,
    ) -> usize {
        let rounded = || (mean.round_ties_even() as usize).clamp(1, context.max(1));
        match *self {
            Self::Uniform | Self::Joint => keep,
            Self::Pyramid { window, beta } => {
                let (w, l) = (window as f64, context as f64);
                let mut min = mean / beta;
                let mut max = mean * 2.0 - min;
                if max >= l - w {
                    max = l - w;
                    min = mean * 2.0 - max;
                }
                if !(l >= max && max >= min && min >= w) {
                    return rounded();
                }
                let step = if layers > 1 {
                    (max - min) / (layers - 1) as f64
                } else {
                    0.0
                };
                ((max - layer as f64 * step).round_ties_even() as usize).clamp(1, context)
            }
        }
    }
}

/// An eviction policy: a scorer and the rules that turn scores into kept tokens.
pub struct Policy<B: Backend> {
    /// The policy as written (`snapkv:window=32`), for reports.
    pub spec: String,
    /// `None`: the full cache, nothing is ever evicted.
    pub scorer: Option<Box<dyn Scorer<B>>>,
    pub allocation: Allocation,
    pub layer_budget: LayerBudget,
    /// Tokens at positions below this are never evicted (attention sinks).
    pub sinks: usize,
    /// The most recent tokens are never evicted.
    pub recent: usize,
    /// A share of each layer's budget protected as recent tokens, on top of `recent` (H2O's
    /// recent window).
    pub recent_share: f64,
    /// The largest share of a layer's budget, after the sinks, that recent tokens are protected
    /// in (1: all of it). The sinks are never evicted to protect recent tokens.
    pub recent_cap: f64,
    /// Keep moments of the evicted tokens and correct attention with them (MomentKV's
    /// normalisation-corrected attention, [`crate::moment_attention`]).
    pub moments: bool,
    /// Terms the moments keep (when kept).
    pub order: Order,
    /// With moments: one summary per block of this many positions (0: one summary per head).
    pub segment: usize,
}

impl<B: Backend> Policy<B> {
    /// Keep everything.
    pub fn full() -> Self {
        Self {
            spec: "full".into(),
            scorer: None,
            allocation: Allocation::Uniform,
            layer_budget: LayerBudget::Uniform,
            sinks: 0,
            recent: 0,
            recent_share: 0.0,
            recent_cap: 1.0,
            moments: false,
            order: Order::First,
            segment: 0,
        }
    }

    /// A policy evicting by `scorer` with uniform budgets and no protected tokens (its spec is
    /// filled in by [`crate::PolicySpec::build`]).
    pub fn scored(scorer: impl Scorer<B> + 'static) -> Self {
        Self {
            spec: String::new(),
            scorer: Some(Box::new(scorer)),
            ..Self::full()
        }
    }

    pub fn evicts(&self) -> bool {
        self.scorer.is_some()
    }

    /// Whether the policy scores the prompt from replays of it (KVzip,
    /// [`Scorer::replay_chunk`]) and so evicts once, after them.
    pub fn replays(&self) -> bool {
        self.scorer
            .as_ref()
            .is_some_and(|s| s.replay_chunk().is_some())
    }

    /// What the policy reads beyond keys, values and positions: its scorer's declared inputs,
    /// plus the moments when it corrects attention with them.
    pub fn inputs(&self) -> Inputs {
        let declared = self.scorer.as_ref().map_or(Inputs::NONE, |s| s.inputs());
        Inputs {
            moments: declared.moments || self.moments,
            ..declared
        }
    }

    /// Recent tokens protected when a layer keeps `keep`: `max(recent, ⌊recent_share·keep⌋)`,
    /// at most `⌊recent_cap·(keep − sinks)⌋`.
    pub(crate) fn protected_recent(&self, keep: usize) -> usize {
        let room = (self.recent_cap * keep.saturating_sub(self.sinks) as f64) as usize;
        self.recent
            .max((self.recent_share * keep as f64) as usize)
            .min(room)
    }

    /// Whether evicted tokens are summarised: to correct attention, or for a scorer that reads
    /// the summary.
    pub(crate) fn keeps_moments(&self) -> bool {
        self.inputs().moments
    }
}

impl<B: Backend> fmt::Debug for Policy<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("spec", &self.spec)
            .field("allocation", &self.allocation)
            .field("layer_budget", &self.layer_budget)
            .field("sinks", &self.sinks)
            .field("recent", &self.recent)
            .field("recent_share", &self.recent_share)
            .field("recent_cap", &self.recent_cap)
            .field("moments", &self.moments)
            .field("order", &self.order)
            .field("segment", &self.segment)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_budgets_fall_linearly_and_average_to_the_uniform_budget() {
        let p = LayerBudget::Pyramid {
            window: 4,
            beta: 20.0,
        };
        let keeps: Vec<usize> = (0..5).map(|l| p.keep(l, 5, 1000, 100, 100.0)).collect();
        // min = 100/20 = 5 ≥ window; max = 200 − 5 = 195; ties round to even like Python.
        assert_eq!(keeps, vec![195, 148, 100, 52, 5]);
        assert_eq!(keeps.iter().sum::<usize>(), 500);
    }

    #[test]
    fn capped_and_infeasible_pyramids_match_kvpress() {
        let p = LayerBudget::Pyramid {
            window: 64,
            beta: 20.0,
        };
        // kvpress on 2 layers, 240 tokens, ratio 0.5: max capped at 240 − 64, min = 240 − 176.
        assert_eq!(p.keep(0, 2, 240, 120, 120.0), 176);
        assert_eq!(p.keep(1, 2, 240, 120, 120.0), 64);
        // Ratio 0.75: min = 60/20 < window, so the rounded uniform budget.
        assert_eq!(p.keep(0, 2, 240, 60, 60.0), 60);
        assert_eq!(p.keep(1, 2, 240, 60, 60.0), 60);
    }
}
