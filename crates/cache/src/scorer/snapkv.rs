use burn::tensor::backend::Backend;

use super::{Observation, QueryNeed, Scorer};

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
        obs.pool_window(obs.window_weights(self.window, "SnapKV"), self.kernel)
    }
}
