use std::path::PathBuf;

use momentkv_cache::CacheError;

/// Errors building, loading or running a model; each names the field, tensor, file or limit.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model configuration: {field} {reason}")]
    Config { field: String, reason: String },
    #[error("cannot read weights from {path}: {reason}")]
    WeightFile { path: PathBuf, reason: String },
    #[error("checkpoint is missing tensors the model needs: {}", .0.join(", "))]
    MissingTensors(Vec<String>),
    #[error("checkpoint has tensors the model does not use: {}", .0.join(", "))]
    UnusedTensors(Vec<String>),
    #[error("cannot load weights: {}", .0.join("; "))]
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
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Gguf(#[from] momentkv_gguf::GgufError),
}
