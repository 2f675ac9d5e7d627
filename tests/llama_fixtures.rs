//! The Llama model against `transformers` on tiny random checkpoints (tests/fixtures, made by
//! make_fixtures.py): logits from Hugging Face directories (f32 tied, bf16 sharded untied, Llama 3
//! rope scaling) and from the GGUF files written from the same weights; and cached generation
//! (chunked prefill, token-by-token decoding) against one full forward pass.

mod common;

use common::{assert_close, fixture, input_ids, reference};
use momentkv::cache::FullCache;
use momentkv::kernels::KernelBackend;
use momentkv::load::load;

/// Logits `[batch, seq, vocab]` of one full forward pass over `tokens`.
fn logits<B: KernelBackend>(model: &momentkv::Model<B>, tokens: &[Vec<u32>]) -> burn::tensor::Tensor<B, 3> {
    let layers = model.transformer.config().num_hidden_layers;
    let hidden = model
        .transformer
        .forward(tokens, &mut FullCache::new(layers))
        .unwrap();
    model.transformer.logits(hidden)
}

fn check_logits<B: KernelBackend>(checkpoint: &str, reference_dir: &str, device: B::Device, tol: f32) {
    let model = load::<B>(&fixture(checkpoint), &device).unwrap();
    let refs = fixture(reference_dir).join("reference.safetensors");
    let (_, want) = reference(&refs, "logits");
    assert_close(logits(&model, &input_ids(&refs)), &want, tol, checkpoint);
}

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

/// Prefill in chunks of 7, 9 and 1, then decoding one token at a time, gives every position the
/// logits of one full forward pass.
fn cached_generation_matches_full_forward<B: KernelBackend>(device: B::Device, tol: f32) {
    let model = load::<B>(&fixture("llama-untied"), &device).unwrap();
    let tokens = input_ids(&fixture("llama-untied/reference.safetensors"));
    let full = logits(&model, &tokens);
    let seq = tokens[0].len();
    let layers = model.transformer.config().num_hidden_layers;
    let mut cache = FullCache::new(layers);
    let mut start = 0;
    for len in [7, 9, 1].into_iter().chain(std::iter::repeat(1)) {
        if start == seq {
            break;
        }
        let chunk: Vec<Vec<u32>> = tokens.iter().map(|row| row[start..start + len].to_vec()).collect();
        let hidden = model.transformer.forward(&chunk, &mut cache).unwrap();
        let want = full.clone().narrow(1, start, len).into_data();
        assert_close(model.transformer.logits(hidden), &want, tol, &format!("positions {start}..{}", start + len));
        start += len;
    }
    assert_eq!(momentkv::cache::KvCache::<B>::seen(&cache), seq);
}

backend_tests!(
    hf_tied_f32,
    hf_untied_bf16_sharded,
    hf_llama3_rope_scaling,
    gguf_tied,
    gguf_llama3_rope_freqs,
    cached_generation_matches_full_forward,
);
