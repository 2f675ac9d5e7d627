use burn::backend::Flex;
use burn::tensor::Tensor;

use crate::{attention_reference, dense_reference, rope_reference, KernelBackend};

impl KernelBackend for Flex {
    fn dense(x: Tensor<Self, 2>, w: Tensor<Self, 2>) -> Tensor<Self, 2> {
        #[cfg(openblas)]
        if let Some(y) = fast::dense(&x, &w) {
            return y;
        }
        dense_reference(x, w)
    }

    fn causal_attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        #[cfg(openblas)]
        if let Some(out) = fast::attention(&q, &k, &v) {
            return out;
        }
        attention_reference(q, k, v)
    }

    fn rope(x: Tensor<Self, 4>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 4> {
        rotary::rope(&x, &cos, &sin).unwrap_or_else(|| rope_reference(x, cos, sin))
    }

    fn kernel_engine() -> &'static str {
        if cfg!(openblas) {
            "openblas"
        } else {
            "tensor ops"
        }
    }
}

/// Rotary embedding in one pass over contiguous f32 memory.
mod rotary {
    use burn::backend::Flex;
    use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
    use burn_flex::FlexTensor;

    pub fn rope(
        x: &Tensor<Flex, 4>,
        cos: &Tensor<Flex, 2>,
        sin: &Tensor<Flex, 2>,
    ) -> Option<Tensor<Flex, 4>> {
        let [b, s, h, d] = x.dims();
        if [x.dtype(), cos.dtype(), sin.dtype()] != [DType::F32; 3]
            || cos.dims() != [s, d]
            || sin.dims() != [s, d]
            || d % 2 != 0
        {
            return None;
        }
        let prim = |t: &Tensor<Flex, 2>| -> FlexTensor {
            t.clone().into_primitive().tensor().to_contiguous()
        };
        let xt: FlexTensor = x.clone().into_primitive().tensor().to_contiguous();
        let (ct, st) = (prim(cos), prim(sin));
        let (xs, cs, ss) = (
            xt.as_slice::<f32>()?,
            ct.as_slice::<f32>()?,
            st.as_slice::<f32>()?,
        );
        let half = d / 2;
        let mut out = vec![0f32; xs.len()];
        for (row, (x, y)) in xs.chunks_exact(d).zip(out.chunks_exact_mut(d)).enumerate() {
            let pos = (row / h) % s;
            let (c, sn) = (&cs[pos * d..][..d], &ss[pos * d..][..d]);
            for j in 0..half {
                let (x1, x2) = (x[j], x[j + half]);
                y[j] = x1 * c[j] - x2 * sn[j];
                y[j + half] = x2 * c[j + half] + x1 * sn[j + half];
            }
        }
        let t = FlexTensor::from_data(TensorData::new(out, [b, s, h, d]));
        Some(Tensor::from_primitive(TensorPrimitive::Float(t)))
    }
}

/// The OpenBLAS paths: f32 tensors read in place; `None` sends other cases to the reference.
#[cfg(openblas)]
mod fast {
    use burn::backend::Flex;
    use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
    use burn_flex::FlexTensor;

    use crate::blas::{gemm, Matrix};

    /// Query positions attended at once: bounds the score buffer to `ROWS × t` floats.
    const ROWS: usize = 256;

    fn storage<const D: usize>(t: &Tensor<Flex, D>) -> Option<FlexTensor> {
        (t.dtype() == DType::F32).then(|| t.clone().into_primitive().tensor())
    }

    fn wrap<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<Flex, D> {
        let t = FlexTensor::from_data(TensorData::new(values, shape));
        Tensor::from_primitive(TensorPrimitive::Float(t))
    }

    /// A 2-D view as a row-major BLAS matrix, or its transpose; `None` for other strides.
    fn matrix(t: &FlexTensor) -> Option<(Matrix<'_>, bool)> {
        let (rows, cols, rs, cs) = t.layout().as_2d_strides()?;
        let data = &t.storage::<f32>()[t.layout().start_offset()..];
        if cs == 1 && rs >= 0 {
            Some((
                Matrix {
                    data,
                    rows,
                    cols,
                    ld: (rs as usize).max(cols),
                },
                false,
            ))
        } else if rs == 1 && cs >= 0 {
            Some((
                Matrix {
                    data,
                    rows: cols,
                    cols: rows,
                    ld: (cs as usize).max(rows),
                },
                true,
            ))
        } else {
            None
        }
    }

    pub fn dense(x: &Tensor<Flex, 2>, w: &Tensor<Flex, 2>) -> Option<Tensor<Flex, 2>> {
        let (xt, wt) = (storage(x)?, storage(w)?);
        let (a, a_transposed) = matrix(&xt)?;
        let (b, w_transposed) = matrix(&wt)?;
        if a_transposed {
            return None;
        }
        // y = x · wᵀ: w stored [n, k] is used transposed; a transposed view of [k, n] is not.
        let n = if w_transposed { b.cols } else { b.rows };
        let mut out = vec![0f32; a.rows * n];
        gemm(1.0, a, b, !w_transposed, &mut out).then(|| wrap(out, [a.rows, n]))
    }

    pub fn attention(
        q: &Tensor<Flex, 4>,
        k: &Tensor<Flex, 4>,
        v: &Tensor<Flex, 4>,
    ) -> Option<Tensor<Flex, 4>> {
        let [batch, heads, s, d] = q.dims();
        let [_, kv_heads, t, _] = k.dims();
        if kv_heads == 0 || heads % kv_heads != 0 || t < s || v.dims() != k.dims() {
            return None;
        }
        let contiguous = |x: &Tensor<Flex, 4>| storage(x).map(|t| t.to_contiguous());
        let (qt, kt, vt) = (contiguous(q)?, contiguous(k)?, contiguous(v)?);
        let (q, k, v) = (
            qt.as_slice::<f32>()?,
            kt.as_slice::<f32>()?,
            vt.as_slice::<f32>()?,
        );
        let group = heads / kv_heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0f32; batch * heads * s * d];
        let mut scores = vec![0f32; s.min(ROWS) * t];
        for bhead in 0..batch * heads {
            let kv = bhead / group;
            let keys = &k[kv * t * d..][..t * d];
            let values = &v[kv * t * d..][..t * d];
            let q_head = &q[bhead * s * d..][..s * d];
            let o_head = &mut out[bhead * s * d..][..s * d];
            // Positions p0..p0 + n see keys up to t − s + p0 + n: later keys are never scored.
            for p0 in (0..s).step_by(ROWS) {
                let n = ROWS.min(s - p0);
                let seen = t - s + p0 + n;
                let block = &mut scores[..n * seen];
                let qb = Matrix::dense(&q_head[p0 * d..][..n * d], n, d);
                if !gemm(
                    scale,
                    qb,
                    Matrix::dense(&keys[..seen * d], seen, d),
                    true,
                    block,
                ) {
                    return None;
                }
                for (i, row) in block.chunks_exact_mut(seen).enumerate() {
                    softmax_causal(row, seen - n + i + 1);
                }
                let probs = Matrix::dense(block, n, seen);
                let vb = Matrix::dense(&values[..seen * d], seen, d);
                if !gemm(1.0, probs, vb, false, &mut o_head[p0 * d..][..n * d]) {
                    return None;
                }
            }
        }
        Some(wrap(out, [batch, heads, s, d]))
    }

    /// Softmax over `row[..visible]` in place, zeros after it.
    fn softmax_causal(row: &mut [f32], visible: usize) {
        let (seen, hidden) = row.split_at_mut(visible);
        let max = seen.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for x in seen.iter_mut() {
            *x = (*x - max).exp();
            sum += *x;
        }
        let inv = 1.0 / sum;
        seen.iter_mut().for_each(|x| *x *= inv);
        hidden.fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Flex, NdArray};
    use burn::tensor::{Distribution, Tensor, Tolerance};

    use crate::{attention_reference, KernelBackend};

    fn random<const D: usize>(shape: [usize; D]) -> Tensor<Flex, D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    fn on_ndarray<const D: usize>(x: &Tensor<Flex, D>) -> Tensor<NdArray, D> {
        Tensor::from_data(x.to_data(), &Default::default())
    }

    /// The flex path agrees with plain matmul on another backend, for decode (m = 1) and prefill
    /// shapes, with `[n, k]` weights and with transposed views of `[k, n]` ones.
    #[test]
    fn flex_dense_matches_reference() {
        for (m, k, n) in [(1, 64, 96), (1, 576, 1536), (7, 33, 5), (128, 64, 200)] {
            let (x, w) = (random([m, k]), random([n, k]));
            let want = on_ndarray(&x)
                .matmul(on_ndarray(&w).transpose())
                .into_data();
            let tol = Tolerance::absolute(1e-4 * (k as f32).sqrt());
            Flex::dense(x.clone(), w.clone())
                .into_data()
                .assert_approx_eq::<f32>(&want, tol);
            let w_kn = Tensor::<Flex, 2>::from_data(w.transpose().into_data(), &Default::default());
            Flex::dense(x, w_kn.transpose())
                .into_data()
                .assert_approx_eq::<f32>(&want, tol);
        }
    }

    #[test]
    fn flex_rope_matches_reference() {
        let (x, cos, sin) = (random([2, 5, 3, 8]), random([5, 8]), random([5, 8]));
        let want =
            crate::rope_reference(on_ndarray(&x), on_ndarray(&cos), on_ndarray(&sin)).into_data();
        Flex::rope(x.clone(), cos.clone(), sin.clone())
            .into_data()
            .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-6));
        // A non-contiguous input (heads-first view) gives the same result.
        let x_view = x.clone().swap_dims(1, 2).swap_dims(1, 2);
        Flex::rope(x_view, cos, sin)
            .into_data()
            .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-6));
    }

    /// The flex path agrees with the reference (run on ndarray) for prefill, chunked prefill and
    /// decode shapes, GQA ratios 1 to 4, and more query rows than one score block.
    #[test]
    fn flex_attention_matches_reference() {
        for (b, h, kvh, s, t, d) in [
            (1, 4, 2, 5, 9, 8),
            (2, 6, 3, 1, 40, 16),
            (1, 8, 2, 300, 300, 64),
            (1, 3, 3, 17, 17, 64),
            (1, 4, 1, 70, 130, 32),
        ] {
            let (q, k, v) = (
                random([b, h, s, d]),
                random([b, kvh, t, d]),
                random([b, kvh, t, d]),
            );
            let want =
                attention_reference(on_ndarray(&q), on_ndarray(&k), on_ndarray(&v)).into_data();
            Flex::causal_attention(q, k, v)
                .into_data()
                .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
        }
    }
}
