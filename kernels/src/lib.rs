//! Backend extension ops for momentkv.
//!
//! [`KernelBackend`] extends burn's `Backend` with the operations momentkv wants faster than a
//! chain of generic tensor ops gives them. Each op has a default body in plain tensor ops, which is
//! also the reference every fast path is tested against; a backend overrides what it can do
//! better. Models and caches call these ops through the trait and never name a backend.
//!
//! Fast paths today, on burn-flex when the build found the system's OpenBLAS (see `build.rs`):
//! `dense` is one `sgemm` (`sgemv` for the one-row products of decoding), and `causal_attention` is two
//! `sgemm`s per KV head around an in-place causal softmax, without materialising masks or
//! repeated keys. `rope` on burn-flex is one pass over contiguous memory (no BLAS needed).

mod moments;
mod reference;

#[cfg(feature = "autodiff")]
mod autodiff;
#[cfg(feature = "cube")]
mod cube;

#[cfg(openblas)]
mod blas;
#[cfg(feature = "flex")]
mod flex;

use burn::tensor::{backend::Backend, Tensor};

pub use moments::{Moments, Order};
pub use reference::{
    attention_reference, dense_reference, grouped_logits, moment_attention_reference,
    rope_reference,
};

/// A burn backend with momentkv's extension ops.
pub trait KernelBackend: Backend {
    /// A dense layer's product `y = x · wᵀ`: `x` `[m, k]`, `w` `[n, k]` (the `[out, in]` layout
    /// of Hugging Face and PyTorch weights) → `[m, n]`.
    fn dense(x: Tensor<Self, 2>, w: Tensor<Self, 2>) -> Tensor<Self, 2> {
        dense_reference(x, w)
    }

    /// Causal grouped-query attention `softmax(q kᵀ / √d) v` of the last `s` of `t` positions.
    ///
    /// - `q`: `[batch, heads, s, d]`; `k`, `v`: `[batch, kv_heads, t, d]`, `heads = g · kv_heads`,
    ///   query head `h` reading KV head `h / g`
    /// - query `i` sees keys `0..=t − s + i`
    /// - returns `[batch, heads, s, d]`
    fn causal_attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        attention_reference(q, k, v)
    }

    /// Causal grouped-query attention over retained keys plus `S` virtual keys that stand for
    /// evicted tokens (MomentKV's normalisation-corrected attention).
    ///
    /// With `a = q/√d`, summary `e` of `n_e` evicted tokens (key mean `μ_k`, value mean `μ_v`,
    /// centred cross moment `C`) enters the softmax as one key with logit `a·μ_k + ln n_e` (plus
    /// `ln(1 + ½ Σ_c a_c² σ²_c)` when `key_sq` holds `Σ (k − μ_k)²`, `σ² = key_sq / n_e`) and value
    /// `μ_v + C a / n_e`; an empty summary (`n_e = 0`) has weight 0.
    ///
    /// - `q`: `[batch, heads, s, d]`; `k`, `v`: `[batch, kv_heads, t, d]`; query `i` sees slots
    ///   `0..=t − s + i`; query head `h` reads KV head `h / (heads / kv_heads)`
    /// - `bias`: `[batch, kv_heads, 1, t]`, 0 keeps a slot, −∞ masks it
    /// - `moments`: see [`Moments`]
    /// - returns `[batch, heads, s, d]`
    fn moment_attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        bias: Option<Tensor<Self, 4>>,
        moments: Moments<Self>,
    ) -> Tensor<Self, 4> {
        moment_attention_reference(q, k, v, bias, moments)
    }

    /// Rotary position embedding in Hugging Face's `rotate_half` layout:
    /// `x·cos + rotate_half(x)·sin` with `rotate_half([x₁, x₂]) = [−x₂, x₁]` over the last axis.
    ///
    /// - `x`: `[batch, seq, heads, head_dim]`
    /// - `cos`, `sin`: `[seq, head_dim]`, shared by every batch row and head
    fn rope(x: Tensor<Self, 4>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 4> {
        rope_reference(x, cos, sin)
    }

    /// Which implementation the ops use on this build, for reports.
    fn kernel_engine() -> &'static str {
        "tensor ops"
    }
}

#[cfg(feature = "ndarray")]
impl KernelBackend for burn::backend::NdArray {}
