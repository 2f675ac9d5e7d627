use burn::tensor::backend::Backend;

use super::Entry;
use crate::params::Args;
use crate::scorer::{host, Observation, Scorer};
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "knorm",
    aliases: &[],
    summary: "KNorm: keep keys with small L2 norm",
    params: &[],
    plain_scorer: true,
    kvpress: &[("knorm", "knorm")],
};

pub fn build<B: Backend>(_: &mut Args) -> Result<Policy<B>, CacheError> {
    Ok(Policy::scored(KNorm))
}

/// KNorm (Devoto et al., 2024): keys with a small L2 norm draw attention, so the score is
/// `−‖k_j‖₂`.
#[derive(Debug, Clone)]
pub struct KNorm;

impl<B: Backend> Scorer<B> for KNorm {
    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        host(obs.keys.clone().powi_scalar(2).sum_dim(3).sqrt().neg())
    }
}
