//! The fused moment-attention kernel against the definition, evaluated in f64 on the host (the
//! same math as [`momentkv::kernels::moment_attention_reference`], written out per query): over
//! shapes (head_dim
//! 48/64/128, GQA ratios 1..8, 1..4096 retained slots, decode and multi-row queries, one or
//! several summaries, empty summaries, padding holes, first and second order) and logit scales
//! from tiny to huge; f32 within 1e-5 and f16 within 1e-2 (relative to the output's scale).
//!
//! Runs on the cube backends: wgpu (software Vulkan on CI) and CUDA where a device exists.

use burn::tensor::{backend::Backend, DType, FloatDType, Tensor, TensorData};
use momentkv::kernels::{KernelBackend, Moments};

/// One case: `[heads, kv_heads, s, t, d, summaries]`, with or without padding holes and the
/// second-order term, and the standard deviation of queries (logit scale).
struct Case {
    dims: [usize; 6],
    holes: bool,
    second: bool,
    q_std: f32,
}

const BATCH: usize = 2;

fn cases() -> Vec<Case> {
    let case = |dims, holes, second, q_std| Case {
        dims,
        holes,
        second,
        q_std,
    };
    vec![
        case([1, 1, 1, 1, 64, 1], false, false, 1.0),
        case([8, 8, 1, 128, 64, 1], true, false, 1.0),
        case([8, 4, 1, 65, 64, 1], true, true, 1.0),
        case([9, 3, 1, 300, 64, 2], true, false, 1.0),
        case([8, 2, 3, 257, 128, 1], false, true, 1.0),
        case([8, 1, 1, 4096, 128, 1], true, false, 1.0),
        case([4, 2, 2, 63, 48, 3], true, true, 1.0),
        case([6, 2, 1, 700, 64, 1], true, true, 12.0),
        case([6, 2, 1, 700, 64, 1], true, true, 1e-3),
        case([4, 4, 1, 1024, 128, 4], false, false, 30.0),
    ]
}

/// Deterministic standard normals (xorshift and Box-Muller).
struct Normal(u64);

impl Normal {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    fn draw(&mut self, n: usize, std: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let (u, v) = (self.uniform(), self.uniform());
                std * (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
            })
            .collect()
    }
}

/// The inputs of one case as host vectors with their shapes.
struct Inputs {
    tensors: Vec<(Vec<f32>, [usize; 4])>,
    holes: bool,
    second: bool,
}

fn inputs(case: &Case, seed: u64) -> Inputs {
    let [heads, kv, s, t, d, e] = case.dims;
    let mut rng = Normal(seed);
    let mut shaped = |std: f32, shape: [usize; 4]| (rng.draw(shape.iter().product(), std), shape);
    let q = shaped(case.q_std, [BATCH, heads, s, d]);
    let k = shaped(1.0, [BATCH, kv, t, d]);
    let v = shaped(1.0, [BATCH, kv, t, d]);
    let key_mean = shaped(0.5, [BATCH, kv, e, d]);
    let value_mean = shaped(0.5, [BATCH, kv, e, d]);
    let cross = shaped(2.0, [BATCH, kv, e * d, d]);
    let mut key_sq = shaped(3.0, [BATCH, kv, e, d]);
    key_sq.0.iter_mut().for_each(|x| *x = x.abs() * 10.0);
    let mut rng = Normal(seed ^ 0x9e37_79b9);
    // Counts 1..=60 with every third summary empty.
    let count: Vec<f32> = (0..BATCH * kv * e)
        .map(|i| {
            if i % 3 == 2 {
                0.0
            } else {
                (rng.uniform() * 60.0).floor() + 1.0
            }
        })
        .collect();
    // A fifth of the slots masked; in the first KV head of batch row 1 every slot but the last
    // (what a decode query sees beyond its own token is then only the summaries).
    let bias: Vec<f32> = (0..BATCH * kv * t)
        .map(|i| {
            let (row, slot) = (i / t, i % t);
            let masked = if row == kv {
                slot + 1 < t
            } else {
                rng.uniform() < 0.2 && slot + 1 < t
            };
            if masked {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Inputs {
        tensors: vec![
            q,
            k,
            v,
            (count, [BATCH, kv, e, 1]),
            key_mean,
            value_mean,
            cross,
            (bias, [BATCH, kv, 1, t]),
            key_sq,
        ],
        holes: case.holes,
        second: case.second,
    }
}

/// Builds the op's arguments on `B` (in `dtype`) and returns `(q, k, v, bias, moments)`.
#[allow(clippy::type_complexity)]
fn build<B: Backend>(
    x: &Inputs,
    dtype: FloatDType,
    device: &B::Device,
) -> (
    Tensor<B, 4>,
    Tensor<B, 4>,
    Tensor<B, 4>,
    Option<Tensor<B, 4>>,
    Moments<B>,
) {
    let mut t = x.tensors.iter().map(|(data, shape)| {
        Tensor::<B, 4>::from_data(TensorData::new(data.clone(), *shape), device).cast(dtype)
    });
    let mut next = || t.next().expect("nine inputs");
    let (q, k, v) = (next(), next(), next());
    let (count, key_mean, value_mean, cross) = (next(), next(), next(), next());
    let (bias, key_sq) = (next(), next());
    let moments = Moments {
        count,
        key_mean,
        value_mean,
        cross,
        key_sq: x.second.then_some(key_sq),
    };
    (q, k, v, x.holes.then_some(bias), moments)
}

fn values<B: Backend>(x: Tensor<B, 4>) -> Vec<f32> {
    x.cast(FloatDType::F32)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .unwrap()
}

/// Largest `|got − want|` over `max(1, max |want|)`.
fn deviation(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1f32, |m, x| m.max(x.abs()));
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            assert!(g.is_finite(), "non-finite output {g} (reference {w})");
            (g - w).abs()
        })
        .fold(0f32, f32::max)
        / scale
}

/// Moment-corrected attention by its definition, in f64, from the host copies of the nine inputs
/// `[q, k, v, count, key_mean, value_mean, cross, bias, key_sq]` (bias and key_sq used when
/// `holes` / `second`).
fn definition(x: &[Vec<f32>], dims: [usize; 6], holes: bool, second: bool) -> Vec<f32> {
    let [heads, kv, s, t, d, summaries] = dims;
    let [q, k, v, count, key_mean, value_mean, cross, bias, key_sq] = x else {
        unreachable!("nine inputs")
    };
    let at = |x: &[f32], i: usize| f64::from(x[i]);
    let mut out = vec![0f32; BATCH * heads * s * d];
    for b in 0..BATCH {
        for h in 0..heads {
            let g = b * kv + h / (heads / kv);
            for i in 0..s {
                let row = (b * heads + h) * s + i;
                let a: Vec<f64> = (0..d)
                    .map(|c| at(q, row * d + c) / (d as f64).sqrt())
                    .collect();
                // (logit, value) of every visible retained slot and every non-empty summary.
                let mut keys: Vec<(f64, Vec<f64>)> = (0..=t - s + i)
                    .filter(|&j| !holes || bias[g * t + j] == 0.0)
                    .map(|j| {
                        let logit = (0..d).map(|c| a[c] * at(k, (g * t + j) * d + c)).sum();
                        (logit, (0..d).map(|c| at(v, (g * t + j) * d + c)).collect())
                    })
                    .collect();
                for e in 0..summaries {
                    let n = at(count, g * summaries + e);
                    if n == 0.0 {
                        continue;
                    }
                    let m = (g * summaries + e) * d;
                    let mut logit: f64 =
                        (0..d).map(|c| a[c] * at(key_mean, m + c)).sum::<f64>() + n.ln();
                    if second {
                        let spread: f64 = (0..d)
                            .map(|c| a[c] * a[c] * at(key_sq, m + c) / n.max(1.0))
                            .sum();
                        logit += (1.0 + 0.5 * spread).ln();
                    }
                    let value = (0..d)
                        .map(|r| {
                            let ca: f64 = (0..d)
                                .map(|c| at(cross, ((g * summaries + e) * d + r) * d + c) * a[c])
                                .sum();
                            at(value_mean, m + r) + ca / n.max(1.0)
                        })
                        .collect();
                    keys.push((logit, value));
                }
                let top = keys.iter().map(|(l, _)| *l).fold(f64::MIN, f64::max);
                let z: f64 = keys.iter().map(|(l, _)| (l - top).exp()).sum();
                for c in 0..d {
                    let num: f64 = keys.iter().map(|(l, val)| (l - top).exp() * val[c]).sum();
                    out[row * d + c] = (num / z) as f32;
                }
            }
        }
    }
    out
}

/// Every case on `B` in `dtype` against [`definition`] on the same (rounded) inputs, each input
/// passed through pending element-wise ops first (so that under fusion the op sits inside a
/// stream of fused work).
pub fn kernel_matches_reference<B: KernelBackend>(device: &B::Device, dtype: FloatDType, tol: f32) {
    assert_eq!(B::kernel_engine(), "cubecl");
    let mut worst = 0f32;
    for (index, case) in cases().iter().enumerate() {
        let x = inputs(case, 7 + index as u64);
        let (q, k, v, bias, m) = build::<B>(&x, dtype, device);
        let got = B::moment_attention(q.mul_scalar(1.0), k.add_scalar(0.0), v, bias, m);
        let got = values(got.add_scalar(0.0));
        let rounded: Vec<Vec<f32>> = x
            .tensors
            .iter()
            .map(|(data, shape)| {
                values(
                    Tensor::<B, 4>::from_data(TensorData::new(data.clone(), *shape), device)
                        .cast(dtype),
                )
            })
            .collect();
        let want = definition(&rounded, case.dims, case.holes, case.second);
        let dev = deviation(&got, &want);
        assert!(
            dev <= tol,
            "case {index} {:?} holes {} second {} q_std {} ({dtype:?}): deviation {dev:e} > {tol:e}",
            case.dims,
            case.holes,
            case.second,
            case.q_std
        );
        worst = worst.max(dev);
    }
    eprintln!("{dtype:?}: largest deviation {worst:e} (tolerance {tol:e})");
}

/// f16 where the device supports it, with the reason printed where it does not.
fn f16_matches_reference<B: KernelBackend>(device: &B::Device) {
    if B::supports_dtype(device, DType::F16) {
        kernel_matches_reference::<B>(device, FloatDType::F16, 1e-2);
    } else {
        eprintln!("skipped: this device has no f16");
    }
}

#[cfg(feature = "wgpu")]
mod wgpu {
    use burn::backend::wgpu::{CubeBackend, WgpuRuntime};
    use burn::backend::Wgpu;
    use burn::tensor::FloatDType;

    use crate::common::wgpu_device;

    type Bare = CubeBackend<WgpuRuntime, f32, i32, u32>;

    #[test]
    fn fused_kernel_matches_the_reference_f32() {
        super::kernel_matches_reference::<Wgpu>(&wgpu_device(), FloatDType::F32, 1e-5);
    }

    #[test]
    fn kernel_without_fusion_matches_the_reference_f32() {
        super::kernel_matches_reference::<Bare>(&wgpu_device(), FloatDType::F32, 1e-5);
    }

    #[test]
    fn fused_kernel_matches_the_reference_f16() {
        super::f16_matches_reference::<Wgpu>(&wgpu_device());
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use burn::backend::Cuda;
    use burn::tensor::FloatDType;

    use crate::common::cuda_available;

    #[test]
    fn fused_kernel_matches_the_reference_f32() {
        if cuda_available(concat!(
            module_path!(),
            "::fused_kernel_matches_the_reference_f32"
        )) {
            super::kernel_matches_reference::<Cuda>(&Default::default(), FloatDType::F32, 1e-5);
        }
    }

    #[test]
    fn fused_kernel_matches_the_reference_f16() {
        if cuda_available(concat!(
            module_path!(),
            "::fused_kernel_matches_the_reference_f16"
        )) {
            super::f16_matches_reference::<Cuda>(&Default::default());
        }
    }
}
