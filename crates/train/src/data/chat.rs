//! Conversations rendered with the checkpoint's chat template and scored on the assistant's turns
//! only, what instruct models are fine-tuned on.
//!
//! The assistant's turns are located by rendering prefixes of the conversation, as TRL does for
//! prompt–completion data: the whole conversation is rendered and tokenized once; for assistant
//! message `i`, the rendering of messages `..i` with the generation prompt (the template's
//! assistant opener) and that of messages `..=i` without it are tokenized too, and must be
//! prefixes of the whole conversation's tokens. The tokens between the two lengths (the reply and
//! the template's end of turn) are scored; everything else is [`IGNORE_INDEX`]. A template that
//! renders earlier turns differently once a later one follows (one that drops the reasoning of
//! past turns, say) fails the prefix check and the row is refused by name.

use momentkv_tokenizer::{ChatMessage, Tokenizer};
use momentkv_transformer::IGNORE_INDEX;

use super::Example;

/// The conversation `messages` as one sequence, labelled on the assistant's turns only. Special
/// tokens are those the template spells (no tokenizer post-processing), as `transformers`
/// tokenizes a rendered chat.
pub(super) fn assistant_labels(
    tokenizer: &Tokenizer,
    messages: &[ChatMessage],
) -> Result<Example, String> {
    let render = |upto: usize, opener: bool| {
        tokenizer
            .apply_chat_template(&messages[..upto], opener)
            .map_err(|e| e.to_string())
    };
    let encode = |text: &str| tokenizer.encode(text, false).map_err(|e| e.to_string());
    let tokens = encode(&render(messages.len(), false)?)?;
    // The length of the tokens of `messages[..upto]` rendered, checked to be a prefix of the
    // whole conversation's.
    let prefix = |upto: usize, opener: bool| -> Result<usize, String> {
        let ids = encode(&render(upto, opener)?)?;
        if tokens.starts_with(&ids) {
            Ok(ids.len())
        } else {
            let with = if opener {
                " with the assistant's opener"
            } else {
                ""
            };
            Err(format!(
                "the chat template renders the first {upto} messages{with} as something other \
                 than the start of the whole conversation, so the assistant's turns cannot be \
                 located"
            ))
        }
    };
    let mut labels = vec![IGNORE_INDEX; tokens.len()];
    for (i, _) in messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == "assistant")
    {
        let (start, end) = (prefix(i, true)?, prefix(i + 1, false)?);
        for (label, &token) in labels.iter_mut().zip(&tokens).take(end).skip(start) {
            *label = i64::from(token);
        }
    }
    Ok(Example { tokens, labels })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tests::tokenizer;
    use super::*;

    fn conversation() -> Vec<ChatMessage> {
        vec![
            ChatMessage::new("system", "be brief"),
            ChatMessage::new("user", "hi"),
            ChatMessage::new("assistant", "hello"),
            ChatMessage::new("user", "thanks"),
            ChatMessage::new("assistant", "bye"),
        ]
    }

    /// With the fixture's ChatML template, exactly each reply and its `<|im_end|>\n` are scored.
    #[test]
    fn only_the_assistants_turns_are_scored() {
        let tokenizer = tokenizer();
        let example = assistant_labels(&tokenizer, &conversation()).unwrap();
        let segments = [
            (
                "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n\
                 <|im_start|>assistant\n",
                false,
            ),
            ("hello<|im_end|>\n", true),
            (
                "<|im_start|>user\nthanks<|im_end|>\n<|im_start|>assistant\n",
                false,
            ),
            ("bye<|im_end|>\n", true),
        ];
        let (mut tokens, mut labels) = (Vec::new(), Vec::new());
        for (text, scored) in segments {
            for id in tokenizer.encode(text, false).unwrap() {
                tokens.push(id);
                labels.push(if scored { i64::from(id) } else { IGNORE_INDEX });
            }
        }
        assert_eq!(example.tokens, tokens);
        assert_eq!(example.labels, labels);
    }

    /// A template that marks the last turn renders a prefix differently: refused, saying why.
    #[test]
    fn a_template_that_rewrites_earlier_turns_is_refused() {
        let fixture = crate::tests::fixture();
        let dir = std::env::temp_dir().join(format!("momentkv-train-chat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(fixture.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
        let template = "{% for m in messages %}{% if loop.last %}[LAST]{% endif %}\
                        {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}";
        let config = serde_json::json!({ "chat_template": template, "eos_token": "<|im_end|>" });
        std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
        let tokenizer = Tokenizer::from_hf_dir(Path::new(&dir)).unwrap();
        let err = assistant_labels(&tokenizer, &conversation()[1..3]).unwrap_err();
        assert!(
            err.contains("renders the first 1 messages with the assistant's opener"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
