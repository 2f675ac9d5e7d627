use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer file {0} is missing")]
    Missing(PathBuf),
    #[error("cannot load tokenizer {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("GGUF tokenizer metadata: {0}")]
    Gguf(#[from] momentkv_gguf::GgufError),
    #[error("GGUF tokenizer: {0}")]
    GgufUnsupported(String),
    #[error("cannot encode text: {0}")]
    Encode(String),
    #[error("cannot decode ids: {0}")]
    Decode(String),
    #[error("the model has no chat template; run without --chat")]
    NoChatTemplate,
    #[error("chat template failed: {0}")]
    Template(String),
}
