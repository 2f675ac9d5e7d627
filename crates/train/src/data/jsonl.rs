//! JSONL data: one JSON object per line, `{"text": "..."}` or `{"messages": [...]}`; other
//! fields are ignored, blank lines skipped.
//!
//! A `text` row is tokenized as TRL's `SFTTrainer` prepares language-modelling data: the
//! tokenizer's end-of-sequence token is appended to the text unless it already ends with it, the
//! tokenizer's special tokens are added, and every token is scored. A `messages` row is a
//! conversation scored on its assistant turns only ([`super::chat`]). Rows longer than `seq_len`
//! are cut to it.

use std::path::Path;

use momentkv_tokenizer::{ChatMessage, Tokenizer};
use serde_json::Value;

use super::{chat, Example};
use crate::TrainError;

/// The sequences of a JSONL file and what happened to the rows that did not fit.
pub(super) struct Rows {
    pub examples: Vec<Example>,
    /// Rows cut to `seq_len`.
    pub truncated: usize,
    /// Rows with nothing scored (within `seq_len`), left out.
    pub skipped: usize,
}

/// Reads every row of `content`, naming the line of the first bad one.
pub(super) fn read(
    path: &Path,
    content: &str,
    tokenizer: &Tokenizer,
    seq_len: usize,
) -> Result<Rows, TrainError> {
    let mut rows = Rows {
        examples: Vec::new(),
        truncated: 0,
        skipped: 0,
    };
    for (i, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at_line = |reason: String| TrainError::data(path, format!("line {}: {reason}", i + 1));
        let mut example = example(line, tokenizer).map_err(at_line)?;
        if example.tokens.len() > seq_len {
            example.truncate(seq_len);
            rows.truncated += 1;
        }
        if example.targets() == 0 {
            rows.skipped += 1;
        } else {
            rows.examples.push(example);
        }
    }
    Ok(rows)
}

/// The sequence of one row.
fn example(line: &str, tokenizer: &Tokenizer) -> Result<Example, String> {
    let row: Value = serde_json::from_str(line).map_err(|e| format!("is not JSON: {e}"))?;
    let Value::Object(fields) = row else {
        return Err("is not a JSON object".into());
    };
    if let Some(messages) = fields.get("messages") {
        return chat::assistant_labels(tokenizer, &messages_of(messages)?);
    }
    match fields.get("text") {
        Some(Value::String(text)) => text_example(text, tokenizer),
        Some(other) => Err(format!("\"text\" is {other}, not a string")),
        None => Err("has neither \"text\" nor \"messages\"".into()),
    }
}

/// A `text` row's tokens, with the end-of-sequence token appended, all scored.
fn text_example(text: &str, tokenizer: &Tokenizer) -> Result<Example, String> {
    let ids = match tokenizer.eos_token() {
        Some(eos) if !text.ends_with(eos) => tokenizer.encode(&format!("{text}{eos}"), true),
        _ => tokenizer.encode(text, true),
    }
    .map_err(|e| e.to_string())?;
    Ok(Example::all_scored(ids))
}

/// `messages` as chat messages: a list of objects with string `role` and `content`.
fn messages_of(messages: &Value) -> Result<Vec<ChatMessage>, String> {
    let Value::Array(items) = messages else {
        return Err(format!("\"messages\" is {messages}, not a list"));
    };
    items
        .iter()
        .enumerate()
        .map(|(k, item)| {
            let field = |name: &str| match item.get(name) {
                Some(Value::String(value)) => Ok(value.clone()),
                _ => Err(format!("message {k} has no string \"{name}\"")),
            };
            Ok(ChatMessage::new(field("role")?, field("content")?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use momentkv_transformer::IGNORE_INDEX;

    use super::super::tests::{scratch_file, tokenizer};
    use super::super::{Dataset, Format};

    /// Text rows end with the end-of-sequence token once, long rows are cut, a row of one token
    /// is skipped, and a conversation is scored on its assistant turn only.
    #[test]
    fn rows_become_sequences() {
        let tokenizer = tokenizer();
        let eos = tokenizer.token_id("<|im_end|>").unwrap();
        let long = "the quick brown fox jumps over the lazy dog ".repeat(4);
        let content = [
            r#"{"text": "hello world", "id": 7}"#.to_string(),
            String::new(),
            r#"{"text": "hello world<|im_end|>"}"#.to_string(),
            format!(r#"{{"text": "{long}"}}"#),
            r#"{"text": ""}"#.to_string(),
            concat!(
                r#"{"messages": [{"role": "user", "content": "hi"}, "#,
                r#"{"role": "assistant", "content": "hello"}]}"#
            )
            .to_string(),
        ]
        .join("\n");
        let path = scratch_file("rows.jsonl", &content);
        let data = Dataset::read(&path, &tokenizer, 64, 300).unwrap();
        assert_eq!(data.format, Format::Jsonl);
        assert_eq!((data.truncated, data.skipped), (1, 1));
        assert_eq!(data.examples.len(), 4);
        let hello = &data.examples[0];
        assert_eq!(hello.tokens, data.examples[1].tokens);
        assert_eq!(hello.tokens.last(), Some(&eos));
        assert_eq!(hello.tokens.iter().filter(|&&t| t == eos).count(), 1);
        assert_eq!(data.examples[2].tokens.len(), 64);
        let chat = &data.examples[3];
        assert!(chat.tokens.len() < 64);
        assert_eq!(chat.labels[0], IGNORE_INDEX);
        assert!(chat.targets() > 0 && chat.targets() < chat.tokens.len() - 1);
    }

    #[test]
    fn bad_rows_are_named_by_line() {
        let tokenizer = tokenizer();
        let cases = [
            (
                "{\"text\": \"fine\"}\n[1, 2]",
                "line 2: is not a JSON object",
            ),
            ("{\"text\": 3}", "line 1: \"text\" is 3, not a string"),
            (
                "{\"prompt\": \"x\"}",
                "line 1: has neither \"text\" nor \"messages\"",
            ),
            ("{\"text\": \"x\"", "line 1: is not JSON"),
            (
                "{\"messages\": [{\"role\": \"user\"}]}",
                "line 1: message 0 has no string \"content\"",
            ),
            ("{\"text\": \"\"}", "nothing to train on"),
        ];
        for (content, want) in cases {
            let path = scratch_file("bad.jsonl", content);
            let err = Dataset::read(&path, &tokenizer, 8, 300)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want) && err.contains("bad.jsonl"), "{err}");
        }
    }
}
