//! The Llama model against `transformers` on tiny random checkpoints (tests/fixtures, made by
//! make_fixtures.py): logits from Hugging Face directories (f32 tied, bf16 sharded untied, Llama 3
//! rope scaling) and from the GGUF files written from the same weights; and cached generation
//! (chunked prefill, token-by-token decoding) against one full forward pass.

use crate::common::{check_cached_generation, check_logits};
use momentkv::kernels::KernelBackend;

fn hf_tied_f32<B: KernelBackend>(device: B::Device, tol: f32) {
    check_logits::<B>("llama-tied", "llama-tied", device, tol);
}

fn hf_untied_bf16_sharded<B: KernelBackend>(device: B::Device, tol: f32) {
    check_logits::<B>("llama-untied", "llama-untied", device, tol);
}

fn hf_llama3_rope_scaling<B: KernelBackend>(device: B::Device, tol: f32) {
    check_logits::<B>("llama-rope-scaled", "llama-rope-scaled", device, tol);
}

fn gguf_tied<B: KernelBackend>(device: B::Device, tol: f32) {
    check_logits::<B>("llama-tied.gguf", "llama-tied", device, tol);
}

fn gguf_llama3_rope_freqs<B: KernelBackend>(device: B::Device, tol: f32) {
    check_logits::<B>("llama-rope-scaled.gguf", "llama-rope-scaled", device, tol);
}

/// Chunked prefill and token-by-token decoding against one full forward pass.
fn cached_generation_matches_full_forward<B: KernelBackend>(device: B::Device, tol: f32) {
    check_cached_generation::<B>("llama-untied", device, tol);
}

backend_tests!(
    hf_tied_f32,
    hf_untied_bf16_sharded,
    hf_llama3_rope_scaling,
    gguf_tied,
    gguf_llama3_rope_freqs,
    cached_generation_matches_full_forward,
);
