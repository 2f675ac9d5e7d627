use std::f64::consts::PI;

use burn::tensor::{backend::Backend, Tensor, TensorData};
use momentkv_kernels::KernelBackend;

use crate::RopeScaling;

/// Rotary position embeddings in Hugging Face's `rotate_half` layout.
///
/// Inverse frequencies `θ_i = base^(−2i/d)` (then scaled) are kept in f64 and the angles
/// `p·θ_i` computed in f64 on the host, so large positions and large bases (Qwen's 1e6) lose no
/// precision; only `cos`/`sin` are rounded to f32.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f64>,
}

impl Rope {
    pub fn new(head_dim: usize, theta: f64, scaling: &RopeScaling) -> Self {
        let base: Vec<f64> = (0..head_dim / 2)
            .map(|i| theta.powf(-((2 * i) as f64) / head_dim as f64))
            .collect();
        let inv_freq = match scaling {
            RopeScaling::None => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / factor).collect(),
            RopeScaling::Factors(div) => base.iter().zip(div).map(|(f, d)| f / d).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor: low,
                high_freq_factor: high,
                original_max_position_embeddings: old,
            } => base
                .iter()
                .map(|&f| {
                    let wavelen = 2.0 * PI / f;
                    if wavelen < old / high {
                        f
                    } else if wavelen > old / low {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect(),
        };
        Self { inv_freq }
    }

    /// The inverse frequencies `θ_i`, `head_dim / 2` of them.
    pub fn inv_freq(&self) -> &[f64] {
        &self.inv_freq
    }

    /// `cos` and `sin` tables `[len, head_dim]` for positions `start..start + len`, each
    /// frequency repeated over both halves of the head.
    pub fn tables<B: Backend>(
        &self,
        start: usize,
        len: usize,
        device: &B::Device,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * 2 * half);
        let mut sin = Vec::with_capacity(len * 2 * half);
        for p in start..start + len {
            for _ in 0..2 {
                for f in &self.inv_freq {
                    let angle = p as f64 * f;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        let shape = [len, 2 * half];
        (
            Tensor::from_data(TensorData::new(cos, shape), device),
            Tensor::from_data(TensorData::new(sin, shape), device),
        )
    }

    /// Rotates `x`: `[batch, seq, heads, head_dim]` by the tables of [`Rope::tables`]
    /// (`[seq, head_dim]`): `x·cos + rotate_half(x)·sin`, through [`KernelBackend::rope`].
    pub fn apply<B: KernelBackend>(
        x: Tensor<B, 4>,
        cos: &Tensor<B, 2>,
        sin: &Tensor<B, 2>,
    ) -> Tensor<B, 4> {
        B::rope(x, cos.clone(), sin.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_keeps_high_and_divides_low_frequencies() {
        let scaling = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        };
        let plain = Rope::new(128, 500000.0, &RopeScaling::None);
        let scaled = Rope::new(128, 500000.0, &scaling);
        assert_eq!(scaled.inv_freq[0], plain.inv_freq[0]);
        let last = plain.inv_freq.len() - 1;
        assert!((scaled.inv_freq[last] - plain.inv_freq[last] / 8.0).abs() < 1e-18);
        let factors: Vec<f64> = plain
            .inv_freq
            .iter()
            .zip(&scaled.inv_freq)
            .map(|(p, s)| p / s)
            .collect();
        let via_factors = Rope::new(128, 500000.0, &RopeScaling::Factors(factors));
        for (a, b) in via_factors.inv_freq.iter().zip(&scaled.inv_freq) {
            assert!((a - b).abs() <= 1e-15 * b.abs());
        }
    }
}
