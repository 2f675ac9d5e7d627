use burn::tensor::backend::Backend;

use super::Entry;
use crate::params::{Args, Param, MAX_POSITIONS};
use crate::scorer::{host, Inputs, Observation, QueryNeed, Scorer};
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "tova",
    aliases: &[],
    summary: "TOVA: attention of the newest query, averaged over all heads",
    params: &[Param::count(
        "recent",
        1,
        0,
        MAX_POSITIONS,
        "most recent tokens that are never evicted",
    )],
    plain_scorer: true,
    kvpress: &[("tova", "tova")],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    Ok(Policy {
        recent: args.count("recent")?,
        ..Policy::scored(Tova)
    })
}

/// TOVA (Oren et al., 2024): the attention the newest query pays each token, averaged over all
/// query heads of the layer, one ranking shared by every head. The newest token is protected by
/// the policy (`recent = 1`).
#[derive(Debug, Clone)]
pub struct Tova;

impl<B: Backend> Scorer<B> for Tova {
    fn inputs(&self) -> Inputs {
        Inputs {
            queries: QueryNeed::Recent(1),
            ..Inputs::NONE
        }
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
