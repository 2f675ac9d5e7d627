use burn::config::Config;
use burn::tensor::{activation::softmax, backend::Backend, Bool, Tensor, TensorData};

use super::Entry;
use crate::params::{Args, Param, MAX_POSITIONS};
use crate::scorer::{host, Inputs, Observation, QueryNeed, Scorer};
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "expected",
    aliases: &["expected_attention", "ea"],
    summary: "Expected Attention: softmax of keys against statistics of future queries, times ‖v‖",
    params: &[
        Param::count(
            "n_future",
            512,
            1,
            MAX_POSITIONS,
            "future positions the query statistics are rotated over",
        ),
        Param::count(
            "sinks",
            4,
            0,
            MAX_POSITIONS,
            "first tokens excluded from statistics and softmax, and protected",
        ),
        Param::flag("covariance", true, "add the query covariance term ½ kᵀΣk/d"),
        Param::flag("vnorm", true, "multiply by the value norm ‖v‖"),
        Param::real(
            "epsilon",
            0.0,
            0.0,
            1.0,
            "added to the probability before the value norm",
        ),
    ],
    plain_scorer: true,
    kvpress: &[("expected_attention", "expected")],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    let scorer = Expected {
        n_future: args.count("n_future")?,
        sinks: args.count("sinks")?,
        covariance: args.flag("covariance")?,
        vnorm: args.flag("vnorm")?,
        epsilon: args.real("epsilon")?,
    };
    Ok(Policy {
        sinks: scorer.sinks,
        ..Policy::scored(scorer)
    })
}

/// Expected Attention (Devoto et al., 2025), as kvpress computes it.
///
/// Future queries are modelled as Gaussian: the mean `μ` and covariance `Σ` of the observed
/// pre-RoPE queries (positions `≥ sinks`), each rotated by the average RoPE matrix `R̄` of the next
/// `n_future` positions (`μ ← R̄μ`, `Σ ← R̄ΣR̄ᵀ`). A key's expected logit is
/// `z_j = μ·k_j/√d + ½ k_jᵀΣk_j/d`; the score is `(softmax_j z_j + ε)·‖v_j‖`, averaged over the
/// query group. Sinks are excluded from the softmax and protected by the policy.
///
/// Observed queries are post-RoPE; each is rotated back by its own position, exactly (RoPE is a
/// rotation), so no projection is recomputed.
#[derive(Config, Debug)]
pub struct Expected {
    pub n_future: usize,
    pub sinks: usize,
    pub covariance: bool,
    pub vnorm: bool,
    pub epsilon: f64,
}

/// Mean and covariance (normalised by the count) of pre-RoPE queries, per batch row and query
/// head, after the average future rotation: `[b·h][d]` and `[b·h][d·d]`, in f64.
struct QueryStats {
    mean: Vec<Vec<f64>>,
    cov: Vec<Vec<f64>>,
}

impl Expected {
    fn stats<B: Backend>(&self, obs: &Observation<B>) -> QueryStats {
        let q = obs.queries("Expected Attention");
        let [b, h, n, d] = q.dims();
        let q = host(q);
        let half = d / 2;
        let inv_freq = &obs.geometry.inv_freq;
        let rows: Vec<usize> = (0..n)
            .filter(|&i| obs.first_query + i >= self.sinks)
            .collect();
        let count = rows.len().max(1) as f64;
        let mut mean = Vec::with_capacity(b * h);
        let mut cov = Vec::with_capacity(b * h);
        for bh in 0..b * h {
            // Rotate each query back to position 0: x = q·cos − rotate_half(q)·sin.
            let pre: Vec<Vec<f64>> = rows
                .iter()
                .map(|&i| {
                    let pos = (obs.first_query + i) as f64;
                    let row = &q[(bh * n + i) * d..(bh * n + i + 1) * d];
                    let mut x = vec![0f64; d];
                    for c in 0..half {
                        let (s, co) = (pos * inv_freq[c]).sin_cos();
                        let (a, z) = (row[c] as f64, row[c + half] as f64);
                        x[c] = a * co + z * s;
                        x[c + half] = z * co - a * s;
                    }
                    x
                })
                .collect();
            let mut mu = vec![0f64; d];
            for x in &pre {
                mu.iter_mut().zip(x).for_each(|(m, v)| *m += v / count);
            }
            let mut sigma = vec![0f64; d * d];
            if self.covariance {
                for x in &pre {
                    for i in 0..d {
                        let xi = x[i] - mu[i];
                        for j in 0..d {
                            sigma[i * d + j] += xi * (x[j] - mu[j]) / count;
                        }
                    }
                }
            }
            mean.push(mu);
            cov.push(sigma);
        }
        // R̄ = mean over future positions p of cos(pθ)·I + sin(pθ)·P, with P·x = rotate_half(x).
        let mut r = vec![0f64; d * d];
        for p in obs.seen..obs.seen + self.n_future {
            for c in 0..half {
                let (s, co) = (p as f64 * inv_freq[c]).sin_cos();
                let (s, co) = (s / self.n_future as f64, co / self.n_future as f64);
                r[c * d + c] += co;
                r[(c + half) * d + c + half] += co;
                r[c * d + c + half] -= s;
                r[(c + half) * d + c] += s;
            }
        }
        let matvec = |m: &[f64], x: &[f64]| -> Vec<f64> {
            (0..d)
                .map(|i| (0..d).map(|j| m[i * d + j] * x[j]).sum())
                .collect()
        };
        let mean = mean.iter().map(|mu| matvec(&r, mu)).collect();
        let cov = cov
            .iter()
            .map(|s| {
                // R̄ Σ R̄ᵀ
                let rs: Vec<f64> = (0..d * d)
                    .map(|ij| {
                        (0..d)
                            .map(|k| r[(ij / d) * d + k] * s[k * d + ij % d])
                            .sum()
                    })
                    .collect();
                (0..d * d)
                    .map(|ij| {
                        (0..d)
                            .map(|k| rs[(ij / d) * d + k] * r[(ij % d) * d + k])
                            .sum()
                    })
                    .collect()
            })
            .collect();
        QueryStats { mean, cov }
    }
}

impl<B: Backend> Scorer<B> for Expected {
    fn inputs(&self) -> Inputs {
        Inputs {
            queries: QueryNeed::All,
            ..Inputs::NONE
        }
    }

    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        let [b, kv, t] = obs.dims();
        let g = obs.geometry.group();
        let d = obs.geometry.head_dim;
        let device = obs.keys.device();
        let stats = self.stats(obs);
        let f32s = |x: &[Vec<f64>]| -> Vec<f32> { x.iter().flatten().map(|&v| v as f32).collect() };
        let mu =
            Tensor::<B, 4>::from_data(TensorData::new(f32s(&stats.mean), [b, kv, g, d]), &device);
        let keys = obs.keys.clone();
        let mut z = mu
            .matmul(keys.clone().swap_dims(2, 3))
            .div_scalar((d as f64).sqrt());
        if self.covariance {
            // Σ of the group's heads side by side, [b, kv, d, g·d], so one product gives k·Σ_g.
            let mut side = vec![0f32; b * kv * d * g * d];
            for bk in 0..b * kv {
                for gi in 0..g {
                    let s = &stats.cov[bk * g + gi];
                    for i in 0..d {
                        for j in 0..d {
                            side[((bk * d + i) * g + gi) * d + j] = s[i * d + j] as f32;
                        }
                    }
                }
            }
            let side = Tensor::<B, 4>::from_data(TensorData::new(side, [b, kv, d, g * d]), &device);
            let ks = keys.clone().matmul(side).reshape([b, kv, t, g, d]);
            let quad = (ks * keys.reshape([b, kv, t, 1, d]))
                .sum_dim(4)
                .reshape([b, kv, t, g])
                .swap_dims(2, 3);
            z = z + quad.div_scalar(2.0 * d as f64);
        }
        let excluded: Vec<bool> = (0..b * kv)
            .flat_map(|row| {
                (0..g).flat_map(move |_| {
                    (0..t).map(move |j| {
                        let i = row * t + j;
                        !obs.valid[i] || (obs.positions[i] as usize) < self.sinks
                    })
                })
            })
            .collect();
        let excluded =
            Tensor::<B, 4, Bool>::from_data(TensorData::new(excluded, [b, kv, g, t]), &device);
        let p = softmax(z.mask_fill(excluded, f32::NEG_INFINITY), 3)
            .mean_dim(2)
            .reshape([b, kv, t]);
        if !self.vnorm {
            return host(p);
        }
        let vnorm = obs
            .values
            .clone()
            .powi_scalar(2)
            .sum_dim(3)
            .sqrt()
            .reshape([b, kv, t]);
        host(p.add_scalar(self.epsilon) * vnorm)
    }
}
