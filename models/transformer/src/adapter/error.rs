use std::path::{Path, PathBuf};

use crate::error::few;

/// Errors configuring, attaching, saving or loading an adapter; each is one line naming the
/// field, key, tensor or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("invalid adapter configuration: {field} {reason}")]
    Config { field: &'static str, reason: String },
    #[error(
        "unknown adapter target {0:?}: the targets are q_proj, k_proj, v_proj, o_proj, \
         gate_proj, up_proj and down_proj"
    )]
    UnknownTarget(String),
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{path}: {key} {reason}")]
    Field {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("{path}: {key} = {value} is not supported: {reason}")]
    Unsupported {
        path: PathBuf,
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error(
        "{path} lacks tensors of the projections the adapter targets: {}",
        few(.names, ", ")
    )]
    MissingTensors { path: PathBuf, names: Vec<String> },
    #[error("{path}: tensors do not fit the model: {}", few(.shapes, "; "))]
    ShapeMismatch { path: PathBuf, shapes: Vec<String> },
    #[error(
        "{path} has tensors of projections the adapter configuration does not target: {}",
        few(.names, ", ")
    )]
    UnusedTensors { path: PathBuf, names: Vec<String> },
    #[error("{path}: {name} is {dtype}; adapter tensors are F32, F16, BF16 or F64")]
    Dtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },
    #[error("{path}: cannot load tensors: {}", few(.errors, "; "))]
    BadTensors { path: PathBuf, errors: Vec<String> },
    #[error(
        "the model already has an adapter: merge it (Transformer::merge_adapter) before attaching \
         another"
    )]
    AlreadyAttached,
    #[error("the model has no adapter to save")]
    NoAdapter,
}

impl AdapterError {
    pub(crate) fn file(path: &Path, reason: impl std::fmt::Display) -> Self {
        AdapterError::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}
