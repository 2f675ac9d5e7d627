//! The default model, SmolLM2-135M-Instruct (Q4_1 GGUF), against what `transformers` produced from
//! the same dequantized weights (tests/fixtures/smollm2-reference.json). Skipped, saying how to
//! fetch the model, when it is not present, and failed instead where data is required
//! (`MOMENTKV_REQUIRE_DATA=1` or `CI=true`, see `hub::require_data`); CI fetches it.

use crate::common::fixture;
use momentkv::cache::FullCache;
use momentkv::kernels::KernelBackend;
use momentkv::load::load;
use momentkv::tokenizer::ChatMessage;
use momentkv::transformer::{generate, Sampler};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("smollm2-reference.json")).unwrap())
        .unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).unwrap()
}

/// Greedy continuation of "The capital of France is" for 12 tokens: the same ids as transformers.
fn greedy_continuation_matches_transformers<B: KernelBackend>(device: B::Device, _tol: f32) {
    let Some(path) = momentkv::hub::default_model_if_present() else {
        return;
    };
    let model = load::<B>(&path, &device).unwrap();
    let r = reference();
    let prompt = model
        .tokenizer
        .encode(r["prompt"].as_str().unwrap(), true)
        .unwrap();
    assert_eq!(prompt, ids(&r["prompt_ids"]));
    let options = model.options(12);
    let mut cache = FullCache::new(model.transformer.config().num_hidden_layers);
    let out = generate(
        &model.transformer,
        &mut cache,
        &prompt,
        &options,
        &mut Sampler::greedy(),
        |_| {},
    )
    .unwrap();
    assert_eq!(out.tokens, ids(&r["greedy_ids"]));
    assert_eq!(
        model.tokenizer.decode(&out.tokens).unwrap(),
        r["greedy_text"].as_str().unwrap()
    );
}

/// A chat turn through the model's ChatML template ends with the assistant's turn and stops at
/// `<|im_end|>`, the GGUF's end-of-sequence token.
fn chat_turn_stops_at_end_of_turn<B: KernelBackend>(device: B::Device, _tol: f32) {
    let Some(path) = momentkv::hub::default_model_if_present() else {
        return;
    };
    let model = load::<B>(&path, &device).unwrap();
    let text = model
        .tokenizer
        .apply_chat_template(
            &[ChatMessage::new("user", "What is the capital of France?")],
            true,
        )
        .unwrap();
    assert!(
        text.starts_with("<|im_start|>system\n") && text.ends_with("<|im_start|>assistant\n"),
        "{text}"
    );
    let prompt = model.tokenizer.encode(&text, false).unwrap();
    let end = model.tokenizer.token_id("<|im_end|>").unwrap();
    assert!(model.stop_tokens.contains(&end));
    let options = model.options(48);
    let mut cache = FullCache::new(model.transformer.config().num_hidden_layers);
    let out = generate(
        &model.transformer,
        &mut cache,
        &prompt,
        &options,
        &mut Sampler::greedy(),
        |_| {},
    )
    .unwrap();
    assert!(
        out.stopped,
        "no end of turn in {:?}",
        model.tokenizer.decode(&out.tokens)
    );
    assert!(model
        .tokenizer
        .decode(&out.tokens)
        .unwrap()
        .contains("Paris"));
}

backend_tests!(
    greedy_continuation_matches_transformers,
    chat_turn_stops_at_end_of_turn
);

/// The tokenizer rebuilt from GGUF metadata gives transformers' ids for strings with unicode,
/// digits, whitespace runs and chat markup.
#[test]
fn tokenizer_matches_transformers() {
    let Some(path) = momentkv::hub::default_model_if_present() else {
        return;
    };
    let file = momentkv::gguf::GgufFile::open(&path).unwrap();
    let tok = momentkv::tokenizer::Tokenizer::from_gguf(&file).unwrap();
    let cases = reference()["tokenizer"].as_array().unwrap().clone();
    assert!(cases.len() >= 30);
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let text = case["text"].as_str().unwrap();
            let got = tok.encode(text, false).unwrap();
            (got != ids(&case["ids"]))
                .then(|| format!("{text:?}: momentkv {got:?}, transformers {}", case["ids"]))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
