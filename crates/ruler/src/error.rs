use std::path::{Path, PathBuf};

use crate::task::Task;

/// What can go wrong loading RULER's data or generating a sample.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file was read but does not hold what it should.
    #[error("{path} is not {expected}: {reason}")]
    Corrupt {
        path: PathBuf,
        expected: &'static str,
        reason: String,
    },
    /// Text given in memory does not hold what it should.
    #[error("not {expected}: {reason}")]
    Invalid {
        expected: &'static str,
        reason: String,
    },
    /// A task name that is not one of [`Task::NAMES`].
    #[error("unknown RULER task `{name}` (known: {known})", known = crate::task::Task::NAMES.join(", "))]
    UnknownTask { name: String },
    /// The task draws from data the caller did not load ([`Task::sources`]).
    #[error("task {task} needs {data}, which was not loaded")]
    MissingSource { task: Task, data: &'static str },
    /// Even the smallest prompt of the task, with its tokens to generate, exceeds the target.
    #[error(
        "a target of {target} tokens is too small for {task}: its smallest prompt plus the \
         tokens to generate takes {needed}"
    )]
    TargetTooSmall {
        task: Task,
        target: usize,
        needed: usize,
    },
    /// The target is above [`crate::MAX_TARGET`].
    #[error("a target of {target} tokens is beyond the {max} this crate generates")]
    TargetTooLarge { target: usize, max: usize },
    /// A qa sample index past the data set's questions (sample `i` asks question `i`).
    #[error("{task} has {available} questions, so there is no sample {index}")]
    IndexOutOfRange {
        task: Task,
        index: usize,
        available: usize,
    },
}

impl Error {
    /// An [`Error::Invalid`] about what was read from `path` becomes an [`Error::Corrupt`] naming it.
    pub(crate) fn at(self, path: &Path) -> Self {
        match self {
            Error::Invalid { expected, reason } => Error::Corrupt {
                path: path.into(),
                expected,
                reason,
            },
            other => other,
        }
    }
}
