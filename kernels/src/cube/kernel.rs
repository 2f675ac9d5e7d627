//! The CubeCL kernel of [`crate::KernelBackend::moment_attention`].
//!
//! One cube per `(query row i, KV head, batch row b)` serving the KV head's whole query group
//! (`g` heads), so each key and value is read once for `g` queries; `W` units (a power of two,
//! `W ≥ d`). Keys are visited in chunks of `W · per_unit`: unit `u` scores keys `j0 + r·W + u`
//! for every head of the group (`a·k`, `a = q/√d`, plus the bias) into shared memory, each head's
//! chunk max and sum come from one tree reduction each (all heads in the same pass), and unit
//! `u < d` carries output channel `u` of each head's running numerator (online softmax: running
//! max `m`, sum `l`, accumulator rescaled by `e^{m_old − m_new}`). The `S` virtual keys follow the
//! same update, one at a time: logit `a·μ_k + ln n (+ ln(1 + ½ Σ_c a_c² σ²_c))`, value
//! `μ_v + C a / n`. All state is f32 whatever the storage type, so f16 inputs accumulate in f32.
//!
//! WGSL cannot spell `−∞`, so masked keys carry the finite sentinel `f32::MIN` as their logit and
//! get weight 0 by branch, never through `exp(−∞)`.

use cubecl::prelude::*;

/// Bias entries at or below this mask their slot (the cache writes −∞).
const MASKED: f32 = -1.0e30;

/// Tree reductions of the `group` segments `buf[r·W..(r+1)·W]` into `buf[r·W]`: maxima when
/// `max`, else sums. Every unit must call it (it holds barriers).
#[cube]
fn tree_reduce(
    buf: &mut SharedMemory<f32>,
    u: usize,
    #[comptime] group: usize,
    #[comptime] max: bool,
) {
    sync_cube();
    let w = CUBE_DIM_X as usize;
    let mut half = w / 2;
    while half > 0 {
        if u < half {
            for r in 0..group {
                let (at, other) = (r * w + u, r * w + u + half);
                if max {
                    buf[at] = f32::max(buf[at], buf[other]);
                } else {
                    buf[at] += buf[other];
                }
            }
        }
        sync_cube();
        half /= 2;
    }
}

/// Moment-corrected attention, shapes as in [`crate::KernelBackend::moment_attention`]; every
/// tensor contiguous (the host makes them so), indexed by its row-major offsets.
///
/// `bias` and `key_sq` are read only when `has_bias` / `second_order` (the host passes another
/// input in their place otherwise). `width` is `W`, the cube's unit count; `group` is `g`, query
/// heads per KV head; each unit scores `per_unit` keys of every chunk of `W · per_unit`.
/// Shared memory: `4 · W · g · (2 + per_unit)` bytes.
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
    #[comptime] group: usize,
    #[comptime] per_unit: usize,
    #[comptime] has_bias: bool,
    #[comptime] second_order: bool,
    #[define(F)] _dtype: StorageType,
) {
    let i = CUBE_POS_X as usize;
    let kh = CUBE_POS_Y as usize;
    let b = CUBE_POS_Z as usize;
    let u = UNIT_POS_X as usize;
    let w = CUBE_DIM_X as usize;

    let heads = q.shape(1);
    let s = q.shape(2);
    let d = q.shape(3);
    let kv_heads = k.shape(1);
    let t = k.shape(2);
    let summaries = count.shape(2);
    // Query i is token t − s + i: it sees slots 0..=t − s + i.
    let visible = t - s + i + 1;
    let scale = f32::new(1.0) / f32::cast_from(d as u32).sqrt();
    let chunk = w * per_unit;

    // a[r·W + c]: scaled query of head kh·g + r; p[r·chunk + jj]: its chunk logits, then weights.
    let mut a = SharedMemory::<f32>::new(width * group);
    let mut red = SharedMemory::<f32>::new(width * group);
    let mut p = SharedMemory::<f32>::new(width * per_unit * group);

    let mut m = Array::<f32>::new(group);
    let mut l = Array::<f32>::new(group);
    let mut acc = Array::<f32>::new(group);
    let mut top = Array::<f32>::new(group);
    let mut dot = Array::<f32>::new(group);
    for r in 0..group {
        let mut a_u = f32::new(0.0);
        if u < d {
            a_u = f32::cast_from(q[((b * heads + kh * group + r) * s + i) * d + u]) * scale;
        }
        a[r * w + u] = a_u;
        m[r] = f32::min_value();
        l[r] = f32::new(0.0);
        acc[r] = f32::new(0.0);
    }
    sync_cube();

    // Row (b, kh) of k, v, bias and the summaries.
    let g = b * kv_heads + kh;
    let kv0 = g * t * d;

    let mut j0 = 0usize;
    while j0 < visible {
        for r in 0..group {
            top[r] = f32::min_value();
        }
        for pass in 0..per_unit {
            let j = j0 + pass * w + u;
            let mut valid = j < visible;
            if has_bias && valid {
                valid = f32::cast_from(bias[g * t + j]) > f32::new(MASKED);
            }
            for r in 0..group {
                dot[r] = f32::new(0.0);
            }
            if valid {
                let row = kv0 + j * d;
                for c in 0..d {
                    let kc = f32::cast_from(k[row + c]);
                    for r in 0..group {
                        dot[r] += a[r * w + c] * kc;
                    }
                }
                if has_bias {
                    let bv = f32::cast_from(bias[g * t + j]);
                    for r in 0..group {
                        dot[r] += bv;
                    }
                }
            }
            for r in 0..group {
                let mut logit = f32::min_value();
                if valid {
                    logit = dot[r];
                }
                p[r * chunk + pass * w + u] = logit;
                top[r] = f32::max(top[r], logit);
            }
        }
        for r in 0..group {
            red[r * w + u] = top[r];
        }
        tree_reduce(&mut red, u, group, true);
        for r in 0..group {
            // Reuse `top` for the new running max and `dot` for this unit's weight sum.
            top[r] = f32::max(m[r], red[r * w]);
            dot[r] = f32::new(0.0);
        }
        sync_cube();
        for pass in 0..per_unit {
            for r in 0..group {
                let at = r * chunk + pass * w + u;
                let logit = p[at];
                let mut weight = f32::new(0.0);
                if logit > f32::min_value() {
                    weight = (logit - top[r]).exp();
                }
                p[at] = weight;
                dot[r] += weight;
            }
        }
        for r in 0..group {
            red[r * w + u] = dot[r];
        }
        tree_reduce(&mut red, u, group, false);
        for r in 0..group {
            let alpha = (m[r] - top[r]).exp();
            l[r] = l[r] * alpha + red[r * w];
            acc[r] *= alpha;
            m[r] = top[r];
        }
        if u < d {
            let keys = clamp_max(visible - j0, chunk);
            let base = kv0 + j0 * d + u;
            for jj in 0..keys {
                let vv = f32::cast_from(v[base + jj * d]);
                for r in 0..group {
                    acc[r] += p[r * chunk + jj] * vv;
                }
            }
        }
        j0 += chunk;
        sync_cube();
    }

    for e in 0..summaries {
        // Summary (g, e): count at g·S + e, vectors at (g·S + e)·d, cross rows from (g·S + e)·d.
        let sum0 = (g * summaries + e) * d;
        let n = f32::cast_from(count[g * summaries + e]);
        if n > f32::new(0.0) {
            let safe = clamp_min(n, f32::new(1.0));
            let mut mu = f32::new(0.0);
            if u < d {
                mu = f32::cast_from(key_mean[sum0 + u]);
            }
            for r in 0..group {
                red[r * w + u] = a[r * w + u] * mu;
            }
            tree_reduce(&mut red, u, group, false);
            for r in 0..group {
                top[r] = red[r * w] + n.ln();
            }
            if second_order {
                sync_cube();
                let mut var = f32::new(0.0);
                if u < d {
                    var = f32::cast_from(key_sq[sum0 + u]) / safe;
                }
                for r in 0..group {
                    let a_u = a[r * w + u];
                    red[r * w + u] = a_u * a_u * var;
                }
                tree_reduce(&mut red, u, group, false);
                for r in 0..group {
                    top[r] += (f32::new(1.0) + f32::new(0.5) * red[r * w]).ln();
                }
            }
            // `dot` holds each head's C a for channel u.
            for r in 0..group {
                dot[r] = f32::new(0.0);
            }
            if u < d {
                let row = (sum0 + u) * d;
                for c in 0..d {
                    let cc = f32::cast_from(cross[row + c]);
                    for r in 0..group {
                        dot[r] += cc * a[r * w + c];
                    }
                }
            }
            let mut mean_v = f32::new(0.0);
            if u < d {
                mean_v = f32::cast_from(value_mean[sum0 + u]);
            }
            for r in 0..group {
                let m_new = f32::max(m[r], top[r]);
                let alpha = (m[r] - m_new).exp();
                let weight = (top[r] - m_new).exp();
                l[r] = l[r] * alpha + weight;
                acc[r] = acc[r] * alpha + weight * (mean_v + dot[r] / safe);
                m[r] = m_new;
            }
            sync_cube();
        }
    }

    if u < d {
        for r in 0..group {
            out[((b * heads + kh * group + r) * s + i) * d + u] = F::cast_from(acc[r] / l[r]);
        }
    }
}
