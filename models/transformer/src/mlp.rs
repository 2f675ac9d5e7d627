use crate::dense::Dense;
use burn::module::Module;
use burn::tensor::{activation::silu, Tensor};
use momentkv_kernels::KernelBackend;

use crate::TransformerConfig;

/// SwiGLU feed-forward: `down(silu(gate(x)) ⊙ up(x))`.
#[derive(Module, Debug)]
pub struct Mlp<B: KernelBackend> {
    pub gate_proj: Dense<B>,
    pub up_proj: Dense<B>,
    pub down_proj: Dense<B>,
}

impl<B: KernelBackend> Mlp<B> {
    pub fn new(c: &TransformerConfig, device: &B::Device) -> Self {
        let linear = |i: usize, o: usize| Dense::new(i, o, false, device);
        Self {
            gate_proj: linear(c.hidden_size, c.intermediate_size),
            up_proj: linear(c.hidden_size, c.intermediate_size),
            down_proj: linear(c.intermediate_size, c.hidden_size),
        }
    }

    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}
