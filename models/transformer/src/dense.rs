use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::Tensor;
use momentkv_kernels::KernelBackend;

/// A dense layer `y = x·Wᵀ + b` whose product runs through [`KernelBackend::dense`], so backends
/// with a fast path use it. The weight keeps the checkpoint's layout, `[out, in]`, so loading
/// copies it as it is; `bias` is `[out]`.
#[derive(Module, Debug)]
pub struct Dense<B: KernelBackend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: KernelBackend> Dense<B> {
    /// A layer with lazily initialised (zero) parameters, to be filled by a weight loader.
    pub fn new(d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> Self {
        Self {
            weight: Initializer::Zeros.init([d_out, d_in], device),
            bias: bias.then(|| Initializer::Zeros.init([d_out], device)),
        }
    }

    /// `[batch, seq, in]` → `[batch, seq, out]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, s, d_in] = x.dims();
        let y = B::dense(x.reshape([b * s, d_in]), self.weight.val());
        let y = match &self.bias {
            Some(bias) => y + bias.val().unsqueeze(),
            None => y,
        };
        let d_out = y.dims()[1];
        y.reshape([b, s, d_out])
    }
}
