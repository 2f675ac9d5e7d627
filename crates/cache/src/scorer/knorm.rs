use burn::tensor::backend::Backend;

use super::{host, Observation, Scorer};

/// KNorm (Devoto et al., 2024): keys with a small L2 norm draw attention, so the score is
/// `−‖k_j‖₂`.
#[derive(Debug, Clone, Default)]
pub struct KNorm;

impl<B: Backend> Scorer<B> for KNorm {
    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        host(obs.keys.clone().powi_scalar(2).sum_dim(3).sqrt().neg())
    }
}
