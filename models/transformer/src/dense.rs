use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::Tensor;
use momentkv_kernels::KernelBackend;

use crate::adapter::LoraPair;

/// A dense layer `y = x·Wᵀ + b` whose product runs through [`KernelBackend::dense`], so backends
/// with a fast path use it. The weight keeps the checkpoint's layout, `[out, in]`, so loading
/// copies it as it is; `bias` is `[out]`. With an adapter attached the layer also adds LoRA's side
/// path, `y = x·Wᵀ + b + s · dropout(x)·Aᵀ·Bᵀ` ([`LoraPair`]).
#[derive(Module, Debug)]
pub struct Dense<B: KernelBackend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// A LoRA adapter kept as a side path; `None` without one, or once it is merged.
    pub adapter: Option<LoraPair<B>>,
}

impl<B: KernelBackend> Dense<B> {
    /// A layer with lazily initialised (zero) parameters, to be filled by a weight loader.
    pub fn new(d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> Self {
        Self {
            weight: Initializer::Zeros.init([d_out, d_in], device),
            bias: bias.then(|| Initializer::Zeros.init([d_out], device)),
            adapter: None,
        }
    }

    /// The weight's shape, `[out, in]`.
    pub fn shape(&self) -> [usize; 2] {
        self.weight.dims()
    }

    /// `[batch, seq, in]` → `[batch, seq, out]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, s, d_in] = x.dims();
        let x = x.reshape([b * s, d_in]);
        let side = self
            .adapter
            .as_ref()
            .map(|adapter| adapter.forward(x.clone()));
        let mut y = B::dense(x, self.weight.val());
        if let Some(bias) = &self.bias {
            y = y + bias.val().unsqueeze();
        }
        if let Some(side) = side {
            y = y + side;
        }
        let d_out = y.dims()[1];
        y.reshape([b, s, d_out])
    }

    /// The weight the layer applies, `[out, in]`: `W`, or `W + s·B·A` with an adapter attached.
    pub fn effective_weight(&self) -> Tensor<B, 2> {
        match &self.adapter {
            Some(adapter) => self.weight.val() + adapter.delta(),
            None => self.weight.val(),
        }
    }

    /// Folds the adapter into the weight, `W ← W + s·B·A`, and drops the side path. The new
    /// weight is a leaf that requires gradients exactly when the old one did (a frozen base
    /// weight stays frozen). A layer without an adapter is left as it is.
    pub fn merge_adapter(&mut self) {
        if let Some(adapter) = self.adapter.take() {
            let delta = adapter.delta();
            self.weight = self.weight.clone().map(|weight| {
                let require_grad = weight.is_require_grad();
                (weight + delta).detach().set_require_grad(require_grad)
            });
        }
    }
}
