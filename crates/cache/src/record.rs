//! One prefill, many caches: a full cache that also records what eviction policies observe while
//! the prompt passes, so that each (policy, budget) can start from a fork of it
//! ([`crate::EvictingCache::fork`]) instead of prefilling again.
//!
//! With eviction once after a one-pass prefill (kvpress's protocol), a policy's choice depends only
//! on what the prompt's single pass produced: keys and values and the inputs its scorer declares
//! ([`crate::Inputs`]: queries, the attention mass each token received). The record keeps the
//! union of what the policies it serves declare, so a fork evicts exactly as the cache would have.

use burn::tensor::Tensor;
use momentkv_kernels::KernelBackend;

use crate::attention::attention_with_mass;
use crate::{CacheError, FullCache, Inputs, KvCache, Phase, QueryNeed};

/// A [`FullCache`] for one prompt pass that also keeps the declared [`Inputs`] of the policies it
/// will be forked for: each layer's queries (as many as they read) and the attention mass each
/// token received.
pub struct PrefillRecord<B: KernelBackend> {
    full: FullCache<B>,
    inputs: Inputs,
    /// Per layer, `[batch, heads, w, head_dim]`, post-RoPE: the last queries, when recorded.
    queries: Vec<Option<Tensor<B, 4>>>,
    /// Per layer, `[batch, kv_heads, seq]`, when recorded.
    mass: Vec<Option<Tensor<B, 3>>>,
    passes: usize,
}

/// One layer of a [`PrefillRecord`].
pub(crate) struct RecordedLayer<'a, B: KernelBackend> {
    /// `[batch, kv_heads, seq, head_dim]`, post-RoPE.
    pub keys: &'a Tensor<B, 4>,
    /// `[batch, kv_heads, seq, head_dim]`.
    pub values: &'a Tensor<B, 4>,
    /// `[batch, heads, w, head_dim]`, post-RoPE, when recorded.
    pub queries: Option<&'a Tensor<B, 4>>,
    /// `[batch, kv_heads, seq]`, when recorded.
    pub mass: Option<&'a Tensor<B, 3>>,
}

impl<B: KernelBackend> PrefillRecord<B> {
    /// An empty record for `layers` layers that keeps `inputs` (the union of
    /// [`crate::Policy::inputs`] over the policies to fork; the mass costs an attention pass that
    /// materialises weights).
    pub fn new(layers: usize, inputs: Inputs) -> Self {
        Self {
            full: FullCache::new(layers),
            inputs,
            queries: (0..layers).map(|_| None).collect(),
            mass: (0..layers).map(|_| None).collect(),
            passes: 0,
        }
    }

    /// Whether the record holds attention mass.
    pub fn has_mass(&self) -> bool {
        self.inputs.mass
    }

    /// What layer `layer` recorded, if it was attended.
    pub(crate) fn layer(&self, layer: usize) -> Option<RecordedLayer<'_, B>> {
        let (keys, values) = self.full.layer(layer)?;
        Some(RecordedLayer {
            keys,
            values,
            queries: self.queries[layer].as_ref(),
            mass: self.mass[layer].as_ref(),
        })
    }

    pub(crate) fn layers(&self) -> usize {
        self.mass.len()
    }
}

impl<B: KernelBackend> KvCache<B> for PrefillRecord<B> {
    fn prepare(&mut self, new: usize, phase: Phase) -> Result<usize, CacheError> {
        self.passes += 1;
        if phase != Phase::Prefill || self.passes > 1 {
            return Err(CacheError::Fork(
                "a prefill record holds one prompt pass; read the question on a fork of it".into(),
            ));
        }
        self.full.prepare(new, phase)
    }

    fn attend(
        &mut self,
        layer: usize,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> Result<Tensor<B, 4>, CacheError> {
        let out = self.full.attend(layer, q.clone(), k, v)?;
        if self.inputs.mass {
            let (k, v) = self.full.layer(layer).expect("attended");
            let (_, m) = attention_with_mass(q.clone(), k.clone(), v.clone(), None);
            self.mass[layer] = Some(m);
        }
        let have = q.dims()[2];
        self.queries[layer] = match self.inputs.queries {
            QueryNeed::None => None,
            QueryNeed::Recent(w) => Some(q.narrow(2, have - w.min(have), w.min(have))),
            QueryNeed::All => Some(q),
        };
        Ok(out)
    }

    fn seen(&self) -> usize {
        self.full.seen()
    }

    fn bytes(&self) -> usize {
        self.full.bytes()
    }
}
