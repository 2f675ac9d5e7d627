//! Attention over a cache's slots when the fast path does not apply: heads holding different
//! numbers of tokens (padding masked out), or a policy that needs the attention weights.
//!
//! Layout throughout: the cache's `t` slots with the `new` tokens of this pass last; queries
//! `[batch, heads, s, d]` are the new tokens (or a block of them), grouped onto KV heads by
//! folding the group into the query rows, `[batch, kv_heads, g·s, d]`.

use burn::tensor::{activation::softmax, backend::Backend, Tensor};
use momentkv_kernels::grouped_logits;

/// Query rows attended per block in [`attention_with_mass`], bounding the weights held at once
/// to `batch · heads · QUERY_BLOCK · t` floats.
const QUERY_BLOCK: usize = 256;

/// Scaled, masked logits `[batch, kv_heads, g·s, t]` of the queries `q` `[batch, heads, s, d]`,
/// which are new tokens `first..first + s` of the `new` last slots of `k` `[batch, kv_heads, t, d]`.
///
/// `bias`: `[batch, kv_heads, 1, t]`, added to every query's logits (0 to keep, −∞ to mask a
/// padding slot).
pub(crate) fn logits<B: Backend>(
    q: Tensor<B, 4>,
    k: &Tensor<B, 4>,
    bias: Option<&Tensor<B, 4>>,
    first: usize,
    new: usize,
) -> Tensor<B, 4> {
    let t = k.dims()[2];
    grouped_logits(q, k.clone(), bias.cloned(), t - new + first)
}

/// Causal grouped attention of the `s` new tokens (the last `s` slots) over every slot, with
/// padding slots masked by `bias`.
///
/// - `q`: `[batch, heads, s, d]`; `k`, `v`: `[batch, kv_heads, t, d]`
/// - `bias`: `[batch, kv_heads, 1, t]`, 0 keeps a slot, −∞ masks it
/// - returns `[batch, heads, s, d]`
pub fn masked_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Option<&Tensor<B, 4>>,
) -> Tensor<B, 4> {
    let [batch, heads, s, d] = q.dims();
    let w = softmax(logits(q, &k, bias, 0, s), 3);
    w.matmul(v).reshape([batch, heads, s, d])
}

/// [`masked_attention`] that also returns the attention mass each slot received: the weights
/// summed over the new queries and averaged over each KV head's query group, `[batch, kv_heads, t]`
/// (H2O's accumulated attention for one pass). Queries are processed in blocks.
pub fn attention_with_mass<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Option<&Tensor<B, 4>>,
) -> (Tensor<B, 4>, Tensor<B, 3>) {
    let [batch, heads, s, d] = q.dims();
    let [_, kv_heads, t, _] = k.dims();
    let group = heads / kv_heads;
    let mut outs = Vec::new();
    let mut mass: Option<Tensor<B, 4>> = None;
    for first in (0..s).step_by(QUERY_BLOCK) {
        let rows = QUERY_BLOCK.min(s - first);
        let w = softmax(
            logits(q.clone().narrow(2, first, rows), &k, bias, first, s),
            3,
        );
        let m = w.clone().sum_dim(2);
        mass = Some(match mass {
            None => m,
            Some(acc) => acc + m,
        });
        outs.push(w.matmul(v.clone()).reshape([batch, heads, rows, d]));
    }
    let mass = mass
        .expect("at least one query")
        .div_scalar(group as f64)
        .reshape([batch, kv_heads, t]);
    (Tensor::cat(outs, 2), mass)
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, Tensor, Tolerance};
    use momentkv_kernels::attention_reference;

    use super::*;

    type B = NdArray;

    fn rand(shape: [usize; 4]) -> Tensor<B, 4> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    #[test]
    fn unmasked_attention_is_causal_attention() {
        for (heads, kv, s, t) in [(4, 2, 5, 9), (6, 3, 1, 7), (2, 2, 300, 310)] {
            let (q, k, v) = (
                rand([2, heads, s, 8]),
                rand([2, kv, t, 8]),
                rand([2, kv, t, 8]),
            );
            let want = attention_reference(q.clone(), k.clone(), v.clone()).into_data();
            masked_attention(q.clone(), k.clone(), v.clone(), None)
                .into_data()
                .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
            attention_with_mass(q, k, v, None)
                .0
                .into_data()
                .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
        }
    }

    #[test]
    fn masked_slots_are_as_if_absent() {
        // Slot 2 of 6 older slots masked: same output as attention without it.
        let (q, k, v) = (rand([1, 4, 3, 8]), rand([1, 2, 9, 8]), rand([1, 2, 9, 8]));
        let mut bias = vec![0f32; 2 * 9];
        bias[2] = f32::NEG_INFINITY;
        bias[9 + 2] = f32::NEG_INFINITY;
        let bias =
            Tensor::<B, 1>::from_floats(bias.as_slice(), &Default::default()).reshape([1, 2, 1, 9]);
        let keep =
            |x: Tensor<B, 4>| Tensor::cat(vec![x.clone().narrow(2, 0, 2), x.narrow(2, 3, 6)], 2);
        let want = attention_reference(q.clone(), keep(k.clone()), keep(v.clone())).into_data();
        masked_attention(q.clone(), k.clone(), v.clone(), Some(&bias))
            .into_data()
            .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
        let (out, mass) = attention_with_mass(q, k, v, Some(&bias));
        out.into_data()
            .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
        let mass = mass.into_data().to_vec::<f32>().unwrap();
        assert_eq!(mass[2], 0.0);
        // Each KV head's mass sums to the number of queries (each row of weights sums to 1).
        for h in 0..2 {
            let total: f32 = mass[h * 9..(h + 1) * 9].iter().sum();
            assert!((total - 3.0).abs() < 1e-4, "{total}");
        }
    }
}
