//! RULER's JSONL files: one sample a line, `{"index", "input", "outputs", "length"}`.

use std::io::Write;
use std::path::Path;

use crate::error::Error;
use crate::sample::Sample;
use crate::task::Task;

/// One line of a RULER-prepared file; fields beyond these (`pred`, `others`, ...) are ignored.
#[derive(serde::Deserialize)]
struct Record {
    index: Option<usize>,
    input: String,
    outputs: Vec<String>,
    length: Option<usize>,
}

/// Reads the samples of `task` from a file RULER prepared (`<task>/validation.jsonl`). A line
/// without `index` takes its position; one without `length` is counted with `count_tokens`
/// (a recorded `length` is kept, in the tokens of the tokenizer RULER was run with).
pub fn read_jsonl(
    path: &Path,
    task: Task,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Result<Vec<Sample>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    parse_jsonl(&text, task, count_tokens).map_err(|e| e.at(path))
}

/// [`read_jsonl`] for the file's contents.
pub fn parse_jsonl(
    text: &str,
    task: Task,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Result<Vec<Sample>, Error> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .enumerate()
        .map(|(position, (line_number, line))| {
            let record: Record = serde_json::from_str(line).map_err(|e| Error::Invalid {
                expected: "RULER JSONL (lines with \"input\" and \"outputs\")",
                reason: format!("line {}: {e}", line_number + 1),
            })?;
            let length = record
                .length
                .unwrap_or_else(|| count_tokens(&record.input) + task.tokens_to_generate());
            Ok(Sample {
                index: record.index.unwrap_or(position),
                task,
                input: record.input,
                outputs: record.outputs,
                length,
                tokens_to_generate: task.tokens_to_generate(),
                metric: task.metric(),
            })
        })
        .collect()
}

/// Writes `samples` as RULER's JSONL, one line each.
pub fn write_jsonl(samples: &[Sample], mut out: impl Write) -> std::io::Result<()> {
    for sample in samples {
        serde_json::to_writer(&mut out, sample)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
