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

    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        layer: usize,
        cos: &Tensor<B, 2>,
        sin: &Tensor<B, 2>,
        cache: &mut impl KvCache<B>,
    ) -> Result<Tensor<B, 3>, ModelError> {
        let h = x.clone()
            + self
                .self_attn
                .forward(self.input_layernorm.forward(x), layer, cos, sin, cache)?;
        Ok(h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h)))
    }
}
