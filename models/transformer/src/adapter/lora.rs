use burn::module::{Module, Param};
use burn::nn::Dropout;
use burn::tensor::{Distribution, Tensor};
use momentkv_kernels::KernelBackend;

use super::LoraConfig;

/// LoRA's side path on a dense layer `W` `[out, in]`: factors `A` `[r, in]` and `B` `[out, r]`
/// and the scaling `s`, adding `s · dropout(x)·Aᵀ·Bᵀ` to the layer's output. With dropout off
/// (inference, or probability 0) that is the merged layer `x·(W + s·B·A)ᵀ + b`.
#[derive(Module, Debug)]
pub struct LoraPair<B: KernelBackend> {
    /// `A`, `[r, in]` (PEFT's `lora_A.weight`).
    pub lora_a: Param<Tensor<B, 2>>,
    /// `B`, `[out, r]` (PEFT's `lora_B.weight`).
    pub lora_b: Param<Tensor<B, 2>>,
    /// Dropout on the side path's input, active only under autodiff (training).
    pub dropout: Dropout,
    /// `s`: `alpha / r`, or `alpha / √r` with rank-stabilised LoRA.
    pub scaling: f64,
}

impl<B: KernelBackend> LoraPair<B> {
    /// PEFT's initialisation for a layer of weight shape `[out, in]`: `A` Kaiming-uniform,
    /// `U(−1/√in, 1/√in)` (what PEFT's `kaiming_uniform_(a = √5)` draws), `B` zero, so the side
    /// path starts at zero. `A` comes from the backend's random generator (`Backend::seed` makes
    /// the draw reproducible). Both factors are trainable parameters.
    pub fn init(shape: [usize; 2], config: &LoraConfig, device: &B::Device) -> Self {
        let [out, d_in] = shape;
        let bound = 1.0 / (d_in as f64).sqrt();
        let a = Tensor::random(
            [config.rank, d_in],
            Distribution::Uniform(-bound, bound),
            device,
        );
        Self::from_factors(a, Tensor::zeros([out, config.rank], device), config)
    }

    /// Zero factors for a layer of weight shape `[out, in]`, to be filled by a loader; trainable
    /// parameters like [`LoraPair::init`]'s.
    pub fn zeros(shape: [usize; 2], config: &LoraConfig, device: &B::Device) -> Self {
        let [out, d_in] = shape;
        Self::from_factors(
            Tensor::zeros([config.rank, d_in], device),
            Tensor::zeros([out, config.rank], device),
            config,
        )
    }

    fn from_factors(a: Tensor<B, 2>, b: Tensor<B, 2>, config: &LoraConfig) -> Self {
        Self {
            lora_a: Param::from_tensor(a),
            lora_b: Param::from_tensor(b),
            dropout: Dropout {
                prob: config.dropout,
            },
            scaling: config.scaling(),
        }
    }

    /// The side path of `x` `[n, in]`: `s · dropout(x)·Aᵀ·Bᵀ`, `[n, out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let down = B::dense(self.dropout.forward(x), self.lora_a.val());
        B::dense(down, self.lora_b.val()).mul_scalar(self.scaling)
    }

    /// The update `s · B·A`, `[out, in]`, that merging adds to the layer's weight.
    pub fn delta(&self) -> Tensor<B, 2> {
        self.lora_b
            .val()
            .matmul(self.lora_a.val())
            .mul_scalar(self.scaling)
    }
}
