//! KVzip's replay prompts in a model's own tokens, and the generation options that carry them.

use momentkv_cache::policies::kvzip::{RepeatPrompts, FIRST, LATER};
use momentkv_kernels::KernelBackend;
use momentkv_tokenizer::{ChatMessage, Tokenizer, TokenizerError};
use momentkv_transformer::GenerateOptions;

use crate::Model;

/// The user content rendered through the chat template to find its head and tail.
const DUMMY: &str = "dummy context";

/// KVzip's replay prompts for `tokenizer`, as kvpress's `KVzipPress` builds them: the chat
/// template rendered around a dummy user message `"dummy context\n#############"` splits into the
/// head before the content (its token count is the prompt's template head, never replayed) and
/// the tail after the separator (end of turn and assistant opener, read before each replayed
/// chunk). Without a template the head is empty and the tail is `"\n"`. Nothing gets special
/// tokens added.
pub fn repeat_prompts(tokenizer: &Tokenizer) -> Result<RepeatPrompts, TokenizerError> {
    let encode = |text: &str| tokenizer.encode(text, false);
    let (prefix, suffix) = match tokenizer.chat_template() {
        None => (0, encode("\n")?),
        Some(_) => {
            let separator = format!("\n{}", "#".repeat(DUMMY.len()));
            let user = ChatMessage::new("user", format!("{DUMMY}{separator}"));
            let text = tokenizer.apply_chat_template(&[user], true)?;
            let (head, tail) = text.split_once(&separator).ok_or_else(|| {
                TokenizerError::Template(
                    "the chat template does not reproduce the user's message".into(),
                )
            })?;
            let head = head.split(DUMMY).next().unwrap_or_default();
            (encode(head)?.len(), encode(tail)?)
        }
    };
    Ok(RepeatPrompts {
        prefix,
        first: encode(FIRST)?,
        later: encode(LATER)?,
        suffix,
    })
}

impl<B: KernelBackend> Model<B> {
    /// Options to generate up to `max_new_tokens` with this model: its stop tokens, and its
    /// replay prompts for KVzip (left out where the chat template cannot render them; a KVzip
    /// cache then names what is missing).
    pub fn options(&self, max_new_tokens: usize) -> GenerateOptions {
        GenerateOptions {
            max_new_tokens,
            stop_tokens: self.stop_tokens.clone(),
            repeat: repeat_prompts(&self.tokenizer).ok(),
        }
    }
}
