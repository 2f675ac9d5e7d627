//! A test-only policy (feature `testing`): KNorm's score computed on the host, one slot at a time.
//! It exists to show that a policy is one file and one registry line: `momentkv policies`, the
//! parser, the kvpress parity test and the fork tests pick it up with no other edit.

use burn::tensor::backend::Backend;

use super::Entry;
use crate::params::Args;
use crate::scorer::{host, Observation, Scorer};
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "probe",
    aliases: &[],
    summary: "test only: KNorm's scores, −‖k‖₂, computed on the host slot by slot",
    params: &[],
    plain_scorer: true,
    kvpress: &[("knorm", "probe")],
};

pub fn build<B: Backend>(_: &mut Args) -> Result<Policy<B>, CacheError> {
    Ok(Policy::scored(Probe))
}

/// `−‖k_j‖₂`, summed in f64 on the host.
#[derive(Debug, Clone)]
pub struct Probe;

impl<B: Backend> Scorer<B> for Probe {
    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        let d = obs.keys.dims()[3];
        host(obs.keys.clone())
            .chunks(d)
            .map(|k| -k.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt() as f32)
            .collect()
    }
}
