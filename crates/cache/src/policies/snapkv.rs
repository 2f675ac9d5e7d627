use burn::config::Config;
use burn::tensor::backend::Backend;

use super::{Entry, Preset, KERNEL, PRESET, WINDOW};
use crate::params::Args;
use crate::scorer::{Inputs, Observation, QueryNeed, Scorer};
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "snapkv",
    aliases: &[],
    summary: "SnapKV: pooled attention of the last window of queries, mean over the query group",
    params: &[WINDOW, KERNEL, PRESET],
    plain_scorer: true,
    kvpress: &[("snapkv", "snapkv:preset=kvpress")],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    let (scorer, preset) = SnapKv::read(args)?;
    Ok(preset.protect(scorer.window, Policy::scored(scorer)))
}

/// SnapKV (Li et al., 2024), as kvpress computes it: the attention the last `window` queries pay
/// each earlier token, averaged over the window, smoothed by a 1-D average pool of width
/// `kernel` (zero padding), then averaged over the query group. The window's own tokens are
/// protected by the policy (`recent = window`).
#[derive(Config, Debug)]
pub struct SnapKv {
    pub window: usize,
    /// Odd pooling width.
    pub kernel: usize,
}

impl SnapKv {
    /// `window` and `kernel` as given, else the preset's (the policies built on SnapKV's window
    /// read them too), with the preset.
    pub(crate) fn read(args: &mut Args) -> Result<(Self, Preset), CacheError> {
        let preset = Preset::read(args)?;
        let scorer = Self {
            window: args.count_or("window", preset.window())?,
            kernel: args.count_or("kernel", preset.kernel())?,
        };
        Ok((scorer, preset))
    }
}

impl<B: Backend> Scorer<B> for SnapKv {
    fn inputs(&self) -> Inputs {
        Inputs {
            queries: QueryNeed::Recent(self.window),
            ..Inputs::NONE
        }
    }

    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        obs.pool_window(obs.window_weights(self.window, "SnapKV"), self.kernel)
    }
}
