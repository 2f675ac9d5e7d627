use burn::tensor::backend::Backend;

use super::{Observation, Scorer};

/// Uniformly random scores: the floor every other policy must beat.
///
/// Scores are a hash of `(seed, layer, head, position)`, so a token keeps its score across
/// evictions and runs repeat exactly.
#[derive(Debug, Clone, Default)]
pub struct Random {
    pub seed: u64,
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<B: Backend> Scorer<B> for Random {
    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        let [_, kv, t] = obs.dims();
        obs.positions
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let head = ((i / t) % kv) as u64;
                let key =
                    mix(self.seed ^ mix(((obs.layer as u64) << 40) ^ (head << 32) ^ p as u64));
                (key >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect()
    }
}
