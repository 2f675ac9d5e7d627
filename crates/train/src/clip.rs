//! Gradient clipping by the global norm, as PyTorch's `clip_grad_norm_` and `transformers`'
//! `max_grad_norm` do it.
//!
//! burn 0.21's `GradientClippingConfig::Norm` clips each parameter tensor by its own norm inside
//! the optimizer, which changes the update's direction. Here all gradients are scaled by one
//! factor, computed from the norm of their concatenation. `GradientsParams` cannot be iterated,
//! so both passes walk the module's parameters with a [`ModuleVisitor`] and look each gradient up
//! by its parameter id, as burn-optim's own visitors do.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

/// What PyTorch adds to the norm before dividing by it.
const NORM_EPSILON: f64 = 1e-6;

/// The factor every gradient is multiplied by: `min(1, c / (‖g‖ + 10⁻⁶))`, PyTorch's
/// `clip_coef_clamped` for the largest norm `c`.
pub fn clip_coefficient(norm: f64, max_norm: f64) -> f64 {
    (max_norm / (norm + NORM_EPSILON)).min(1.0)
}

/// The global L2 norm of the gradients of `module`'s parameters, `‖g‖ = √(Σ_p Σ_i g_{p,i}²)`
/// over every parameter `p` that has one in `grads` (summed on the device, read back once).
pub fn global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut squares = SquaredNorm::<B> { grads, total: None };
    module.visit(&mut squares);
    squares
        .total
        .map_or(0.0, |total| total.sqrt().into_scalar().elem())
}

/// Scales the gradients of `module`'s parameters by [`clip_coefficient`] when it is below 1, so
/// that their global norm is at most `max_norm`, and returns the norm before clipping.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let norm = global_norm(module, grads);
    let factor = clip_coefficient(norm, max_norm);
    if factor < 1.0 {
        module.visit(&mut Scale { grads, factor });
    }
    norm
}

/// Sums `Σ_i g_i²` over the parameters' gradients, as a `[1]` tensor on the device.
struct SquaredNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) else {
            return;
        };
        let squares = grad.square().sum();
        self.total = Some(match self.total.take() {
            Some(total) => total + squares,
            None => squares,
        });
    }
}

/// Multiplies each parameter's gradient by `factor`.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads
                .register::<B::InnerBackend, D>(param.id, grad.mul_scalar(self.factor));
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::nn::{Linear, LinearConfig};

    use super::*;

    type B = Autodiff<NdArray>;

    /// A 3 → 2 linear layer (weight `[3, 2]`, bias `[2]`) and gradients of global norm 5:
    /// 1 + 4 + 4 = 9 in the weight, 16 in the bias.
    fn layer_and_grads() -> (Linear<B>, GradientsParams) {
        let device = Default::default();
        let layer = LinearConfig::new(3, 2).init::<B>(&device);
        let mut grads = GradientsParams::new();
        let weight =
            Tensor::<NdArray, 2>::from_floats([[1.0, -2.0], [2.0, 0.0], [0.0, 0.0]], &device);
        grads.register(layer.weight.id, weight);
        let bias = Tensor::<NdArray, 1>::from_floats([0.0, 4.0], &device);
        grads.register(layer.bias.as_ref().unwrap().id, bias);
        (layer, grads)
    }

    fn values<const D: usize>(grads: &GradientsParams, param: &Param<Tensor<B, D>>) -> Vec<f32> {
        grads
            .get::<NdArray, D>(param.id)
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap()
    }

    #[test]
    fn the_coefficient_is_torchs() {
        assert_eq!(clip_coefficient(0.5, 1.0), 1.0);
        assert_eq!(clip_coefficient(4.0, 1.0), 1.0 / (4.0 + 1e-6));
        assert_eq!(clip_coefficient(0.0, 1.0), 1.0);
    }

    /// Every gradient is scaled by the same factor, so the global norm becomes the limit and
    /// the direction is kept; under the limit nothing changes.
    #[test]
    fn gradients_are_scaled_together_to_the_limit() {
        let (layer, mut grads) = layer_and_grads();
        assert!((global_norm(&layer, &grads) - 5.0).abs() < 1e-6);
        let norm = clip_global_norm(&layer, &mut grads, 1.0);
        assert!((norm - 5.0).abs() < 1e-6);
        let factor = 1.0 / (5.0 + 1e-6);
        let want_weight = [1.0, -2.0, 2.0, 0.0, 0.0, 0.0].map(|g| (g * factor) as f32);
        let want_bias = [0.0, 4.0].map(|g| (g * factor) as f32);
        let got_weight = values(&grads, &layer.weight);
        let got_bias = values(&grads, layer.bias.as_ref().unwrap());
        for (got, want) in got_weight
            .iter()
            .chain(&got_bias)
            .zip(want_weight.iter().chain(&want_bias))
        {
            assert!((got - want).abs() < 1e-7, "{got} vs {want}");
        }
        assert!((global_norm(&layer, &grads) - 1.0).abs() < 1e-5);

        let (layer, mut grads) = layer_and_grads();
        assert!((clip_global_norm(&layer, &mut grads, 10.0) - 5.0).abs() < 1e-6);
        assert_eq!(
            values(&grads, &layer.weight),
            [1.0, -2.0, 2.0, 0.0, 0.0, 0.0]
        );
    }
}
