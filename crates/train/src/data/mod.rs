//! Training data: a file read into token sequences with their labels, drawn in a seeded order and
//! right-padded into batches.
//!
//! Three formats, told apart by the file name:
//! - **plain text** (any name but `*.jsonl`): tokenized once as a whole and cut into windows of
//!   `seq_len` tokens, the remainder dropped, every token scored (`text.rs`);
//! - **JSONL with `text`**: each row `{"text": "..."}` one sequence, the end-of-sequence token
//!   appended as TRL's `SFTTrainer` does, cut to `seq_len`, every token scored (`jsonl.rs`);
//! - **JSONL with `messages`**: each row `{"messages": [{"role": ..., "content": ...}, ...]}`
//!   rendered with the checkpoint's chat template, only the assistant turns scored (`chat.rs`).
//!
//! A JSONL file may mix `text` and `messages` rows.

mod batch;
mod chat;
mod jsonl;
mod order;
mod text;

use std::path::{Path, PathBuf};

use momentkv_tokenizer::Tokenizer;
use momentkv_transformer::IGNORE_INDEX;

pub use batch::HostBatch;
pub use order::Order;

use crate::TrainError;

/// One training sequence: token ids and the labels aligned with them, as `transformers` has them
/// (`labels[i]` is the target of position `i − 1`; [`IGNORE_INDEX`] where nothing is scored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub tokens: Vec<u32>,
    pub labels: Vec<i64>,
}

impl Example {
    /// A sequence whose every next token is scored.
    pub fn all_scored(tokens: Vec<u32>) -> Self {
        let labels = tokens.iter().map(|&t| i64::from(t)).collect();
        Self { tokens, labels }
    }

    /// How many targets the sequence scores: labels after the first that are not ignored.
    pub fn targets(&self) -> usize {
        self.labels
            .iter()
            .skip(1)
            .filter(|&&label| label != IGNORE_INDEX)
            .count()
    }

    /// Cuts the sequence to its first `len` tokens.
    fn truncate(&mut self, len: usize) {
        self.tokens.truncate(len);
        self.labels.truncate(len);
    }
}

/// How a data file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text packed into windows.
    Text,
    /// One JSON object per line, with `text` or `messages`.
    Jsonl,
}

impl Format {
    /// JSONL for a `.jsonl` file, plain text otherwise.
    pub fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("jsonl") => Format::Jsonl,
            _ => Format::Text,
        }
    }
}

/// The sequences of a data file, each with at least one scored target, all of at most
/// `seq_len` tokens and within the model's vocabulary.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub format: Format,
    pub examples: Vec<Example>,
    /// JSONL rows longer than `seq_len`, cut to it.
    pub truncated: usize,
    /// JSONL rows left out because nothing in them is scored (a conversation without an
    /// assistant turn, a text of one token).
    pub skipped: usize,
}

impl Dataset {
    /// Reads `path` in its [`Format`] with the checkpoint's tokenizer, into sequences of at most
    /// `seq_len` tokens whose ids lie below `vocab_size`.
    ///
    /// Errors, naming the file (and the row of a JSONL file): unreadable or not UTF-8, a row that
    /// is not a JSON object with `text` or `messages`, a conversation the chat template does not
    /// render consistently, plain text shorter than one window, nothing to train on, a token id
    /// outside the model's vocabulary.
    pub fn read(
        path: &Path,
        tokenizer: &Tokenizer,
        seq_len: usize,
        vocab_size: usize,
    ) -> Result<Self, TrainError> {
        let content = read_file(path)?;
        let format = Format::of(path);
        let (examples, truncated, skipped) = match format {
            Format::Text => (text::windows(path, &content, tokenizer, seq_len)?, 0, 0),
            Format::Jsonl => {
                let rows = jsonl::read(path, &content, tokenizer, seq_len)?;
                (rows.examples, rows.truncated, rows.skipped)
            }
        };
        if examples.is_empty() {
            return Err(TrainError::data(
                path,
                "has nothing to train on: no row has a token to predict",
            ));
        }
        if let Some(&id) = examples
            .iter()
            .flat_map(|e| &e.tokens)
            .find(|&&id| id as usize >= vocab_size)
        {
            return Err(TrainError::data(
                path,
                format!(
                    "token id {id} is outside the model's vocabulary of {vocab_size} (the \
                     tokenizer and the checkpoint disagree)"
                ),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            format,
            examples,
            truncated,
            skipped,
        })
    }

    /// The scored targets of every sequence together.
    pub fn targets(&self) -> usize {
        self.examples.iter().map(Example::targets).sum()
    }

    /// Micro-batch `index` of `size` sequences drawn in `order` (of this dataset's length): the
    /// sequences at stream positions `index · size .. (index + 1) · size`, right-padded.
    pub fn micro_batch(&self, order: &mut Order, index: u64, size: usize) -> HostBatch {
        let first = index * size as u64;
        let rows: Vec<&Example> = (first..first + size as u64)
            .map(|position| &self.examples[order.at(position)])
            .collect();
        HostBatch::new(&rows)
    }
}

/// Checks that `path` is a readable file, before a model is loaded to read it with.
pub fn check_file(path: &Path) -> Result<(), TrainError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(TrainError::data(path, "is not a file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(TrainError::data(path, "no such file"))
        }
        Err(e) => Err(TrainError::data(path, e)),
    }
}

/// The file's text; an empty file is refused here, before it is tokenized.
fn read_file(path: &Path) -> Result<String, TrainError> {
    check_file(path)?;
    let bytes = std::fs::read(path).map_err(|e| TrainError::data(path, e))?;
    let content = String::from_utf8(bytes).map_err(|e| {
        TrainError::data(
            path,
            format!("is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })?;
    if content.trim().is_empty() {
        return Err(TrainError::data(path, "is empty"));
    }
    Ok(content)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The tiny fixture's tokenizer (byte-level BPE, a ChatML template, `<|im_end|>` as the end of
    /// sequence).
    pub(crate) fn tokenizer() -> Tokenizer {
        Tokenizer::from_hf_dir(&crate::tests::fixture()).unwrap()
    }

    /// `content` written to a scratch file named `name`.
    pub(crate) fn scratch_file(name: &str, content: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("momentkv-train-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn targets_skip_the_first_label_and_ignored_ones() {
        let example = Example {
            tokens: vec![5, 6, 7, 8],
            labels: vec![5, IGNORE_INDEX, 7, 8],
        };
        assert_eq!(example.targets(), 2);
        assert_eq!(Example::all_scored(vec![1, 2, 3]).targets(), 2);
    }

    #[test]
    fn bad_files_are_named() {
        let tokenizer = tokenizer();
        let empty = scratch_file("empty.txt", " \n");
        let latin1 = scratch_file("latin1.txt", "");
        std::fs::write(&latin1, b"caf\xe9").unwrap();
        let cases = [
            (Path::new("/nonexistent/data.txt"), "no such file"),
            (empty.as_path(), "is empty"),
            (latin1.as_path(), "is not UTF-8 text (byte 3)"),
        ];
        for (path, want) in cases {
            let err = Dataset::read(path, &tokenizer, 8, 300)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(want) && err.contains(&*path.to_string_lossy()),
                "{err}"
            );
        }
        let text = scratch_file("vocab.txt", &"the quick brown fox ".repeat(8));
        let err = Dataset::read(&text, &tokenizer, 8, 40)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("outside the model's vocabulary of 40"),
            "{err}"
        );
    }
}
