//! One prefill, many caches: a full cache that also records what eviction policies observe while
//! the prompt passes, so that each (policy, budget) can start from a fork of it
//! ([`crate::EvictingCache::fork`]) instead of prefilling again.
//!
//! With eviction once after a one-pass prefill (kvpress's protocol), a policy's choice depends only
//! on what the prompt's single pass produced: keys and values, the queries, and (H2O) the attention
//! mass each token received. A fork given those evicts exactly as the cache would have.

use burn::tensor::Tensor;
use momentkv_kernels::KernelBackend;

use crate::attention::attention_with_mass;
use crate::{CacheError, FullCache, KvCache, Phase};

/// A [`FullCache`] for one prompt pass that keeps every layer's queries and, when asked, the
/// attention mass each token received.
pub struct PrefillRecord<B: KernelBackend> {
    full: FullCache<B>,
    /// Per layer, `[batch, heads, seq, head_dim]`, post-RoPE.
    queries: Vec<Option<Tensor<B, 4>>>,
    /// Per layer, `[batch, kv_heads, seq]`, when recorded.
    mass: Option<Vec<Option<Tensor<B, 3>>>>,
    /// Per layer, the output projection `[hidden, heads · head_dim]`, when the model handed it
    /// over.
    outputs: Vec<Option<Tensor<B, 2>>>,
    passes: usize,
}

/// One layer of a [`PrefillRecord`].
pub(crate) struct RecordedLayer<'a, B: KernelBackend> {
    /// `[batch, kv_heads, seq, head_dim]`, post-RoPE.
    pub keys: &'a Tensor<B, 4>,
    /// `[batch, kv_heads, seq, head_dim]`.
    pub values: &'a Tensor<B, 4>,
    /// `[batch, heads, seq, head_dim]`, post-RoPE.
    pub queries: &'a Tensor<B, 4>,
    /// `[batch, kv_heads, seq]`, when recorded.
    pub mass: Option<&'a Tensor<B, 3>>,
    /// `[hidden, heads · head_dim]`, when handed over.
    pub output: Option<&'a Tensor<B, 2>>,
}

impl<B: KernelBackend> PrefillRecord<B> {
    /// An empty record for `layers` layers; `with_mass` also records each token's attention mass
    /// (an attention pass that materialises weights, for H2O).
    pub fn new(layers: usize, with_mass: bool) -> Self {
        Self {
            full: FullCache::new(layers),
            queries: (0..layers).map(|_| None).collect(),
            mass: with_mass.then(|| (0..layers).map(|_| None).collect()),
            outputs: (0..layers).map(|_| None).collect(),
            passes: 0,
        }
    }

    /// Whether the record holds attention mass.
    pub fn has_mass(&self) -> bool {
        self.mass.is_some()
    }

    /// What layer `layer` recorded, if it was attended.
    pub(crate) fn layer(&self, layer: usize) -> Option<RecordedLayer<'_, B>> {
        let (keys, values) = self.full.layer(layer)?;
        let queries = self.queries.get(layer)?.as_ref()?;
        let mass = self
            .mass
            .as_ref()
            .and_then(|m| m.get(layer).and_then(Option::as_ref));
        Some(RecordedLayer {
            keys,
            values,
            queries,
            mass,
            output: self.outputs[layer].as_ref(),
        })
    }

    pub(crate) fn layers(&self) -> usize {
        self.queries.len()
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
        if let Some(mass) = self.mass.as_mut() {
            let (k, v) = self.full.layer(layer).expect("attended");
            let (_, m) = attention_with_mass(q.clone(), k.clone(), v.clone(), None);
            mass[layer] = Some(m);
        }
        self.queries[layer] = Some(q);
        Ok(out)
    }

    fn output_projection(&mut self, layer: usize, weight: &Tensor<B, 2>) -> Result<(), CacheError> {
        let layers = self.outputs.len();
        let slot = self
            .outputs
            .get_mut(layer)
            .ok_or(CacheError::NoSuchLayer { layer, layers })?;
        slot.get_or_insert_with(|| weight.clone());
        Ok(())
    }

    fn seen(&self) -> usize {
        self.full.seen()
    }

    fn bytes(&self) -> usize {
        self.full.bytes()
    }
}
