use std::path::{Path, PathBuf};

use momentkv_tokenizer::TokenizerError;
use momentkv_transformer::ModelError;

/// Errors of a fine-tuning run; each is one line naming the setting, file, row or step at fault.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid fine-tuning setting: {name} {reason}")]
    Setting { name: &'static str, reason: String },
    #[error("{path}: {reason}")]
    Data { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error(
        "the checkpoint in {path} was made with {name} = {saved}, this run has {given}: pass the \
         same settings to resume"
    )]
    ResumeMismatch {
        path: PathBuf,
        name: &'static str,
        saved: String,
        given: String,
    },
    #[error("non-finite {what} at step {step}; {}", last_good_text(.last_good))]
    NonFinite {
        what: &'static str,
        step: usize,
        last_good: Option<(usize, PathBuf)>,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

impl TrainError {
    pub(crate) fn setting(name: &'static str, reason: impl Into<String>) -> Self {
        TrainError::Setting {
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn data(path: &Path, reason: impl std::fmt::Display) -> Self {
        TrainError::Data {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn io(path: &Path, reason: impl std::fmt::Display) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn checkpoint(path: &Path, reason: impl std::fmt::Display) -> Self {
        TrainError::Checkpoint {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// Where a run stopped by a non-finite value can continue from.
fn last_good_text(last_good: &Option<(usize, PathBuf)>) -> String {
    match last_good {
        Some((step, dir)) => format!(
            "the last good checkpoint is step {step} in {} (--resume continues from it)",
            dir.display()
        ),
        None => "no checkpoint was saved before it".into(),
    }
}
