//! MomentKV's moment-informed eviction score: how much error a token would add to the corrected
//! attention ([`crate::moment_attention`]) if it joined the evicted set.
//!
//! Expanding `e^{a·k}` to first order around the evicted key mean `μ` leaves, for each evicted
//! token `j` and scaled query `a`, exactly the Taylor remainder
//!
//! ```text
//! r_j(a) = e^{a·k_j} − e^{a·μ} (1 + a·(k_j − μ)) = e^{a·μ} (e^x − 1 − x) ≥ 0,   x = a·(k_j − μ)
//! ```
//!
//! The corrected numerator and denominator miss `Σ_E r_j v_j` and `Σ_E r_j`, so the output error
//! is `o − ô = Σ_E r_j (v_j − ô) / D` (`D` the true denominator). A token's score is its term of
//! that sum on the observation window's queries, `mean_q r_j(a_q) ‖v_j − o_q‖ / D_q`, with `o_q`
//! and `D_q` the attention output and denominator over the held tokens; then, as SnapKV does,
//! pooled over neighbouring positions and averaged over the query group. Low scores are evicted:
//! tokens the summary already captures (near `μ` in the queries' directions, or with values near
//! the output), whatever their attention. Strongly attended tokens score about their attention
//! weight times `‖v_j − o_q‖`, SnapKV's importance; tokens far below the mean score high too, as
//! the linear term would give them a negative weight.
//!
//! `μ` is the mean the summary will have after this eviction: the stored mean merged with the
//! mean of the held keys, weighted by how many tokens this eviction removes (`held − keep`).

use burn::config::Config;
use burn::tensor::{backend::Backend, Tensor, TensorData};

use super::snapkv::SnapKv;
use super::{Entry, KERNEL, PRESET, WINDOW};
use crate::params::{Args, Param};
use crate::scorer::{Inputs, Observation, QueryNeed, Scorer};
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "momentkv",
    aliases: &["moment", "mi"],
    summary: "MomentKV: evict tokens the moments of the evicted set already capture (each \
              token's first-order error on the window's queries), and correct attention with \
              those moments",
    params: &[
        WINDOW,
        KERNEL,
        PRESET,
        Param::count(
            "refine",
            1,
            0,
            8,
            "re-estimates of the summary mean from the eviction the scores imply",
        ),
        Param::flag(
            "correct",
            true,
            "correct attention with the moments (false: moment-informed eviction alone)",
        ),
    ],
    plain_scorer: true,
    kvpress: &[],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    let (SnapKv { window, kernel }, preset) = SnapKv::read(args)?;
    let refine = args.count("refine")?;
    let correct = args.flag("correct")?;
    Ok(preset.protect(
        window,
        Policy {
            moments: correct,
            ..Policy::scored(MomentKv {
                window,
                kernel,
                refine,
            })
        },
    ))
}

/// The moment-informed score over the last `window` queries, pooled with odd width `kernel`.
#[derive(Config, Debug)]
pub struct MomentKv {
    pub window: usize,
    pub kernel: usize,
    pub refine: usize,
}

impl MomentKv {
    /// `μ` `[batch, kv_heads, 1, head_dim]`: the stored evicted mean merged with the mean of the
    /// held keys whose `leaving` weight is 1 `[batch, kv_heads, t, 1]`.
    fn summary_mean<B: Backend>(obs: &Observation<B>, leaving: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, kv, _] = obs.dims();
        let device = obs.keys.device();
        let leaving_sum = (obs.keys.clone() * leaving.clone()).sum_dim(2);
        let leaving_count = leaving.sum_dim(2);
        let (count, mean) = match obs.moments {
            Some(m) => m.pooled_key_mean(),
            None => (
                Tensor::zeros([b, kv, 1, 1], &device),
                Tensor::zeros([b, kv, 1, obs.keys.dims()[3]], &device),
            ),
        };
        (mean * count.clone() + leaving_sum) / (count + leaving_count).clamp_min(1.0)
    }

    /// The slots about to leave `[batch, kv_heads, t, 1]` if `scores` were final: of each
    /// head's slots before the window, all but the `keep − window` best.
    fn leaving<B: Backend>(
        obs: &Observation<B>,
        scores: &[f32],
        window_start: u32,
    ) -> Tensor<B, 4> {
        let [b, kv, t] = obs.dims();
        let stay = obs.keep.saturating_sub(obs.seen - window_start as usize);
        let mut leaving = vec![0f32; b * kv * t];
        for row in 0..b * kv {
            let mut before: Vec<usize> = (row * t..(row + 1) * t)
                .filter(|&i| obs.valid[i] && obs.positions[i] < window_start)
                .collect();
            before.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]));
            for &i in before.iter().skip(stay) {
                leaving[i] = 1.0;
            }
        }
        Tensor::from_data(TensorData::new(leaving, [b, kv, t, 1]), &obs.keys.device())
    }

    /// Scores `[batch, kv_heads, t]` for the summary mean `mu`.
    fn scores<B: Backend>(&self, obs: &Observation<B>, mu: Tensor<B, 4>) -> Vec<f32> {
        let t = obs.dims()[2];
        let (logits, hidden, a) = obs.window_logits(self.window, "MomentKV");
        // a·μ per query row, [b, kv, rows, 1].
        let centre = a.matmul(mu.swap_dims(2, 3));
        let seen_logits = logits.clone().mask_fill(hidden.clone(), f32::NEG_INFINITY);
        let max = seen_logits.clone().max_dim(3).max_pair(centre.clone());
        let weights = (seen_logits - max.clone()).exp();
        let denominator = weights.clone().sum_dim(3);
        let output = weights.matmul(obs.values.clone()) / denominator.clone();
        // Hidden slots sit at the centre, where the remainder is 0.
        let logits = logits.mask_where(hidden, centre.clone().repeat_dim(3, t));
        let x = logits.clone() - centre.clone();
        let remainder =
            ((logits - max.clone()).exp() - (centre - max).exp() * (x + 1.0)).clamp_min(0.0);
        // ‖v_j − o_q‖ = sqrt(‖v_j‖² − 2 o_q·v_j + ‖o_q‖²), [b, kv, rows, t].
        let value_sq = obs.values.clone().powi_scalar(2).sum_dim(3).swap_dims(2, 3);
        let output_sq = output.clone().powi_scalar(2).sum_dim(3);
        let distance = (value_sq
            - output
                .matmul(obs.values.clone().swap_dims(2, 3))
                .mul_scalar(2.0)
            + output_sq)
            .clamp_min(0.0)
            .sqrt();
        obs.pool_window(remainder * distance / denominator, self.kernel)
    }
}

impl<B: Backend> Scorer<B> for MomentKv {
    fn inputs(&self) -> Inputs {
        Inputs {
            queries: QueryNeed::Recent(self.window),
            moments: true,
            ..Inputs::NONE
        }
    }

    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        let [b, kv, t] = obs.dims();
        let w = obs
            .queries
            .as_ref()
            .map_or(0, |q| q.dims()[2])
            .min(self.window);
        let window_start = (obs.seen - w) as u32;
        let all = obs.slot_mask(|i| obs.valid[i] && obs.positions[i] < window_start);
        let mut scores = self.scores(obs, Self::summary_mean(obs, all.reshape([b, kv, t, 1])));
        for _ in 0..self.refine {
            let leaving = Self::leaving(obs, &scores, window_start);
            scores = self.scores(obs, Self::summary_mean(obs, leaving));
        }
        scores
    }
}
