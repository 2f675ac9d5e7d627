use std::path::PathBuf;

/// Any failure of momentkv, as a one-line message naming the file, field, tensor or limit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] momentkv_transformer::ModelError),
    #[error(transparent)]
    Tokenizer(#[from] momentkv_tokenizer::TokenizerError),
    #[error(transparent)]
    Gguf(#[from] momentkv_gguf::GgufError),
    #[error(transparent)]
    Cache(#[from] momentkv_cache::CacheError),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot fetch {model}: {reason}")]
    Fetch { model: String, reason: String },
    #[error(
        "unknown model {name:?}: pass a Hugging Face directory or a .gguf file, or one of: {known}"
    )]
    UnknownModel { name: String, known: String },
    #[error("backend {name:?} {reason}")]
    Backend { name: String, reason: String },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Error::Io {
            path: path.into(),
            reason: e.to_string(),
        }
    }
}
