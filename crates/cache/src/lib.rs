//! KV caches for momentkv.
//!
//! A model reaches its cache only through [`KvCache`]: it announces how many new tokens a forward
//! pass carries and whether they are prompt or generated ([`KvCache::prepare`]), then hands each
//! layer's post-RoPE queries, keys and values to [`KvCache::attend`], which stores what it keeps
//! and returns the attention output. What is kept, and how attention over it is computed, is the
//! cache's business, so eviction policies and corrected attention plug in here without the model
//! knowing.
//!
//! - [`FullCache`]: keeps everything (the exact baseline).
//! - [`analysis::AnalyzingCache`]: an evicting cache measured against the full cache, layer by
//!   layer.
//! - [`PrefillRecord`]: one prompt pass recorded, so that each policy evicts from a fork of it
//!   ([`EvictingCache::fork`]) without prefilling again.
//! - [`EvictingCache`]: holds at most a [`Budget`] of tokens per KV head, choosing what to evict
//!   with a [`Policy`] (a [`Scorer`] plus selection rules) at the moments an [`EvictAt`] names.
//!   It is built from a [`ModelContext`]: what it knows of the model (geometry, and the weights
//!   policies read) is fixed then, so a model only prepares and attends.
//! - [`policies`]: the registry, one file per policy; [`PolicySpec`] parses
//!   `name[+moments][:key=value,...]` against it.

pub mod analysis;
mod attention;
mod budget;
mod context;
mod error;
mod evicting;
mod full;
mod geometry;
mod moment_attention;
mod params;
mod pass;
pub mod policies;
mod policy;
mod record;
pub mod scorer;
mod select;
mod spec;
mod store;

pub use attention::{attention_with_mass, masked_attention};
pub use budget::{Budget, EvictAt};
pub use context::ModelContext;
pub use error::CacheError;
pub use evicting::EvictingCache;
pub use full::FullCache;
pub use geometry::Geometry;
pub use moment_attention::moment_attention;
pub use momentkv_kernels::{Moments, Order};
pub use params::{Args, Kind, Param, COMMON_PARAMS, MAX_POSITIONS};
pub use policies::{Entry, POLICIES};
pub use policy::{Allocation, LayerBudget, Policy};
pub use record::PrefillRecord;
pub use scorer::{Inputs, Observation, QueryNeed, Scorer};
pub use select::{select, Selection};
pub use spec::{PolicySpec, MAX_SUMMARIES, MIN_SEGMENT};

use burn::tensor::Tensor;
use momentkv_kernels::KernelBackend;

/// Whether a forward pass carries prompt tokens, generated ones, or a replay of the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Prompt tokens, the whole prompt or one chunk of it.
    Prefill,
    /// Generated tokens, usually one per pass.
    Decode,
    /// A context-reconstruction pass (KVzip): the model re-reads prompt positions `from..to`
    /// after a repeat instruction, attending over everything the cache holds; the cache scores
    /// what it holds from this pass's queries and keeps none of its tokens. Its tokens take the
    /// positions after the prompt, and the next pass takes them again.
    Replay { from: usize, to: usize },
}

/// The cache interface a transformer's attention layers use, for one batch of sequences.
pub trait KvCache<B: KernelBackend> {
    /// Announces `new` tokens about to pass through every layer and returns the absolute
    /// position of the first of them (the number of tokens seen so far, evicted or not).
    fn prepare(&mut self, new: usize, phase: Phase) -> Result<usize, CacheError>;

    /// Attends the new tokens of layer `layer` over the cached context and themselves (causally),
    /// then stores the new keys and values (and evicts, if the cache does).
    ///
    /// - `q`: `[batch, heads, new, head_dim]`, post-RoPE queries
    /// - `k`, `v`: `[batch, kv_heads, new, head_dim]`, post-RoPE keys and values
    /// - returns `[batch, heads, new, head_dim]`
    fn attend(
        &mut self,
        layer: usize,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> Result<Tensor<B, 4>, CacheError>;

    /// Tokens seen so far: the position the next token will take.
    fn seen(&self) -> usize;

    /// Bytes of cache state held now, over all layers.
    fn bytes(&self) -> usize;

    /// The most prompt tokens one forward pass may carry (chunked prefill), or `None` for the
    /// whole prompt at once.
    fn prefill_chunk(&self) -> Option<usize> {
        None
    }

    /// The prompt tokens each replay pass reconstructs, when this cache scores the prompt from
    /// replays of it ([`Phase::Replay`], KVzip) and would evict some of it; `None` for every
    /// other cache. The caller then runs the replay passes and calls [`KvCache::end_replay`].
    fn replay_chunk(&self) -> Option<usize> {
        None
    }

    /// Ends the replay passes: the cache evicts now, from the scores they gave.
    fn end_replay(&mut self) -> Result<(), CacheError> {
        Ok(())
    }
}
