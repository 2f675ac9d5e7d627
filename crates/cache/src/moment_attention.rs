//! MomentKV's normalisation-corrected attention (arXiv 2606.01563) over the retained tokens and
//! the [`Moments`] of the evicted ones (count `n`, key mean `μ_k`, value mean `μ_v`, centred cross
//! moment `C = Σ_E (v − μ_v)(k − μ_k)ᵀ`).
//!
//! With `a = q / √d`, expanding `e^{a·k}` to first order around `μ_k` gives the evicted part of
//! attention in closed form (normalisation-corrected attention):
//!
//! ```text
//! o = (N_R + e^{a·μ_k} (n μ_v + C a)) / (D_R + n e^{a·μ_k}),  N_R = Σ_R e^{a·k} v,  D_R = Σ_R e^{a·k}
//! ```
//!
//! computed as softmax over the retained logits plus one virtual logit `a·μ_k + ln n` whose value is
//! `μ_v + C a / n` (one running max, so no overflow); with `n = 0` it is exact attention over the
//! retained tokens.
//!
//! Several summaries per head: a policy's `segment=L` summarises the evicted tokens of each block
//! of `L` positions separately (summary `s` holds positions `s·L..(s+1)·L`), each a virtual key of
//! its own; the summaries are laid along dimension 2 (`S` of them), one summary is `S = 1`.
//!
//! [`crate::Order::Second`] also keeps each key channel's centred sum of squares `Σ_E (k − μ_k)²` (`d`
//! floats more) and adds the second-order term of the normaliser,
//! `Σ_E e^{a·k} ≈ n e^{a·μ_k} (1 + ½ Σ_c a_c² σ_c²)`, to the virtual logit: by convexity the
//! first-order normaliser never exceeds the true one, and this recovers most of the gap. The
//! value keeps its first-order form (the matching second-order numerator term needs third
//! moments). The Gaussian closed form `e^{½ aᵀΣa}` would overshoot here: evicted keys are the ones
//! the queries do not point at, so their spread along the queries is truncated from above.

use burn::tensor::Tensor;
use momentkv_kernels::{KernelBackend, Moments};

/// Normalisation-corrected causal attention: [`crate::masked_attention`] over the retained slots
/// plus each summary of the evicted set as one virtual key per KV head (see the module docs), by
/// [`KernelBackend::moment_attention`] (a fused kernel on the cube backends).
///
/// - `q`: `[batch, heads, s, d]`, the new tokens (the last `s` of the `t` slots)
/// - `k`, `v`: `[batch, kv_heads, t, d]`; `bias`: `[batch, kv_heads, 1, t]` or `None`
/// - returns `[batch, heads, s, d]`
pub fn moment_attention<B: KernelBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Option<&Tensor<B, 4>>,
    moments: &Moments<B>,
) -> Tensor<B, 4> {
    B::moment_attention(q, k, v, bias.cloned(), moments.clone())
}
