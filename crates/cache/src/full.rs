use burn::tensor::Tensor;
use momentkv_kernels::KernelBackend;

use crate::pass::Pass;
use crate::{CacheError, KvCache, Phase};

/// A cache that keeps every token: the exact-attention baseline.
///
/// Per layer it holds keys and values `[batch, kv_heads, seq, head_dim]`, grown by concatenation.
pub struct FullCache<B: KernelBackend> {
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    pass: Pass,
}

impl<B: KernelBackend> FullCache<B> {
    /// An empty cache for a model with `n_layers` attention layers.
    pub fn new(n_layers: usize) -> Self {
        Self {
            layers: (0..n_layers).map(|_| None).collect(),
            pass: Pass::default(),
        }
    }

    /// Keys and values held by `layer`, `[batch, kv_heads, seq, head_dim]` each.
    pub(crate) fn layer(&self, layer: usize) -> Option<&(Tensor<B, 4>, Tensor<B, 4>)> {
        self.layers.get(layer)?.as_ref()
    }
}

impl<B: KernelBackend> KvCache<B> for FullCache<B> {
    fn prepare(&mut self, new: usize, phase: Phase) -> Result<usize, CacheError> {
        if let Phase::Replay { .. } = phase {
            return Err(CacheError::Replay(
                "the full cache evicts nothing, so it takes no replay passes".into(),
            ));
        }
        Ok(self.pass.prepare(new))
    }

    fn attend(
        &mut self,
        layer: usize,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> Result<Tensor<B, 4>, CacheError> {
        let layers = self.layers.len();
        let slot = self
            .layers
            .get_mut(layer)
            .ok_or(CacheError::NoSuchLayer { layer, layers })?;
        let new = k.dims()[2];
        self.pass.check(layer, new)?;
        let (k, v) = match slot.take() {
            None => (k, v),
            Some((k0, v0)) => {
                let (want, got) = (k0.dims(), k.dims());
                if want[0] != got[0] || want[1] != got[1] || want[3] != got[3] {
                    return Err(CacheError::Shape {
                        layer,
                        what: "new keys",
                        found: got.to_vec(),
                        expected: vec![want[0], want[1], new, want[3]],
                    });
                }
                (Tensor::cat(vec![k0, k], 2), Tensor::cat(vec![v0, v], 2))
            }
        };
        let out = B::causal_attention(q, k.clone(), v.clone());
        *slot = Some((k, v));
        Ok(out)
    }

    fn seen(&self) -> usize {
        self.pass.seen
    }

    fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|(k, v)| {
                k.shape().num_elements() * k.dtype().size()
                    + v.shape().num_elements() * v.dtype().size()
            })
            .sum()
    }
}
