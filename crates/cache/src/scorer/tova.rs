use burn::tensor::backend::Backend;

use super::{host, Observation, QueryNeed, Scorer};

/// TOVA (Oren et al., 2024): the attention the newest query pays each token, averaged over all
/// query heads of the layer, one ranking shared by every head. The newest token is protected by
/// the policy (`recent = 1`).
#[derive(Debug, Clone, Default)]
pub struct Tova;

impl<B: Backend> Scorer<B> for Tova {
    fn queries(&self) -> QueryNeed {
        QueryNeed::Recent(1)
    }

    fn shared_across_heads(&self) -> bool {
        true
    }

    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        let [b, kv, t] = obs.dims();
        let g = obs.geometry.group();
        // [b, kv, g, t] → mean over every query head → [b, 1, t], repeated for each KV head.
        let shared = obs
            .window_weights(1, "TOVA")
            .reshape([b, kv * g, t])
            .mean_dim(1);
        host(shared.repeat_dim(1, kv))
    }
}
