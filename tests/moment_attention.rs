//! MomentKV's normalisation-corrected attention, written in plain tensor ops, gives the same
//! outputs on every backend: checked against the closed form evaluated in f64 on the host.

use burn::tensor::{Tensor, TensorData};
use momentkv::cache::{moment_attention, Moments, Order};
use momentkv::kernels::KernelBackend;

const D: usize = 8;

/// Deterministic values in [-scale, scale) (an LCG), the same on every backend.
fn draw(state: &mut u64, n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            *state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn tensor<B: KernelBackend>(x: &[f64], shape: [usize; 4], device: &B::Device) -> Tensor<B, 4> {
    let x: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(x, shape), device)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `o = (N_R + e^{a·μ_k}(n μ_v + C a)) / (D_R + n e^{a·μ_k})` for one query `a = q/√d` over the
/// retained `(k, v)` it may see and the evicted `(ke, ve)`, in f64.
fn closed_form(a: &[f64], retained: &[(&[f64], &[f64])], evicted: &[(&[f64], &[f64])]) -> Vec<f64> {
    let n = evicted.len() as f64;
    let mean = |which: usize| -> Vec<f64> {
        (0..D)
            .map(|c| evicted.iter().map(|kv| [kv.0, kv.1][which][c]).sum::<f64>() / n)
            .collect()
    };
    let (mu_k, mu_v) = (mean(0), mean(1));
    // C a = Σ (v − μ_v) ((k − μ_k)·a).
    let mut c_a = [0.0; D];
    for (k, v) in evicted {
        let s: f64 = (0..D).map(|c| (k[c] - mu_k[c]) * a[c]).sum();
        for (o, (vc, mc)) in c_a.iter_mut().zip(v.iter().zip(&mu_v)) {
            *o += (vc - mc) * s;
        }
    }
    let centre = dot(a, &mu_k);
    let max = retained
        .iter()
        .map(|(k, _)| dot(a, k))
        .fold(centre, f64::max);
    let e = (centre - max).exp();
    let mut num: Vec<f64> = (0..D).map(|c| e * (n * mu_v[c] + c_a[c])).collect();
    let mut den = n * e;
    for (k, v) in retained {
        let w = (dot(a, k) - max).exp();
        den += w;
        for (o, vc) in num.iter_mut().zip(v.iter()) {
            *o += w * vc;
        }
    }
    num.iter().map(|x| x / den).collect()
}

pub fn moment_attention_matches_the_closed_form<B: KernelBackend>(device: B::Device, tol: f32) {
    // 2 KV heads of 2 query heads, 3 new queries over 12 retained slots (slot 4 of KV head 1 is
    // padding), 40 evicted tokens per KV head; keys spread enough that logits reach ±10.
    let (heads, kv, s, t, m) = (4, 2, 3, 12, 40);
    let mut state = 11;
    let q = draw(&mut state, heads * s * D, 3.0);
    let k = draw(&mut state, kv * t * D, 3.0);
    let v = draw(&mut state, kv * t * D, 1.0);
    let ke = draw(&mut state, kv * m * D, 2.0);
    let ve = draw(&mut state, kv * m * D, 1.0);
    let mut bias = vec![0.0; kv * t];
    bias[t + 4] = f64::NEG_INFINITY;
    let moments = Moments::of(
        tensor::<B>(&ke, [1, kv, m, D], &device),
        tensor::<B>(&ve, [1, kv, m, D], &device),
        Tensor::ones([1, kv, m, 1], &device),
        Order::First,
    );
    let out = moment_attention(
        tensor::<B>(&q, [1, heads, s, D], &device),
        tensor::<B>(&k, [1, kv, t, D], &device),
        tensor::<B>(&v, [1, kv, t, D], &device),
        Some(&tensor::<B>(&bias, [1, kv, 1, t], &device)),
        &moments,
    );
    let got = out.into_data().convert::<f32>().to_vec::<f32>().unwrap();
    let row = |x: &[f64], i: usize| x[i * D..(i + 1) * D].to_vec();
    let mut worst = 0f64;
    for h in 0..heads {
        let g = h / (heads / kv);
        for i in 0..s {
            let a: Vec<f64> = row(&q, h * s + i)
                .iter()
                .map(|x| x / (D as f64).sqrt())
                .collect();
            // Query i is slot t − s + i: it sees slots 0..=t − s + i, less padding.
            let keys: Vec<Vec<f64>> = (0..t).map(|j| row(&k, g * t + j)).collect();
            let values: Vec<Vec<f64>> = (0..t).map(|j| row(&v, g * t + j)).collect();
            let retained: Vec<(&[f64], &[f64])> = (0..=t - s + i)
                .filter(|&j| bias[g * t + j] == 0.0)
                .map(|j| (keys[j].as_slice(), values[j].as_slice()))
                .collect();
            let ek: Vec<Vec<f64>> = (0..m).map(|j| row(&ke, g * m + j)).collect();
            let ev: Vec<Vec<f64>> = (0..m).map(|j| row(&ve, g * m + j)).collect();
            let evicted: Vec<(&[f64], &[f64])> = ek
                .iter()
                .zip(&ev)
                .map(|(a, b)| (a.as_slice(), b.as_slice()))
                .collect();
            let want = closed_form(&a, &retained, &evicted);
            let base = (h * s + i) * D;
            for (c, w) in want.iter().enumerate() {
                worst = worst.max((got[base + c] as f64 - w).abs());
            }
        }
    }
    assert!(
        worst < tol as f64,
        "largest deviation from the closed form: {worst}"
    );
}

backend_tests!(moment_attention_matches_the_closed_form);
