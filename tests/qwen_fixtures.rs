//! Qwen2 and Qwen3 against `transformers` on tiny random checkpoints (tests/fixtures, made by
//! make_fixtures.py): Qwen2 with q/k/v biases and a tied head, Qwen3 with per-head q/k RMSNorm and
//! `head_dim` 24 where hidden / heads is 16; each from its Hugging Face directory and from the GGUF
//! file of the same weights (q/k rows not permuted), cached generation against a full forward
//! pass, and the Qwen chat templates against transformers' rendering.

use crate::common::{check_cached_generation, check_logits, fixture};
use momentkv::kernels::KernelBackend;
use momentkv::load::load;
use momentkv::tokenizer::{ChatMessage, Tokenizer};

fn hf_qwen2_qkv_bias_tied<B: KernelBackend>(device: B::Device, tol: f32) {
    let model = load::<B>(&fixture("qwen2"), &device).unwrap();
    assert_eq!(model.family, momentkv::qwen::QWEN2);
    let c = model.transformer.config();
    assert!(c.attention_bias && !c.output_bias && c.tie_word_embeddings);
    check_logits::<B>("qwen2", "qwen2", device, tol);
}

fn gguf_qwen2<B: KernelBackend>(device: B::Device, tol: f32) {
    check_logits::<B>("qwen2.gguf", "qwen2", device, tol);
}

fn hf_qwen3_qk_norm_head_dim<B: KernelBackend>(device: B::Device, tol: f32) {
    let model = load::<B>(&fixture("qwen3"), &device).unwrap();
    assert_eq!(model.family, momentkv::qwen::QWEN3);
    let c = model.transformer.config();
    assert!(c.qk_norm && !c.attention_bias && !c.tie_word_embeddings);
    assert_eq!(
        (c.hidden_size, c.num_attention_heads, c.head_dim),
        (64, 4, 24)
    );
    check_logits::<B>("qwen3", "qwen3", device, tol);
}

fn gguf_qwen3<B: KernelBackend>(device: B::Device, tol: f32) {
    check_logits::<B>("qwen3.gguf", "qwen3", device, tol);
}

fn qwen2_cached_generation_matches_full_forward<B: KernelBackend>(device: B::Device, tol: f32) {
    check_cached_generation::<B>("qwen2", device, tol);
}

fn qwen3_cached_generation_matches_full_forward<B: KernelBackend>(device: B::Device, tol: f32) {
    check_cached_generation::<B>("qwen3", device, tol);
}

backend_tests!(
    hf_qwen2_qkv_bias_tied,
    gguf_qwen2,
    hf_qwen3_qk_norm_head_dim,
    gguf_qwen3,
    qwen2_cached_generation_matches_full_forward,
    qwen3_cached_generation_matches_full_forward,
);

/// The chat template each Qwen fixture ships (in `tokenizer_config.json` and in GGUF metadata)
/// renders every conversation of templates/chat-reference.json as transformers does.
#[test]
fn qwen_chat_templates_match_transformers() {
    let cases: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("templates/chat-reference.json")).unwrap(),
    )
    .unwrap();
    let tokenizers = [
        ("qwen2.5-instruct.jinja", "qwen2"),
        ("qwen3.jinja", "qwen3"),
    ]
    .map(|(template, name)| {
        let hf = Tokenizer::from_hf_dir(&fixture(name)).unwrap();
        let file = momentkv::gguf::GgufFile::open(fixture(&format!("{name}.gguf"))).unwrap();
        (template, [hf, Tokenizer::from_gguf(&file).unwrap()])
    });
    let mut checked = 0;
    for case in cases.as_array().unwrap() {
        let messages: Vec<ChatMessage> = case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| ChatMessage::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        let (_, pair) = tokenizers
            .iter()
            .find(|(template, _)| *template == case["template"].as_str().unwrap())
            .unwrap();
        for tokenizer in pair {
            assert_eq!(
                tokenizer.apply_chat_template(&messages, true).unwrap(),
                case["text"].as_str().unwrap(),
                "{}",
                case["template"]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}
