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

mod reference;

#[cfg(openblas)]
mod blas;
#[cfg(feature = "flex")]
mod flex;

use burn::tensor::{backend::Backend, Tensor};

pub use reference::{attention_reference, dense_reference, rope_reference};

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

#[cfg(feature = "wgpu")]
impl KernelBackend for burn::backend::Wgpu {}

#[cfg(feature = "cuda")]
impl KernelBackend for burn::backend::Cuda {}
