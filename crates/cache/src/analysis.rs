//! Attention-error diagnostics of an evicting cache against the full cache (MomentKV's analysis).
//!
//! [`AnalyzingCache`] runs an [`EvictingCache`] beside a [`FullCache`] on the same queries, keys
//! and values, and returns the full cache's output, so every layer sees exact inputs and its error
//! is its own (errors do not compound). On each pass announced as [`Phase::Decode`] (the tokens
//! read after the compressed context) it measures, per layer and averaged over query heads and
//! tokens, with `E` the tokens the cache has evicted and `R` those it holds:
//!
//! - `rel_error`: `‖o − o_full‖ / ‖o_full‖`, the cache's attention output against the full one;
//! - `evicted_mass`: `Σ_E p`, the full attention weight on evicted tokens;
//! - `estimate_cosine`: `cos(f_E, f̂_E)`, the evicted tokens' own attention output
//!   `f_E = Σ_E p v / Σ_E p` against its first-order moment estimate `f̂_E = μ_v + C a / n`;
//! - `mismatch_cosine`: `cos(o_R, f_E)`, the retained output against the evicted one (the
//!   "directional mismatch": where it is low, dropping `E` turns the output, not just scales it).
//!
//! The moments in `f̂_E` are those of `E` whether or not the policy keeps them, so a policy
//! without correction still shows what a correction could recover.
//!
//! Replay passes ([`Phase::Replay`], KVzip) go to the evicting cache alone: they only score it.

use burn::tensor::{activation::softmax, Tensor, TensorData};
use momentkv_kernels::KernelBackend;

use crate::attention::logits;
use crate::scorer::host;
use crate::{CacheError, EvictingCache, FullCache, KvCache, Moments, Order, Phase};

/// One layer's diagnostics, means over the measured query heads and tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerReport {
    pub layer: usize,
    pub rel_error: f64,
    pub evicted_mass: f64,
    /// Mean over query rows whose KV head evicted something (`NaN` if none did).
    pub estimate_cosine: f64,
    /// As `estimate_cosine`.
    pub mismatch_cosine: f64,
    /// Query rows measured.
    pub rows: usize,
    /// Of those, rows whose KV head had evicted tokens.
    pub rows_evicted: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    rel_error: f64,
    evicted_mass: f64,
    estimate_cosine: f64,
    mismatch_cosine: f64,
    rows: usize,
    rows_evicted: usize,
}

/// An [`EvictingCache`] measured against a [`FullCache`]; see the module docs.
pub struct AnalyzingCache<B: KernelBackend> {
    full: FullCache<B>,
    cache: EvictingCache<B>,
    phase: Phase,
    sums: Vec<Sums>,
}

impl<B: KernelBackend> AnalyzingCache<B> {
    pub fn new(cache: EvictingCache<B>, layers: usize) -> Self {
        Self {
            full: FullCache::new(layers),
            cache,
            phase: Phase::Prefill,
            sums: vec![Sums::default(); layers],
        }
    }

    /// The evicting cache under analysis.
    pub fn cache(&self) -> &EvictingCache<B> {
        &self.cache
    }

    /// Per-layer diagnostics over every decode pass so far.
    pub fn report(&self) -> Vec<LayerReport> {
        self.sums
            .iter()
            .enumerate()
            .map(|(layer, s)| {
                let per_row = |x: f64| x / s.rows.max(1) as f64;
                let per_evicted = |x: f64| {
                    if s.rows_evicted == 0 {
                        f64::NAN
                    } else {
                        x / s.rows_evicted as f64
                    }
                };
                LayerReport {
                    layer,
                    rel_error: per_row(s.rel_error),
                    evicted_mass: per_row(s.evicted_mass),
                    estimate_cosine: per_evicted(s.estimate_cosine),
                    mismatch_cosine: per_evicted(s.mismatch_cosine),
                    rows: s.rows,
                    rows_evicted: s.rows_evicted,
                }
            })
            .collect()
    }

    /// Measures one pass of `layer` given the cache's held positions before it.
    fn measure(
        &mut self,
        layer: usize,
        q: Tensor<B, 4>,
        held: &[Vec<u32>],
        exact: Tensor<B, 4>,
        approx: Tensor<B, 4>,
    ) {
        let (k, v) = self.full.layer(layer).expect("layer attended");
        let (k, v) = (k.clone(), v.clone());
        let [b, heads, s, d] = q.dims();
        let [_, kv, t, _] = k.dims();
        let g = heads / kv;
        let older = (t - s) as u32;
        let evicted: Vec<f32> = held
            .iter()
            .flat_map(|row| {
                (0..t as u32).map(move |p| {
                    if p < older && row.binary_search(&p).is_err() {
                        1.0
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        let device = k.device();
        let evicted = Tensor::<B, 4>::from_data(TensorData::new(evicted, [b, kv, 1, t]), &device);
        let p = softmax(logits(q.clone(), &k, None, 0, s), 3);
        let p_e = p.clone() * evicted.clone();
        let mass = p_e.clone().sum_dim(3);
        let f_e = p_e.clone().matmul(v.clone()) / mass.clone().clamp_min(1e-30);
        let o_r = (p - p_e).matmul(v.clone()) / (-mass.clone() + 1.0).clamp_min(1e-30);
        let moments = Moments::of(k, v, evicted.swap_dims(2, 3), Order::First);
        let a = q
            .mul_scalar(1.0 / (d as f64).sqrt())
            .reshape([b, kv, g * s, d]);
        let estimate = moments.value_mean
            + a.matmul(moments.cross.swap_dims(2, 3)) / moments.count.clone().clamp_min(1.0);
        let cos = |x: Tensor<B, 4>, y: Tensor<B, 4>| {
            let dot = (x.clone() * y.clone()).sum_dim(3);
            let norms = x.powi_scalar(2).sum_dim(3).sqrt() * y.powi_scalar(2).sum_dim(3).sqrt();
            host(dot / norms.clamp_min(1e-30))
        };
        let norm = |x: Tensor<B, 4>| host(x.powi_scalar(2).sum_dim(3).sqrt());
        let exact = exact.reshape([b, kv, g * s, d]);
        let approx = approx.reshape([b, kv, g * s, d]);
        let rel = norm(approx - exact.clone())
            .into_iter()
            .zip(norm(exact))
            .map(|(e, n)| e / n.max(1e-30));
        let estimate_cos = cos(f_e.clone(), estimate);
        let mismatch = cos(o_r, f_e);
        let mass = host(mass);
        let count = host(moments.count);
        let sums = &mut self.sums[layer];
        for (row, rel) in rel.enumerate() {
            sums.rows += 1;
            sums.rel_error += rel as f64;
            sums.evicted_mass += mass[row] as f64;
            if count[row / (g * s)] > 0.0 {
                sums.rows_evicted += 1;
                sums.estimate_cosine += estimate_cos[row] as f64;
                sums.mismatch_cosine += mismatch[row] as f64;
            }
        }
    }
}

impl<B: KernelBackend> KvCache<B> for AnalyzingCache<B> {
    fn prepare(&mut self, new: usize, phase: Phase) -> Result<usize, CacheError> {
        self.phase = phase;
        let start = self.cache.prepare(new, phase)?;
        if let Phase::Replay { .. } = phase {
            return Ok(start);
        }
        self.full.prepare(new, phase)
    }

    fn attend(
        &mut self,
        layer: usize,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> Result<Tensor<B, 4>, CacheError> {
        let held = match self.phase {
            Phase::Decode => self.cache.kept_positions(layer),
            Phase::Prefill => None,
            Phase::Replay { .. } => return self.cache.attend(layer, q, k, v),
        };
        let approx = self.cache.attend(layer, q.clone(), k.clone(), v.clone())?;
        let exact = self.full.attend(layer, q.clone(), k, v)?;
        if let Some(held) = held {
            self.measure(layer, q, &held, exact.clone(), approx);
        }
        Ok(exact)
    }

    fn seen(&self) -> usize {
        self.full.seen()
    }

    fn bytes(&self) -> usize {
        self.cache.bytes()
    }

    fn replay_chunk(&self) -> Option<usize> {
        self.cache.replay_chunk()
    }

    fn end_replay(&mut self) -> Result<(), CacheError> {
        self.cache.end_replay()
    }
}
