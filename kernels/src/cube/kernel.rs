//! The CubeCL kernel of [`crate::KernelBackend::moment_attention`].
//!
//! One cube per `(query row i, query head h, batch row b)`, `W` units (a power of two, `W ≥ d`).
//! Keys are visited in chunks of `W · per_unit`: unit `u` scores keys `j0 + r·W + u` (`a·k`,
//! `a = q/√d`, plus the bias) into shared memory, the chunk's max and sum come from one tree
//! reduction each, and unit `u < d`
//! carries output channel `u` of the running numerator (online softmax: running max `m`, sum `l`,
//! accumulator rescaled by `e^{m_old − m_new}`). The `S` virtual keys follow the same update, one
//! at a time: logit `a·μ_k + ln n (+ ln(1 + ½ Σ_c a_c² σ²_c))`, value `μ_v + C a / n`. All state is
//! f32 whatever the storage type, so f16 inputs accumulate in f32.
//!
//! WGSL cannot spell `−∞`, so masked keys carry the finite sentinel `f32::MIN` as their logit and
//! get weight 0 by branch, never through `exp(−∞)`.

use cubecl::prelude::*;

/// Bias entries at or below this mask their slot (the cache writes −∞).
const MASKED: f32 = -1.0e30;

/// Tree sum of `buf[0..W]` into `buf[0]`; every unit must call it (it holds barriers).
#[cube]
fn tree_sum(buf: &mut SharedMemory<f32>, u: usize) {
    sync_cube();
    let mut half = CUBE_DIM_X as usize / 2;
    while half > 0 {
        if u < half {
            buf[u] += buf[u + half];
        }
        sync_cube();
        half /= 2;
    }
}

/// Tree max of `buf[0..W]` into `buf[0]`; every unit must call it.
#[cube]
fn tree_max(buf: &mut SharedMemory<f32>, u: usize) {
    sync_cube();
    let mut half = CUBE_DIM_X as usize / 2;
    while half > 0 {
        if u < half {
            buf[u] = f32::max(buf[u], buf[u + half]);
        }
        sync_cube();
        half /= 2;
    }
}

/// Moment-corrected attention, shapes as in [`crate::KernelBackend::moment_attention`]; every
/// tensor contiguous (the host makes them so), indexed by its row-major offsets.
///
/// `bias` and `key_sq` are read only when `has_bias` / `second_order` (the host passes another
/// input in their place otherwise). `width` is `W`, the cube's unit count; each unit scores
/// `per_unit` keys of every chunk of `W · per_unit`, so a chunk costs two reductions.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn moment_attention_kernel<F: Float>(
    q: &Tensor<F>,
    k: &Tensor<F>,
    v: &Tensor<F>,
    bias: &Tensor<F>,
    count: &Tensor<F>,
    key_mean: &Tensor<F>,
    value_mean: &Tensor<F>,
    cross: &Tensor<F>,
    key_sq: &Tensor<F>,
    out: &mut Tensor<F>,
    #[comptime] width: usize,
    #[comptime] per_unit: usize,
    #[comptime] has_bias: bool,
    #[comptime] second_order: bool,
    #[define(F)] _dtype: StorageType,
) {
    let i = CUBE_POS_X as usize;
    let h = CUBE_POS_Y as usize;
    let b = CUBE_POS_Z as usize;
    let u = UNIT_POS_X as usize;
    let w = CUBE_DIM_X as usize;

    let heads = q.shape(1);
    let s = q.shape(2);
    let d = q.shape(3);
    let kv_heads = k.shape(1);
    let t = k.shape(2);
    let summaries = count.shape(2);
    let kh = h / (heads / kv_heads);
    // Query i is token t − s + i: it sees slots 0..=t − s + i.
    let visible = t - s + i + 1;
    let scale = f32::new(1.0) / f32::cast_from(d as u32).sqrt();

    let mut a = SharedMemory::<f32>::new(width);
    let mut red = SharedMemory::<f32>::new(width);
    let mut p = SharedMemory::<f32>::new(width * per_unit);

    let mut a_u = f32::new(0.0);
    if u < d {
        a_u = f32::cast_from(q[((b * heads + h) * s + i) * d + u]) * scale;
    }
    a[u] = a_u;
    sync_cube();

    // Row (b, kh) of k, v, bias and the summaries.
    let g = b * kv_heads + kh;
    let kv0 = g * t * d;
    let mut m = f32::min_value();
    let mut l = f32::new(0.0);
    let mut acc = f32::new(0.0);

    // Chunks of W·per_unit keys; unit u scores keys u, u + W, ... of the chunk.
    let chunk = w * per_unit;
    let mut j0 = 0usize;
    while j0 < visible {
        let mut top = f32::min_value();
        for r in 0..per_unit {
            let j = j0 + r * w + u;
            let mut logit = f32::min_value();
            if j < visible {
                let row = kv0 + j * d;
                let mut dot = f32::new(0.0);
                for c in 0..d {
                    dot += a[c] * f32::cast_from(k[row + c]);
                }
                logit = dot;
                if has_bias {
                    let bv = f32::cast_from(bias[g * t + j]);
                    if bv > f32::new(MASKED) {
                        logit = dot + bv;
                    } else {
                        logit = f32::min_value();
                    }
                }
            }
            p[r * w + u] = logit;
            top = f32::max(top, logit);
        }
        red[u] = top;
        tree_max(&mut red, u);
        let m_new = f32::max(m, red[0]);
        sync_cube();
        let mut sum = f32::new(0.0);
        for r in 0..per_unit {
            let logit = p[r * w + u];
            let mut pj = f32::new(0.0);
            if logit > f32::min_value() {
                pj = (logit - m_new).exp();
            }
            p[r * w + u] = pj;
            sum += pj;
        }
        red[u] = sum;
        tree_sum(&mut red, u);
        let alpha = (m - m_new).exp();
        l = l * alpha + red[0];
        if u < d {
            let keys = clamp_max(visible - j0, chunk);
            let base = kv0 + j0 * d + u;
            let mut part = f32::new(0.0);
            for jj in 0..keys {
                part += p[jj] * f32::cast_from(v[base + jj * d]);
            }
            acc = acc * alpha + part;
        }
        m = m_new;
        j0 += chunk;
        sync_cube();
    }

    for e in 0..summaries {
        // Summary (g, e): count at g·S + e, vectors at (g·S + e)·d, cross rows from (g·S + e)·d.
        let sum0 = (g * summaries + e) * d;
        let n = f32::cast_from(count[g * summaries + e]);
        if n > f32::new(0.0) {
            let mut part = f32::new(0.0);
            if u < d {
                part = a_u * f32::cast_from(key_mean[sum0 + u]);
            }
            red[u] = part;
            tree_sum(&mut red, u);
            let mut logit = red[0] + n.ln();
            if second_order {
                sync_cube();
                let mut sq = f32::new(0.0);
                if u < d {
                    sq = a_u * a_u * f32::cast_from(key_sq[sum0 + u]) / clamp_min(n, f32::new(1.0));
                }
                red[u] = sq;
                tree_sum(&mut red, u);
                logit += (f32::new(1.0) + f32::new(0.5) * red[0]).ln();
            }
            let m_new = f32::max(m, logit);
            let alpha = (m - m_new).exp();
            let weight = (logit - m_new).exp();
            l = l * alpha + weight;
            if u < d {
                let row = (sum0 + u) * d;
                let mut ca = f32::new(0.0);
                for c in 0..d {
                    ca += f32::cast_from(cross[row + c]) * a[c];
                }
                let value = f32::cast_from(value_mean[sum0 + u]) + ca / clamp_min(n, f32::new(1.0));
                acc = acc * alpha + weight * value;
            }
            m = m_new;
            sync_cube();
        }
    }

    if u < d {
        out[((b * heads + h) * s + i) * d + u] = F::cast_from(acc / l);
    }
}
