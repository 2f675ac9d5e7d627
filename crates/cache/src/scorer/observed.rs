use burn::tensor::backend::Backend;

use super::{host, Observation, Scorer};

/// H2O's heavy hitters (Zhang et al., 2023): the attention a token has received, accumulated
/// over every query since it entered the cache and averaged over the query group.
///
/// With `normalize` (kvpress's `ObservedAttentionPress`), the sum is divided by the number of
/// queries that could see the token, `seen − position`, so early tokens are not favoured just for
/// being old; without it, the plain sum of the H2O paper.
#[derive(Debug, Clone)]
pub struct ObservedAttention {
    pub normalize: bool,
}

impl<B: Backend> Scorer<B> for ObservedAttention {
    fn needs_mass(&self) -> bool {
        true
    }

    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        let mass = host(
            obs.mass
                .clone()
                .expect("the cache accumulates attention mass for H2O"),
        );
        if !self.normalize {
            return mass;
        }
        mass.iter()
            .zip(obs.positions)
            .map(|(&m, &p)| m / (obs.seen - p as usize).max(1) as f32)
            .collect()
    }
}
