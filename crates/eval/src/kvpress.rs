//! kvpress's evaluation protocol (`momentkv eval --protocol kvpress`): a RULER sample put to the
//! model as kvpress 0.5.5's `KVPressTextGenerationPipeline` (`kvpress/pipeline.py`) puts a row of
//! kvpress's RULER dataset, so that answers compare one for one.
//!
//! 1. The sample is cut into context, question and answer prefix as kvpress's dataset cuts
//!    RULER's prompts ([`kvpress_parts`]).
//! 2. `preprocess` ([`wrap`]): the chat template is rendered around the context followed by a
//!    separator, `#` repeated `len(context) + 10` times (`len` in characters), as one user turn
//!    with `add_generation_prompt=True, enable_thinking=False`, and the text is split at the
//!    separator: before it the template's head and the context, after it the end of the user's
//!    turn and the assistant's header (the `question_suffix`). Without a chat template the context
//!    follows the BOS token and the suffix is `\n`. The prefill is `encode(head + context)` and
//!    the question read after compression `encode(question + question_suffix + answer_prefix)`,
//!    both without the tokenizer's special tokens (a BOS only where the template writes one).
//! 3. `_forward`: the prefill is compressed at its end, kvpress's `compression_ratio` `r` keeping
//!    `⌊n·(1 − r)⌋` (at least 1) of its `n` ids, the template's head included
//!    ([`momentkv::cache::Budget::Compression`]); the question is read at the positions after the
//!    whole context, and the answer decoded greedily as `generate_answer` decodes it ([`answer`]).
//!
//! kvpress's `query_aware` (its evaluation's `compress_questions`) appends the question to the
//! context before step 2, so it is compressed too and only the suffix and the answer prefix are
//! read after.

use momentkv::cache::KvCache;
use momentkv::kernels::KernelBackend;
use momentkv::tokenizer::{ChatMessage, Tokenizer};
use momentkv::transformer::{answer as generate_answer, GenerateOptions, Sampler};
use momentkv::{Error, Model};
use momentkv_ruler::Parts;

use crate::passkey::Protocol;
use crate::ruler::Prompt;

/// `content` as the user's turn of the chat template, split where kvpress's `preprocess` splits
/// it: `(head + content, question_suffix)`, the suffix being what follows the user's message up
/// to the assistant's turn. As in Python, the text splits at the separator's first occurrence (a
/// content ending in `#` gives those `#` to the suffix), and must hold it once.
pub fn wrap(tokenizer: &Tokenizer, content: &str) -> Result<(String, String), Error> {
    if tokenizer.chat_template().is_none() {
        let bos = tokenizer.bos_token().unwrap_or_default();
        return Ok((format!("{bos}{content}"), "\n".into()));
    }
    let separator = "#".repeat(content.chars().count() + 10);
    let turn = ChatMessage::new("user", format!("{content}{separator}"));
    let text = tokenizer.apply_chat_template_thinking(&[turn], true, false)?;
    let mut pieces = text.split(separator.as_str());
    match (pieces.next(), pieces.next(), pieces.next()) {
        (Some(head), Some(suffix), None) => Ok((head.into(), suffix.into())),
        _ => Err(Error::Unsupported(
            "kvpress's protocol needs a chat template that writes the user's message once".into(),
        )),
    }
}

/// `parts` as kvpress's pipeline tokenizes them: the context (after the template's head)
/// compressed, then the question, the end of the user's turn, the assistant's header and the
/// answer prefix; under [`Protocol::QueryAware`] the question is part of the compressed context.
pub fn prompt(
    tokenizer: &Tokenizer,
    parts: &Parts<'_>,
    protocol: Protocol,
) -> Result<Prompt, Error> {
    let (content, question) = match protocol {
        Protocol::QueryAgnostic => (parts.context.to_string(), parts.question),
        Protocol::QueryAware => (format!("{}{}", parts.context, parts.question), ""),
    };
    let (head, suffix) = wrap(tokenizer, &content)?;
    Ok(Prompt {
        context: tokenizer.encode(&head, false)?,
        question: tokenizer.encode(&format!("{question}{suffix}{}", parts.answer_prefix), false)?,
    })
}

/// The ids kvpress stops at, `generation_config.eos_token_id` as `transformers` loads the
/// checkpoint: a Hugging Face directory's (what momentkv stops at too), a GGUF file's
/// `tokenizer.ggml.eos_token_id` alone (momentkv also stops where llama.cpp does, at
/// `<|im_end|>` or `<|endoftext|>`, whichever the GGUF names its end of sequence).
fn stop_tokens<B: KernelBackend>(model: &Model<B>) -> Vec<u32> {
    let eos = model
        .tokenizer
        .eos_token()
        .and_then(|t| model.tokenizer.token_id(t));
    match eos {
        Some(id) if !model.source.is_dir() => vec![id],
        _ => model.stop_tokens.clone(),
    }
}

/// kvpress's `generate_answer`: reads `question` after the compressed context held by `cache`
/// and decodes greedily up to `max_new_tokens` (at least one) ids. The first id is kept whatever
/// it is: kvpress tests only the later ones against its stop ids, so a stop id chosen first is
/// fed back (and decodes to nothing, being special) and decoding goes on. Returns the ids, the
/// stop id that ended them excluded.
pub fn answer<B: KernelBackend>(
    model: &Model<B>,
    cache: &mut impl KvCache<B>,
    question: &[u32],
    max_new_tokens: usize,
) -> Result<Vec<u32>, Error> {
    let mut greedy = |question: &[u32], max_new_tokens: usize, stop_tokens: Vec<u32>| {
        // The context is already in the cache (and replayed, for KVzip).
        let options = GenerateOptions {
            max_new_tokens,
            stop_tokens,
            repeat: None,
        };
        generate_answer(
            &model.transformer,
            &mut *cache,
            &[],
            question,
            &options,
            &mut Sampler::greedy(),
            |_| {},
        )
        .map(|g| g.tokens)
    };
    let mut tokens = greedy(question, 1, Vec::new())?;
    if max_new_tokens > 1 {
        let first = tokens.clone();
        tokens.extend(greedy(&first, max_new_tokens - 1, stop_tokens(model))?);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use momentkv::cache::Budget;
    use momentkv_ruler::{kvpress_parts, Task};

    use super::*;

    /// The fixture tokenizer: byte-level BPE with ChatML's special tokens and template.
    fn chatml() -> Tokenizer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokenizer");
        Tokenizer::from_hf_dir(&dir).unwrap()
    }

    const INPUT: &str = "Some text.\nOne of the special magic numbers for red-fox is: 4821.\n\
                         What is the special magic number for red-fox mentioned in the provided \
                         text? The special magic number for red-fox mentioned in the provided \
                         text is";

    #[test]
    fn the_template_is_split_at_the_separator_after_the_context() {
        let tok = chatml();
        let (head, suffix) = wrap(&tok, "Some text.\n").unwrap();
        assert_eq!(head, "<|im_start|>user\nSome text.\n");
        assert_eq!(suffix, "<|im_end|>\n<|im_start|>assistant\n");
        // Python's split: the separator's first occurrence starts in a context ending with `#`.
        let (head, suffix) = wrap(&tok, "a#").unwrap();
        assert_eq!(head, "<|im_start|>user\na");
        assert_eq!(suffix, "#<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn the_question_suffix_and_answer_prefix_are_read_after_the_context() {
        let tok = chatml();
        let parts = kvpress_parts(Task::NiahSingle1, INPUT).unwrap();
        let prompt = prompt(&tok, &parts, Protocol::QueryAgnostic).unwrap();
        let encode = |text: &str| tok.encode(text, false).unwrap();
        assert_eq!(
            prompt.context,
            encode(&format!("<|im_start|>user\n{}", parts.context))
        );
        assert_eq!(
            prompt.question,
            encode(&format!(
                "{}<|im_end|>\n<|im_start|>assistant\n{}",
                parts.question, parts.answer_prefix
            ))
        );
        let aware = super::prompt(&tok, &parts, Protocol::QueryAware).unwrap();
        assert_eq!(
            aware.context,
            encode(&format!(
                "<|im_start|>user\n{}{}",
                parts.context, parts.question
            ))
        );
        assert_eq!(
            aware.question,
            encode(&format!(
                "<|im_end|>\n<|im_start|>assistant\n{}",
                parts.answer_prefix
            ))
        );
    }

    #[test]
    fn compression_counts_the_template_head_with_the_context() {
        let tok = chatml();
        let parts = kvpress_parts(Task::NiahSingle1, INPUT).unwrap();
        let prompt = prompt(&tok, &parts, Protocol::QueryAgnostic).unwrap();
        let head = tok.encode("<|im_start|>user\n", false).unwrap();
        assert_eq!(prompt.context[..head.len()], head[..]);
        let n = prompt.context.len();
        assert!(n > tok.encode(parts.context, false).unwrap().len());
        // kvpress's compute_n_kept: max(1, int(n * (1 - r))).
        for (r, kept) in [(0.5, n / 2), (0.75, n / 4), (0.875, n / 8)] {
            assert_eq!(Budget::compression(r).unwrap().keep(n), kept, "{r}");
        }
    }
}
