use std::path::PathBuf;

/// Everything that can go wrong reading a GGUF file; each variant names the file, key or tensor.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read GGUF file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a GGUF file (magic bytes {found:?}, expected \"GGUF\")")]
    NotGguf { path: PathBuf, found: [u8; 4] },
    #[error("{path}: GGUF version {version} is not supported (only versions 2 and 3)")]
    UnsupportedVersion { path: PathBuf, version: u32 },
    #[error("{path} is truncated or corrupt: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("tensor {tensor}: GGML type id {id} is unknown")]
    UnknownType { tensor: String, id: u32 },
    #[error(
        "tensor {tensor}: quant type {ty} cannot be dequantized by momentkv \
         (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K)"
    )]
    UnsupportedType { tensor: String, ty: String },
    #[error("no tensor named {0} in the GGUF file")]
    MissingTensor(String),
    #[error("metadata key {key} is missing from the GGUF file")]
    MissingKey { key: String },
    #[error("metadata key {key} has type {found}, expected {expected}")]
    WrongKeyType {
        key: String,
        found: &'static str,
        expected: &'static str,
    },
}
