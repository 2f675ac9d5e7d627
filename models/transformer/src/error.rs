use std::path::PathBuf;

use momentkv_cache::CacheError;

use crate::AdapterError;

/// Errors building, loading or running a model; each names the field, tensor, file or limit.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model configuration: {field} {reason}")]
    Config { field: String, reason: String },
    #[error("cannot read weights from {path}: {reason}")]
    WeightFile { path: PathBuf, reason: String },
    #[error("checkpoint is missing tensors the model needs: {}", few(.0, ", "))]
    MissingTensors(Vec<String>),
    #[error(
        "checkpoint tensors do not have the shapes the configuration gives them: {}",
        few(.0, "; ")
    )]
    ShapeMismatch(Vec<String>),
    #[error("checkpoint has tensors the model does not use: {}", few(.0, ", "))]
    UnusedTensors(Vec<String>),
    #[error("cannot load weights: {}", few(.0, "; "))]
    BadTensors(Vec<String>),
    #[error(
        "{tokens} tokens exceed the context window of {limit} (max_position_embeddings); \
         shorten the prompt or lower --max-new-tokens"
    )]
    ContextOverflow { tokens: usize, limit: usize },
    #[error("token id {id} is outside the vocabulary of {vocab}")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("the sequences of a batch must have the same number of tokens")]
    RaggedBatch,
    #[error("empty prompt: at least one token is needed")]
    EmptyPrompt,
    #[error(
        "a training batch's {what} are {found:?} but its tokens {expected:?}: all three are \
         [batch, seq]"
    )]
    BatchShape {
        what: &'static str,
        found: [usize; 2],
        expected: [usize; 2],
    },
    #[error(
        "a training batch of {0} positions per row has no next-token target: at least 2 are \
         needed"
    )]
    ShortBatch(usize),
    #[error(
        "this cache scores the prompt from replays of it (kvzip), but no repeat prompts were \
         given: set GenerateOptions::repeat (momentkv::Model::options)"
    )]
    NoRepeatPrompts,
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Gguf(#[from] momentkv_gguf::GgufError),
}

/// The first three of `items` and how many more there are, so that a checkpoint off by thousands
/// of tensors still makes a one-line error.
pub(crate) fn few(items: &[String], separator: &str) -> String {
    const SHOWN: usize = 3;
    let shown = items[..items.len().min(SHOWN)].join(separator);
    match items.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} ... and {more} more"),
    }
}
