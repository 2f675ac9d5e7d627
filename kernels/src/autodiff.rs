//! [`KernelBackend`] under burn's `Autodiff` wrapper: every op takes its default tensor-op body,
//! which burn differentiates, whatever the inner backend (a fused kernel has no backward pass).
//! For training (learned retention gates) on any backend; inference uses the bare backend.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::Autodiff;

use crate::KernelBackend;

impl<B: KernelBackend, C: CheckpointStrategy> KernelBackend for Autodiff<B, C> {}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::ndarray::NdArrayDevice;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::{Distribution, Tensor};

    use crate::{KernelBackend, Moments};

    type B = Autodiff<NdArray>;

    fn summaries(device: &NdArrayDevice) -> Moments<B> {
        let normal =
            |dims: [usize; 4]| Tensor::random(dims, Distribution::Normal(0.0, 1.0), device);
        Moments {
            count: Tensor::from_floats([[[[5.0]], [[0.0]]]], device),
            key_mean: normal([1, 2, 1, 8]),
            value_mean: normal([1, 2, 1, 8]),
            cross: normal([1, 2, 8, 8]),
            key_sq: Some(normal([1, 2, 1, 8]).abs()),
        }
    }

    /// The gradient of `Σ out` with respect to `q` equals central finite differences.
    #[test]
    fn moment_attention_differentiates_through_its_reference() {
        let device = Default::default();
        let q = Tensor::<B, 4>::random([1, 4, 2, 8], Distribution::Normal(0.0, 1.0), &device);
        let k = Tensor::<B, 4>::random([1, 2, 6, 8], Distribution::Normal(0.0, 1.0), &device);
        let v = Tensor::<B, 4>::random([1, 2, 6, 8], Distribution::Normal(0.0, 1.0), &device);
        let m = summaries(&device);
        let loss =
            |q: Tensor<B, 4>| B::moment_attention(q, k.clone(), v.clone(), None, m.clone()).sum();
        let q = q.require_grad();
        let grads = loss(q.clone()).backward();
        let analytic = q.grad(&grads).unwrap().to_data().to_vec::<f32>().unwrap();
        let base = q.clone().detach().to_data().to_vec::<f32>().unwrap();
        let eps = 1e-2;
        for (i, want) in analytic.iter().enumerate().step_by(7) {
            let at = |delta: f32| {
                let mut x = base.clone();
                x[i] += delta;
                let q = Tensor::<B, 1>::from_floats(x.as_slice(), &device).reshape([1, 4, 2, 8]);
                loss(q).into_scalar()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            assert!(
                (numeric - want).abs() < 2e-2 * want.abs().max(1.0),
                "d/dq[{i}]: {want} analytic vs {numeric} numeric"
            );
        }
    }
}
