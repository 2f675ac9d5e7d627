use burn::tensor::{backend::Backend, module::avg_pool1d};

use super::{host, Observation, QueryNeed, Scorer};

/// SnapKV (Li et al., 2024), as kvpress computes it: the attention the last `window` queries pay
/// each earlier token, averaged over the window, smoothed by a 1-D average pool of width
/// `kernel` (zero padding), then averaged over the query group. The window's own tokens are
/// protected by the policy (`recent = window`).
#[derive(Debug, Clone)]
pub struct SnapKv {
    pub window: usize,
    /// Odd pooling width.
    pub kernel: usize,
}

impl Default for SnapKv {
    fn default() -> Self {
        Self {
            window: 64,
            kernel: 5,
        }
    }
}

impl<B: Backend> Scorer<B> for SnapKv {
    fn queries(&self) -> QueryNeed {
        QueryNeed::Recent(self.window)
    }

    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        let [b, kv, t] = obs.dims();
        let weights = obs.window_weights(self.window, "SnapKV");
        let [_, _, rows, _] = weights.dims();
        let g = obs.geometry.group();
        let w = rows / g;
        let window_start = (obs.seen - w) as u32;
        // Mean over the window's queries, per query head: [b·kv, g, t].
        let per_head = weights
            .reshape([b * kv * g, w, t])
            .mean_dim(1)
            .reshape([b * kv, g, t]);
        // Only tokens before the window are scored; the window's columns pool as zero padding.
        let before = obs
            .slot_mask(|i| obs.valid[i] && obs.positions[i] < window_start)
            .reshape([b * kv, 1, t]);
        let pad = self.kernel / 2;
        let pooled = avg_pool1d(per_head * before, self.kernel, 1, pad, true, false);
        host(pooled.mean_dim(1))
    }
}
