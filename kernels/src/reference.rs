//! The ops of [`crate::KernelBackend`] in plain tensor ops: the default bodies and the oracle.

use burn::tensor::{activation::softmax, backend::Backend, Bool, Tensor};

use crate::Moments;

/// `x · wᵀ`: `x` `[m, k]`, `w` `[n, k]` → `[m, n]`.
pub fn dense_reference<B: Backend>(x: Tensor<B, 2>, w: Tensor<B, 2>) -> Tensor<B, 2> {
    x.matmul(w.transpose())
}

/// Rotary embedding; shapes as in [`crate::KernelBackend::rope`].
pub fn rope_reference<B: Backend>(
    x: Tensor<B, 4>,
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
) -> Tensor<B, 4> {
    let [_, s, _, d] = x.dims();
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.clone().narrow(3, d / 2, d / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.reshape([1, s, 1, d]) + rotated * sin.reshape([1, s, 1, d])
}

/// Scaled, masked logits of grouped queries, with the group folded into the query rows.
///
/// - `q`: `[batch, heads, s, d]`, `heads = g · kv_heads`; query `i` sees slots `0..=offset + i`
/// - `k`: `[batch, kv_heads, t, d]`
/// - `bias`: `[batch, kv_heads, 1, t]`, added to every row (0 keeps a slot, −∞ masks it)
/// - returns `a·k` with `a = q/√d`, `[batch, kv_heads, g·s, t]` (rows `r·s..(r+1)·s` are the
///   queries of head `kv·g + r`); keys never repeated in memory
pub fn grouped_logits<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    bias: Option<Tensor<B, 4>>,
    offset: usize,
) -> Tensor<B, 4> {
    let [batch, heads, s, d] = q.dims();
    let [_, kv_heads, t, _] = k.dims();
    let group = heads / kv_heads;
    let q = q
        .mul_scalar(1.0 / (d as f64).sqrt())
        .reshape([batch, kv_heads, group * s, d]);
    let mut logits = q.matmul(k.swap_dims(2, 3));
    // No mask when the first query already sees every slot.
    if offset + 1 < t {
        let mask = Tensor::<B, 2, Bool>::tril_mask([s, t], offset as i64, &logits.device())
            .repeat_dim(0, group)
            .reshape([1, 1, group * s, t]);
        logits = logits.mask_fill(mask, f32::NEG_INFINITY);
    }
    if let Some(bias) = bias {
        logits = logits + bias;
    }
    logits
}

/// Causal grouped-query attention; shapes as in [`crate::KernelBackend::causal_attention`].
pub fn attention_reference<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [batch, heads, s, d] = q.dims();
    let t = k.dims()[2];
    softmax(grouped_logits(q, k, None, t - s), 3)
        .matmul(v)
        .reshape([batch, heads, s, d])
}

/// Moment-corrected attention; shapes and math as in [`crate::KernelBackend::moment_attention`].
///
/// Softmax over the retained logits and the `S` virtual logits `a·μ_k + ln n` (`−∞` for an empty
/// summary), then the retained values and the virtual values `μ_v + C a / n`.
pub fn moment_attention_reference<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Option<Tensor<B, 4>>,
    moments: Moments<B>,
) -> Tensor<B, 4> {
    let [batch, heads, s, d] = q.dims();
    let [_, kv_heads, t, _] = k.dims();
    let group = heads / kv_heads;
    let logits = grouped_logits(q.clone(), k, bias, t - s);
    // a = q/√d with the group folded into rows: [b, kv, g·s, d].
    let a = q
        .mul_scalar(1.0 / (d as f64).sqrt())
        .reshape([batch, kv_heads, group * s, d]);
    let n = moments.count;
    let summaries = n.dims()[2];
    // Virtual logits a·μ_k + ln n: [b, kv, g·s, S].
    let mut virtual_logit =
        a.clone().matmul(moments.key_mean.swap_dims(2, 3)) + n.clone().log().swap_dims(2, 3);
    if let Some(key_sq) = moments.key_sq {
        // + ln(1 + ½ Σ_c a_c² σ_c²), σ² = Σ (k − μ_k)² / n.
        let variance = key_sq / n.clone().clamp_min(1.0);
        let second = a
            .clone()
            .powi_scalar(2)
            .matmul(variance.swap_dims(2, 3))
            .mul_scalar(0.5);
        virtual_logit = virtual_logit + (second + 1.0).log();
    }
    let w = softmax(Tensor::cat(vec![logits, virtual_logit], 3), 3);
    let mut out = w.clone().narrow(3, 0, t).matmul(v);
    for summary in 0..summaries {
        // Virtual value μ_v + C a / n, row form a Cᵀ: [b, kv, g·s, d].
        let cross = moments.cross.clone().narrow(2, summary * d, d);
        let value = moments.value_mean.clone().narrow(2, summary, 1)
            + a.clone().matmul(cross.swap_dims(2, 3))
                / n.clone().narrow(2, summary, 1).clamp_min(1.0);
        out = out + w.clone().narrow(3, t + summary, 1) * value;
    }
    out.reshape([batch, heads, s, d])
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, Tensor, TensorData, Tolerance};

    use super::attention_reference;

    type B = NdArray;

    /// Attention written out per head and per query with explicit loops, as the definition reads.
    fn naive(q: &[f32], k: &[f32], v: &[f32], dims: [usize; 5]) -> Vec<f32> {
        let [heads, kv_heads, s, t, d] = dims;
        let group = heads / kv_heads;
        let mut out = vec![0f32; heads * s * d];
        for h in 0..heads {
            let kh = h / group;
            for i in 0..s {
                let visible = t - s + i + 1;
                let logits: Vec<f32> = (0..visible)
                    .map(|j| {
                        (0..d)
                            .map(|c| q[(h * s + i) * d + c] * k[(kh * t + j) * d + c])
                            .sum::<f32>()
                            / (d as f32).sqrt()
                    })
                    .collect();
                let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let w: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
                let z: f32 = w.iter().sum();
                for c in 0..d {
                    out[(h * s + i) * d + c] = (0..visible)
                        .map(|j| w[j] * v[(kh * t + j) * d + c])
                        .sum::<f32>()
                        / z;
                }
            }
        }
        out
    }

    #[test]
    fn grouped_causal_attention_matches_the_definition() {
        let device = Default::default();
        for (heads, kv_heads, s, t) in [(4, 2, 5, 9), (6, 3, 1, 7), (2, 2, 4, 4), (8, 1, 3, 3)] {
            let d = 8;
            let rand = |shape: [usize; 4]| {
                Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
            };
            let (q, k, v) = (
                rand([1, heads, s, d]),
                rand([1, kv_heads, t, d]),
                rand([1, kv_heads, t, d]),
            );
            let vec = |x: &Tensor<B, 4>| x.to_data().to_vec::<f32>().unwrap();
            let want = naive(&vec(&q), &vec(&k), &vec(&v), [heads, kv_heads, s, t, d]);
            attention_reference(q, k, v)
                .into_data()
                .assert_approx_eq::<f32>(
                    &TensorData::new(want, [1, heads, s, d]),
                    Tolerance::absolute(1e-5),
                );
        }
    }
}
