//! A byte-level BPE tokenizer rebuilt from GGUF metadata, splitting text the way llama.cpp's
//! `llm_tokenizer_bpe` does for each `tokenizer.ggml.pre` value.
//!
//! The metadata becomes a `tokenizer.json` document (vocabulary, merges, added tokens, a
//! pre-tokenizer per pre-type) that the `tokenizers` crate then loads, so GGUF and Hugging Face
//! directories share one tokenizer implementation.

use std::collections::HashSet;

use momentkv_gguf::GgufFile;
use serde_json::{json, Map, Value};

use crate::{Tokenizer, TokenizerError};

/// GPT-2's split, used by `ByteLevel { use_regex: true }`.
const GPT2_FAMILY: &[&str] = &["gpt-2", "gpt2", "mpt", "olmo", "jais", "trillion"];
/// Digits split one by one before GPT-2's split (llama.cpp: `\p{N}` first).
const DIGIT_FAMILY: &[&str] = &[
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "exaone",
    "minerva",
];
const LLAMA3_FAMILY: &[&str] = &[
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "pixtral",
    "dbrx",
    "smaug-bpe",
];
const QWEN2_FAMILY: &[&str] = &["qwen2", "deepseek-r1-qwen", "megrez"];

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF `tokenizer.ggml.token_type` values.
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

fn byte_level(use_regex: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

fn split_then_bytes(pattern: &str) -> Value {
    json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
        byte_level(false),
    ]})
}

/// `(pre_tokenizer, normalizer, ignore_merges)` for a `tokenizer.ggml.pre` value.
fn pre_tokenizer(pre: &str) -> Result<(Value, Value, bool), TokenizerError> {
    Ok(if GPT2_FAMILY.contains(&pre) {
        (byte_level(true), Value::Null, false)
    } else if DIGIT_FAMILY.contains(&pre) {
        let seq = json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            byte_level(true),
        ]});
        (seq, Value::Null, false)
    } else if LLAMA3_FAMILY.contains(&pre) {
        (split_then_bytes(LLAMA3_SPLIT), Value::Null, true)
    } else if QWEN2_FAMILY.contains(&pre) {
        (split_then_bytes(QWEN2_SPLIT), json!({"type": "NFC"}), false)
    } else {
        let known: Vec<&str> = [GPT2_FAMILY, DIGIT_FAMILY, LLAMA3_FAMILY, QWEN2_FAMILY].concat();
        return Err(TokenizerError::GgufUnsupported(format!(
            "tokenizer.ggml.pre = {pre:?} is not supported (known: {})",
            known.join(", ")
        )));
    })
}

pub(crate) fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
    let meta = file.metadata();
    let model = meta.str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(TokenizerError::GgufUnsupported(format!(
            "tokenizer.ggml.model = {model:?}: only byte-level BPE (\"gpt2\") can be rebuilt from \
             GGUF; load a Hugging Face directory with tokenizer.json instead"
        )));
    }
    let tokens = meta.strings("tokenizer.ggml.tokens")?;
    let types = match meta.get("tokenizer.ggml.token_type") {
        Some(_) => meta.integers("tokenizer.ggml.token_type")?,
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(TokenizerError::GgufUnsupported(format!(
            "tokenizer.ggml.token_type has {} entries for {} tokens",
            types.len(),
            tokens.len()
        )));
    }
    let merges: Vec<Value> = meta
        .strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) => Ok(json!([a, b])),
            None => Err(TokenizerError::GgufUnsupported(format!(
                "tokenizer.ggml.merges entry {m:?} is not two tokens"
            ))),
        })
        .collect::<Result<_, _>>()?;
    let pre = match meta.get("tokenizer.ggml.pre") {
        Some(_) => meta.str("tokenizer.ggml.pre")?,
        None => "gpt-2",
    };
    let (pre_tokenizer, normalizer, ignore_merges) = pre_tokenizer(pre)?;

    let mut vocab = Map::new();
    let mut seen = HashSet::new();
    let mut added = Vec::new();
    for (id, (&token, &ty)) in tokens.iter().zip(&types).enumerate() {
        // A duplicated spelling keeps its first id, as llama.cpp's text-to-token map does.
        if seen.insert(token) {
            vocab.insert(token.to_string(), json!(id));
        }
        if ty == CONTROL || ty == USER_DEFINED {
            added.push(json!({
                "id": id, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": ty == CONTROL,
            }));
        }
    }

    let token_at = |key: &str| -> Result<Option<String>, TokenizerError> {
        Ok(match meta.get(key) {
            Some(_) => tokens.get(meta.u64(key)? as usize).map(|t| t.to_string()),
            None => None,
        })
    };
    let bos = token_at("tokenizer.ggml.bos_token_id")?;
    let eos = token_at("tokenizer.ggml.eos_token_id")?;
    let add_bos = match meta.get("tokenizer.ggml.add_bos_token") {
        Some(_) => meta.bool("tokenizer.ggml.add_bos_token")?,
        None => false,
    };
    let post_processor = match (&bos, add_bos) {
        (Some(bos), true) => {
            let id = vocab[bos.as_str()].clone();
            json!({
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {bos.as_str(): {"id": bos, "ids": [id], "tokens": [bos]}},
            })
        }
        _ => Value::Null,
    };

    let document = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": ignore_merges, "vocab": vocab, "merges": merges,
        },
    });
    let inner =
        tokenizers::Tokenizer::from_bytes(document.to_string().as_bytes()).map_err(|e| {
            TokenizerError::Invalid {
                path: file.path().to_path_buf(),
                reason: e.to_string(),
            }
        })?;
    let chat_template = match meta.get("tokenizer.chat_template") {
        Some(_) => Some(meta.str("tokenizer.chat_template")?.to_string()),
        None => None,
    };
    Ok(Tokenizer {
        inner,
        bos_token: bos,
        eos_token: eos,
        chat_template,
    })
}
