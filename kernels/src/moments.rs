//! Moment statistics of evicted tokens (MomentKV, arXiv 2606.01563): what
//! [`crate::KernelBackend::moment_attention`] reads in place of the tokens they summarise.
//!
//! Per batch row and KV head the evicted set `E` is summarised by its count `n`, key mean
//! `μ_k = Σ_E k / n`, value mean `μ_v = Σ_E v / n` and centred cross moment
//! `C = Σ_E (v − μ_v)(k − μ_k)ᵀ` (`head_dim × head_dim`; `C = S − s_v s_kᵀ / n` with `S = Σ v kᵀ`).
//! Means and the centred moment, merged Chan-style, stay accurate in f32 over tens of thousands
//! of evicted tokens, where raw sums would lose the small centred part to cancellation.
//!
//! Several summaries per head (one per block of positions, say) are laid along dimension 2, `S` of
//! them; one summary is `S = 1`. [`Order::Second`] also keeps each key channel's centred sum of
//! squares `Σ_E (k − μ_k)²` (`d` floats more) for the second-order normaliser.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{backend::Backend, Tensor};

/// Which terms of the expansion of `e^{a·k}` around `μ_k` the correction keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// MomentKV's first-order correction.
    #[default]
    First,
    /// Plus the diagonal key variance in the normaliser.
    Second,
}

impl FromStr for Order {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1" => Ok(Self::First),
            "2" => Ok(Self::Second),
            _ => Err("expected 1 (first order) or 2 (plus the key variance)".into()),
        }
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::First => "1",
            Self::Second => "2",
        })
    }
}

/// Moments of the evicted tokens of one layer: `S` summaries per `[batch, kv_heads]` row.
#[derive(Debug, Clone)]
pub struct Moments<B: Backend> {
    /// Evicted count `n`, `[batch, kv_heads, S, 1]`.
    pub count: Tensor<B, 4>,
    /// Key mean `μ_k`, `[batch, kv_heads, S, head_dim]`.
    pub key_mean: Tensor<B, 4>,
    /// Value mean `μ_v`, `[batch, kv_heads, S, head_dim]`.
    pub value_mean: Tensor<B, 4>,
    /// Centred cross moment `C = Σ (v − μ_v)(k − μ_k)ᵀ`, `[batch, kv_heads, S·head_dim, head_dim]`
    /// (summary `s` in rows `s·d..(s+1)·d`; row index over value channels, column over key
    /// channels).
    pub cross: Tensor<B, 4>,
    /// Centred sum of squares of each key channel `Σ (k − μ_k)²`, `[batch, kv_heads, S, head_dim]`,
    /// kept for [`Order::Second`].
    pub key_sq: Option<Tensor<B, 4>>,
}

impl<B: Backend> Moments<B> {
    /// Nothing evicted yet.
    pub fn empty(
        batch: usize,
        kv_heads: usize,
        head_dim: usize,
        order: Order,
        device: &B::Device,
    ) -> Self {
        Self {
            count: Tensor::zeros([batch, kv_heads, 1, 1], device),
            key_mean: Tensor::zeros([batch, kv_heads, 1, head_dim], device),
            value_mean: Tensor::zeros([batch, kv_heads, 1, head_dim], device),
            cross: Tensor::zeros([batch, kv_heads, head_dim, head_dim], device),
            key_sq: (order == Order::Second)
                .then(|| Tensor::zeros([batch, kv_heads, 1, head_dim], device)),
        }
    }

    /// The moments of `keys`, `values` `[batch, kv_heads, m, head_dim]`, counting only the tokens
    /// where `weight` `[batch, kv_heads, m, 1]` is 1 (0 for padding); rows with none are empty.
    pub fn of(
        keys: Tensor<B, 4>,
        values: Tensor<B, 4>,
        weight: Tensor<B, 4>,
        order: Order,
    ) -> Self {
        let count = weight.clone().sum_dim(2);
        let safe = count.clone().clamp_min(1.0);
        let key_mean = (keys.clone() * weight.clone()).sum_dim(2) / safe.clone();
        let value_mean = (values.clone() * weight.clone()).sum_dim(2) / safe;
        let dk = (keys - key_mean.clone()) * weight.clone();
        let dv = (values - value_mean.clone()) * weight;
        let key_sq = (order == Order::Second).then(|| dk.clone().powi_scalar(2).sum_dim(2));
        let cross = dv.swap_dims(2, 3).matmul(dk);
        Self {
            count,
            key_mean,
            value_mean,
            cross,
            key_sq,
        }
    }

    /// Moments per row, `S`.
    pub fn summaries(&self) -> usize {
        self.count.dims()[2]
    }

    /// These summaries followed by `other`'s, along the summary axis.
    pub fn concat(self, other: Self) -> Self {
        let cat = |a: Tensor<B, 4>, b: Tensor<B, 4>| Tensor::cat(vec![a, b], 2);
        Self {
            count: cat(self.count, other.count),
            key_mean: cat(self.key_mean, other.key_mean),
            value_mean: cat(self.value_mean, other.value_mean),
            cross: cat(self.cross, other.cross),
            key_sq: match (self.key_sq, other.key_sq) {
                (Some(a), Some(b)) => Some(cat(a, b)),
                (None, None) => None,
                _ => panic!("concatenating moments of different orders"),
            },
        }
    }

    /// These moments with empty summaries appended up to `summaries`.
    fn padded(self, summaries: usize) -> Self {
        let have = self.summaries();
        if have >= summaries {
            return self;
        }
        let [b, kv, _, d] = self.key_mean.dims();
        let order = if self.key_sq.is_some() {
            Order::Second
        } else {
            Order::First
        };
        let device = self.count.device();
        (have..summaries).fold(self, |m, _| m.concat(Self::empty(b, kv, d, order, &device)))
    }

    /// The count and key mean of all summaries pooled, `[batch, kv_heads, 1, 1]` and
    /// `[batch, kv_heads, 1, head_dim]`.
    pub fn pooled_key_mean(&self) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let count = self.count.clone().sum_dim(2);
        let sum = (self.key_mean.clone() * self.count.clone()).sum_dim(2);
        (count.clone(), sum / count.clamp_min(1.0))
    }

    /// Merges another set's moments into these, summary by summary (Chan et al.'s pairwise
    /// update): `n = n_a + n_b`, `μ = μ_a + δ n_b / n`, `C = C_a + C_b + δ_v δ_kᵀ n_a n_b / n`.
    /// The one with fewer summaries is padded with empty ones.
    pub fn merge(self, other: Self) -> Self {
        let summaries = self.summaries().max(other.summaries());
        let (this, other) = (self.padded(summaries), other.padded(summaries));
        let [b, kv, _, d] = this.key_mean.dims();
        let count = this.count.clone() + other.count.clone();
        let safe = count.clone().clamp_min(1.0);
        let share = other.count.clone() / safe.clone();
        let dk = other.key_mean - this.key_mean.clone();
        let dv = other.value_mean - this.value_mean.clone();
        let weight = this.count * other.count / safe;
        // δ_v δ_kᵀ per summary: [b·kv·S, d, 1] × [b·kv·S, 1, d].
        let rows = b * kv * summaries;
        let outer = dv
            .clone()
            .reshape([rows, d, 1])
            .matmul(dk.clone().reshape([rows, 1, d]))
            * weight.clone().reshape([rows, 1, 1]);
        let cross = this.cross + other.cross + outer.reshape([b, kv, summaries * d, d]);
        let key_sq = match (this.key_sq, other.key_sq) {
            (Some(x), Some(y)) => Some(x + y + dk.clone().powi_scalar(2) * weight),
            (None, None) => None,
            _ => panic!("merging moments of different orders"),
        };
        Self {
            key_sq,
            key_mean: this.key_mean + dk * share.clone(),
            value_mean: this.value_mean + dv * share,
            count,
            cross,
        }
    }

    /// Bytes held: `d² + 2d + 1` floats per summary, row and head (`d² + 3d + 1` at
    /// [`Order::Second`]).
    pub fn bytes(&self) -> usize {
        [&self.count, &self.key_mean, &self.value_mean, &self.cross]
            .into_iter()
            .chain(self.key_sq.as_ref())
            .map(|x| x.shape().num_elements() * x.dtype().size())
            .sum()
    }
}
