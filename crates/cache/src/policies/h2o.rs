use burn::config::Config;
use burn::tensor::backend::Backend;

use super::Entry;
use crate::params::{Args, Param};
use crate::scorer::{host, Inputs, Observation, Scorer};
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "h2o",
    aliases: &["observed", "observed_attention"],
    summary: "H2O heavy hitters: accumulated attention received, plus a recent window",
    params: &[
        Param::real(
            "recent_share",
            0.5,
            0.0,
            1.0,
            "share of the budget protected as recent tokens",
        ),
        Param::flag(
            "normalize",
            false,
            "divide by the number of queries that saw the token (kvpress ObservedAttention)",
        ),
    ],
    plain_scorer: true,
    // kvpress's ObservedAttentionPress is H2O's score normalised by the queries that saw each
    // token, without H2O's protected recent window.
    kvpress: &[("observed_attention", "h2o:recent_share=0,normalize=true")],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    let recent_share = args.real("recent_share")?;
    let normalize = args.flag("normalize")?;
    Ok(Policy {
        recent_share,
        ..Policy::scored(H2o { normalize })
    })
}

/// H2O's heavy hitters (Zhang et al., 2023): the attention a token has received, accumulated
/// over every query since it entered the cache and averaged over the query group.
///
/// With `normalize` (kvpress's `ObservedAttentionPress`), the sum is divided by the number of
/// queries that could see the token, `seen − position`, so early tokens are not favoured just for
/// being old; without it, the plain sum of the H2O paper.
#[derive(Config, Debug)]
pub struct H2o {
    pub normalize: bool,
}

impl<B: Backend> Scorer<B> for H2o {
    fn inputs(&self) -> Inputs {
        Inputs {
            mass: true,
            ..Inputs::NONE
        }
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
