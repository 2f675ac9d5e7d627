use crate::dense::Dense;
use burn::module::Module;
use burn::tensor::Tensor;
use momentkv_cache::KvCache;
use momentkv_kernels::KernelBackend;

use crate::norm::RmsNorm;
use crate::{ModelError, Rope, TransformerConfig};

/// Grouped-query self-attention with two entry points sharing the projections, norms and RoPE:
/// [`Attention::forward`] attends through a KV cache ([`KvCache::attend`]), and
/// [`Attention::forward_causal`] over the sequence itself, for training.
#[derive(Module, Debug)]
pub struct Attention<B: KernelBackend> {
    pub q_proj: Dense<B>,
    pub k_proj: Dense<B>,
    pub v_proj: Dense<B>,
    pub o_proj: Dense<B>,
    /// Qwen3's per-head query norm, over `head_dim`.
    pub q_norm: Option<RmsNorm<B>>,
    /// Qwen3's per-head key norm, over `head_dim`.
    pub k_norm: Option<RmsNorm<B>>,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl<B: KernelBackend> Attention<B> {
    pub fn new(c: &TransformerConfig, device: &B::Device) -> Self {
        let (h, kv, d) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        let proj = |out: usize, bias: bool| Dense::new(c.hidden_size, out, bias, device);
        let norm = || c.qk_norm.then(|| RmsNorm::new(d, c.rms_norm_eps, device));
        Self {
            q_proj: proj(h * d, c.attention_bias),
            k_proj: proj(kv * d, c.attention_bias),
            v_proj: proj(kv * d, c.attention_bias),
            o_proj: Dense::new(h * d, c.hidden_size, c.output_bias, device),
            q_norm: norm(),
            k_norm: norm(),
            heads: h,
            kv_heads: kv,
            head_dim: d,
        }
    }

    /// `[batch, seq, hidden]` → `[batch, seq, heads, head_dim]`.
    fn split_heads(&self, x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
        let [b, s, _] = x.dims();
        x.reshape([b, s, heads, self.head_dim])
    }

    /// Post-RoPE queries, keys and values, heads first, of `x` `[batch, seq, hidden]` at the
    /// positions of `cos`/`sin` (`[seq, head_dim]`): `q = rope(norm_q(x·W_qᵀ + b_q))`,
    /// `k = rope(norm_k(x·W_kᵀ + b_k))`, `v = x·W_vᵀ + b_v` (biases and norms where the model has
    /// them).
    ///
    /// Returns `q` `[batch, heads, seq, head_dim]`, `k` and `v` `[batch, kv_heads, seq, head_dim]`.
    fn project(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 2>,
        sin: &Tensor<B, 2>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
        let mut q = self.split_heads(self.q_proj.forward(x.clone()), self.heads);
        let mut k = self.split_heads(self.k_proj.forward(x.clone()), self.kv_heads);
        let v = self.split_heads(self.v_proj.forward(x), self.kv_heads);
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(q);
            k = kn.forward(k);
        }
        // RoPE on the contiguous [batch, seq, heads, head_dim] layout, then heads first.
        let q = Rope::apply(q, cos, sin).swap_dims(1, 2);
        let k = Rope::apply(k, cos, sin).swap_dims(1, 2);
        (q, k, v.swap_dims(1, 2))
    }

    /// Merges the heads of the attention output `[batch, heads, seq, head_dim]` and projects
    /// them: `[batch, seq, heads·head_dim]` · `W_oᵀ` (+ `b_o`) → `[batch, seq, hidden]`.
    fn merge(&self, out: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, _, s, _] = out.dims();
        let out = out
            .swap_dims(1, 2)
            .reshape([b, s, self.heads * self.head_dim]);
        self.o_proj.forward(out)
    }

    /// Attention of new tokens over what `cache` holds and themselves, the inference entry point:
    /// `x` `[batch, seq, hidden]`, `cos`/`sin` `[seq, head_dim]` at the tokens' absolute positions
    /// → `[batch, seq, hidden]`. The cache stores the keys and values and computes the attention
    /// ([`KvCache::attend`]).
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        layer: usize,
        cos: &Tensor<B, 2>,
        sin: &Tensor<B, 2>,
        cache: &mut impl KvCache<B>,
    ) -> Result<Tensor<B, 3>, ModelError> {
        let (q, k, v) = self.project(x, cos, sin);
        Ok(self.merge(cache.attend(layer, q, k, v)?))
    }

    /// Causal attention of a whole sequence over itself, with no cache, the training entry point:
    /// `x` `[batch, seq, hidden]`, `cos`/`sin` `[seq, head_dim]` for positions `0..seq` →
    /// `[batch, seq, hidden]`. Query `i` sees keys `0..=i` through
    /// [`KernelBackend::causal_attention`], the op the full cache's attention calls, so both entry
    /// points compute the same `softmax(q kᵀ / √head_dim) v`.
    pub fn forward_causal(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 2>,
        sin: &Tensor<B, 2>,
    ) -> Tensor<B, 3> {
        let (q, k, v) = self.project(x, cos, sin);
        self.merge(B::causal_attention(q, k, v))
    }
}
