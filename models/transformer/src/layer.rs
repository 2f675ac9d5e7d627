use burn::module::Module;
use burn::tensor::Tensor;
use momentkv_cache::KvCache;
use momentkv_kernels::KernelBackend;

use crate::attention::Attention;
use crate::mlp::Mlp;
use crate::norm::RmsNorm;
use crate::{ModelError, TransformerConfig};

/// One pre-norm decoder layer: `h = x + attn(norm₁(x))`, `y = h + mlp(norm₂(h))`.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: KernelBackend> {
    pub self_attn: Attention<B>,
    pub mlp: Mlp<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
}

impl<B: KernelBackend> DecoderLayer<B> {
    pub fn new(c: &TransformerConfig, device: &B::Device) -> Self {
        Self {
            self_attn: Attention::new(c, device),
            mlp: Mlp::new(c, device),
            input_layernorm: RmsNorm::new(c.hidden_size, c.rms_norm_eps, device),
            post_attention_layernorm: RmsNorm::new(c.hidden_size, c.rms_norm_eps, device),
        }
    }

    /// The inference entry point, attending through `cache`: `x` `[batch, seq, hidden]`,
    /// `cos`/`sin` `[seq, head_dim]` → `[batch, seq, hidden]`.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        layer: usize,
        cos: &Tensor<B, 2>,
        sin: &Tensor<B, 2>,
        cache: &mut impl KvCache<B>,
    ) -> Result<Tensor<B, 3>, ModelError> {
        let normed = self.input_layernorm.forward(x.clone());
        let attended = self.self_attn.forward(normed, layer, cos, sin, cache)?;
        Ok(self.feed_forward(x + attended))
    }

    /// The training entry point, causal attention over the sequence itself with no cache:
    /// `x` `[batch, seq, hidden]`, `cos`/`sin` `[seq, head_dim]` for positions `0..seq` →
    /// `[batch, seq, hidden]`.
    pub fn forward_causal(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 2>,
        sin: &Tensor<B, 2>,
    ) -> Tensor<B, 3> {
        let normed = self.input_layernorm.forward(x.clone());
        let attended = self.self_attn.forward_causal(normed, cos, sin);
        self.feed_forward(x + attended)
    }

    /// The second half of the layer, `h + mlp(norm₂(h))`: `[batch, seq, hidden]` →
    /// `[batch, seq, hidden]`.
    fn feed_forward(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h))
    }
}
