//! KV caches for momentkv.
//!
//! A model reaches its cache only through [`KvCache`]: it announces how many new tokens a forward
//! pass carries ([`KvCache::prepare`]), then hands each layer's post-RoPE queries, keys and values to
//! [`KvCache::attend`], which stores what it keeps and returns the attention output. What is kept,
//! and how attention over it is computed, is the cache's business, so eviction policies and
//! corrected attention plug in here without the model knowing.

mod error;
mod full;

pub use error::CacheError;
pub use full::FullCache;

use burn::tensor::Tensor;
use momentkv_kernels::KernelBackend;

/// The cache interface a transformer's attention layers use, for one batch of sequences.
pub trait KvCache<B: KernelBackend> {
    /// Announces `new` tokens about to pass through every layer and returns the absolute
    /// position of the first of them (the number of tokens seen so far, evicted or not).
    fn prepare(&mut self, new: usize) -> Result<usize, CacheError>;

    /// Attends the new tokens of layer `layer` over the cached context and themselves (causally),
    /// then stores the new keys and values.
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
}
