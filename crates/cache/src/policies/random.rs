use burn::config::Config;
use burn::tensor::backend::Backend;

use super::Entry;
use crate::params::{Args, Param};
use crate::scorer::{Observation, Scorer};
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "random",
    aliases: &[],
    summary: "random scores: the floor any policy must beat",
    params: &[Param::count("seed", 0, 0, usize::MAX, "seed of the scores")],
    plain_scorer: true,
    kvpress: &[],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    Ok(Policy::scored(Random {
        seed: args.count("seed")? as u64,
    }))
}

/// Uniformly random scores: the floor every other policy must beat.
///
/// Scores are a hash of `(seed, layer, head, position)`, so a token keeps its score across
/// evictions and runs repeat exactly.
#[derive(Config, Debug)]
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
