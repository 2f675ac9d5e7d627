use burn::tensor::backend::Backend;

use super::Entry;
use crate::params::{Args, Param, MAX_POSITIONS};
use crate::scorer::{Observation, Scorer};
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "streaming",
    aliases: &["streamingllm", "streaming_llm"],
    summary: "StreamingLLM: attention sinks plus the most recent tokens",
    params: &[Param::count(
        "sinks",
        4,
        0,
        MAX_POSITIONS,
        "tokens at the start that are never evicted",
    )],
    plain_scorer: true,
    kvpress: &[("streaming_llm", "streaming")],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    Ok(Policy {
        sinks: args.count("sinks")?,
        ..Policy::scored(Streaming)
    })
}

/// StreamingLLM (Xiao et al., 2024): attention sinks plus the most recent tokens. The score is
/// the position (recent first); the sinks are protected by the policy's `sinks`.
#[derive(Debug, Clone)]
pub struct Streaming;

impl<B: Backend> Scorer<B> for Streaming {
    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        obs.positions.iter().map(|&p| p as f32).collect()
    }
}
