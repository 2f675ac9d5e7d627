use burn::tensor::backend::Backend;

use super::{Observation, Scorer};

/// StreamingLLM (Xiao et al., 2024): attention sinks plus the most recent tokens. The score is
/// the position (recent first); the sinks are protected by the policy's `sinks`.
#[derive(Debug, Clone, Default)]
pub struct StreamingLlm;

impl<B: Backend> Scorer<B> for StreamingLlm {
    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        obs.positions.iter().map(|&p| p as f32).collect()
    }
}
