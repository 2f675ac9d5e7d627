//! RULER's synthetic long-context tasks (NVIDIA's RULER as packaged in
//! `nvidia-long-context-eval` 26.3), generated in pure Rust and scored as RULER scores them.
//!
//! - [`Task`]: the 13 tasks, `niah_single_1` to `qa_2`, with their answer lengths and metrics;
//! - [`Sources`]: the data files some tasks draw from ([`Task::sources`]), parsed from paths
//!   the caller provides;
//! - [`generate`]: sample `index` of a task for a seed, its prompt as long as fits a target in
//!   the evaluated model's tokens (`count_tokens`), found in O(log n) token counts;
//! - [`Sample`]: the prompt (ending with RULER's answer prefix), the reference answers, and the
//!   length; serialises to RULER's JSONL record, and [`read_jsonl`] reads RULER's own files;
//! - [`Metric`], [`postprocess`], [`string_match_all`], [`string_match_part`]: RULER's scoring;
//! - [`kvpress_parts`]: a prompt cut into context, question and answer prefix as kvpress's RULER
//!   dataset cuts RULER's.
//!
//! Samples follow RULER's generators in layout, templates, sizes and distributions, but not
//! draw for draw: the random numbers come from this crate's own generator, so a seed gives the
//! same samples here every time, not the samples Python would give.

mod cwe;
mod error;
mod essays;
mod fit;
mod fwe;
mod jsonl;
mod niah;
mod parts;
mod qa;
mod qa_data;
mod rng;
mod sample;
mod score;
mod sentences;
mod sources;
mod task;
mod templates;
mod vt;
mod words;

pub use error::Error;
pub use essays::Essays;
pub use jsonl::{parse_jsonl, read_jsonl, write_jsonl};
pub use niah::{depth_position, DEPTHS};
pub use parts::{kvpress_parts, Parts};
pub use qa_data::{QaSet, Question};
pub use sample::{generate, Sample, MAX_TARGET};
pub use score::{postprocess, string_match_all, string_match_part, Metric};
pub use sentences::split_sentences;
pub use sources::{Source, Sources};
pub use task::Task;
pub use words::WordLists;
