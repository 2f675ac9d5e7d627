use burn::tensor::backend::Backend;

use super::Entry;
use crate::params::Args;
use crate::scorer::{host, Observation, Scorer};
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "keydiff",
    aliases: &[],
    summary: "KeyDiff: keep keys least similar to the mean key direction",
    params: &[],
    plain_scorer: true,
    kvpress: &[("keydiff", "keydiff")],
};

pub fn build<B: Backend>(_: &mut Args) -> Result<Policy<B>, CacheError> {
    Ok(Policy::scored(KeyDiff))
}

/// KeyDiff (Park et al., 2025): keep keys that differ from the rest. With the anchor
/// `a = mean_j k_j/‖k_j‖` over the head's tokens, the score is `−cos(k_j, a)`.
#[derive(Debug, Clone)]
pub struct KeyDiff;

impl<B: Backend> Scorer<B> for KeyDiff {
    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        let keys = obs.keys.clone();
        let norms = keys
            .clone()
            .powi_scalar(2)
            .sum_dim(3)
            .sqrt()
            .clamp_min(1e-12);
        let unit = keys / norms;
        // The anchor averages valid slots only: padding contributes zeros and is not counted.
        let valid = obs.slot_mask(|i| obs.valid[i]).unsqueeze_dim::<4>(3);
        let count = valid.clone().sum_dim(2);
        let anchor = (unit.clone() * valid).sum_dim(2) / count;
        let anchor_norm = anchor
            .clone()
            .powi_scalar(2)
            .sum_dim(3)
            .sqrt()
            .clamp_min(1e-12);
        let anchor = anchor / anchor_norm;
        host((unit * anchor).sum_dim(3).neg())
    }
}
