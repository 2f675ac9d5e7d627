//! The GGUF-built tokenizer against `tokenizer.json` on the tiny fixture tokenizer, chat templates
//! and streaming decoding. (The default model's tokenizer is checked against transformers in the
//! workspace's tests/real_model.rs.)

use std::path::{Path, PathBuf};

use momentkv_gguf::GgufFile;
use momentkv_tokenizer::{ChatMessage, Tokenizer};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

const SAMPLES: &[&str] = &[
    "The quick brown fox",
    "  double  spaces and\ttabs\n\nnewlines",
    "digits 0123456789 and 3.14",
    "Caf\u{e9} na\u{ef}ve \u{65e5}\u{672c} \u{1f600}",
    "<|im_start|>user\nhi<|im_end|>\n",
    "",
];

#[test]
fn gguf_tokenizer_matches_tokenizer_json() {
    let json = Tokenizer::from_hf_dir(&fixtures().join("tokenizer")).unwrap();
    let gguf =
        Tokenizer::from_gguf(&GgufFile::open(fixtures().join("llama-tied.gguf")).unwrap()).unwrap();
    for text in SAMPLES {
        let a = json.encode(text, true).unwrap();
        let b = gguf.encode(text, true).unwrap();
        assert_eq!(a, b, "ids differ for {text:?}");
        assert_eq!(json.decode(&a).unwrap(), gguf.decode(&b).unwrap());
    }
    assert_eq!(gguf.eos_token(), Some("<|im_end|>"));
    assert_eq!(gguf.chat_template(), json.chat_template());
}

#[test]
fn chat_template_renders_chatml() {
    let tok = Tokenizer::from_hf_dir(&fixtures().join("tokenizer")).unwrap();
    let text = tok
        .apply_chat_template(&[ChatMessage::new("user", "Hi")], true)
        .unwrap();
    assert_eq!(
        text,
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

/// Qwen3's template opens an empty think block only when `enable_thinking` is passed as false,
/// as `transformers` renders it.
#[test]
fn the_thinking_switch_reaches_the_template() {
    let tok = Tokenizer::from_hf_dir(&fixtures().join("qwen3")).unwrap();
    let hi = [ChatMessage::new("user", "Hi")];
    let plain = tok.apply_chat_template(&hi, true).unwrap();
    assert_eq!(
        plain,
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        tok.apply_chat_template_thinking(&hi, true, true).unwrap(),
        plain
    );
    assert_eq!(
        tok.apply_chat_template_thinking(&hi, true, false).unwrap(),
        format!("{plain}<think>\n\n</think>\n\n")
    );
}

#[test]
fn stream_decoding_equals_whole_decoding() {
    let tok = Tokenizer::from_hf_dir(&fixtures().join("tokenizer")).unwrap();
    let text = "Caf\u{e9} na\u{ef}ve \u{65e5}\u{672c} \u{1f600} end";
    let ids = tok.encode(text, false).unwrap();
    let mut stream = tok.stream();
    let streamed: String = ids
        .iter()
        .filter_map(|&id| stream.step(id).unwrap())
        .collect();
    assert_eq!(streamed, text);
}

/// Qwen's tokenizer (NFC normalisation, Qwen2's regex split, digits one by one), from the Qwen2
/// fixture's tokenizer.json and from its GGUF (`tokenizer.ggml.pre = "qwen2"`), gives the ids the
/// `tokenizers` Python package gave, NFD input included.
#[test]
fn qwen2_tokenizer_from_json_and_gguf_matches_reference() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("qwen2-tokenizer-reference.json")).unwrap(),
    )
    .unwrap();
    let json = Tokenizer::from_hf_dir(&fixtures().join("qwen2")).unwrap();
    let gguf =
        Tokenizer::from_gguf(&GgufFile::open(fixtures().join("qwen2.gguf")).unwrap()).unwrap();
    let cases = reference.as_array().unwrap();
    assert!(cases.len() >= 7);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(
            json.encode(text, false).unwrap(),
            want,
            "tokenizer.json, {text:?}"
        );
        assert_eq!(gguf.encode(text, false).unwrap(), want, "GGUF, {text:?}");
    }
}
