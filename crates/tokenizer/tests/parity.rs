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
