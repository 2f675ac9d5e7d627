//! The moment summaries [`crate::KernelBackend::moment_attention`] reads.

use burn::tensor::{backend::Backend, Tensor};

/// `S` summaries of evicted tokens per `[batch, kv_heads]` row, laid along dimension 2.
#[derive(Debug, Clone)]
pub struct Summaries<B: Backend> {
    /// Evicted count `n`, `[batch, kv_heads, S, 1]`.
    pub count: Tensor<B, 4>,
    /// Key mean `μ_k`, `[batch, kv_heads, S, d]`.
    pub key_mean: Tensor<B, 4>,
    /// Value mean `μ_v`, `[batch, kv_heads, S, d]`.
    pub value_mean: Tensor<B, 4>,
    /// Centred cross moment `C = Σ (v − μ_v)(k − μ_k)ᵀ`, `[batch, kv_heads, S·d, d]` (summary `e`
    /// in rows `e·d..(e+1)·d`; rows are value channels, columns key channels).
    pub cross: Tensor<B, 4>,
    /// Centred sum of squares of each key channel, `[batch, kv_heads, S, d]`, for the
    /// second-order normaliser; `None` for first order.
    pub key_sq: Option<Tensor<B, 4>>,
}
