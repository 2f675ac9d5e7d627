//! A whole RULER sweep on disk: samples generated (or read from RULER's JSONL), every cell
//! answered with [`answer_cells`], outcomes appended to `results.jsonl` (finished ones are not
//! recomputed), then `summary.md` and one `score-vs-budget-{length}.svg` per length.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use momentkv::kernels::KernelBackend;
use momentkv::tokenizer::Tokenizer;
use momentkv::{Error, Model};
use momentkv_ruler::{read_jsonl, write_jsonl, Error as RulerError, Sample, Task};

use crate::passkey::Protocol;
use crate::ruler::{self, split};
use crate::summary;
use crate::sweep::{answer_cells, table, Cell, Outcome};

/// The settings of a RULER sweep: which samples, which caches, and where the results go.
#[derive(Debug, Clone)]
pub struct RulerSweep {
    /// RULER's tasks; with `ruler_jsonl`, the one task its samples belong to.
    pub tasks: Vec<Task>,
    /// Prompt lengths of the generated samples, in model tokens (prompt plus answer).
    pub lengths: Vec<usize>,
    /// Samples per task and length (with `ruler_jsonl`: the file's first `samples`).
    pub samples: usize,
    /// The caches every sample is answered under.
    pub cells: Vec<Cell>,
    /// The budgets of the summary's columns and of the plots' x axis.
    pub budgets: Vec<usize>,
    /// Seed of the generated samples.
    pub seed: u64,
    /// How the question meets the compression.
    pub protocol: Protocol,
    /// Samples prepared by RULER's own generator (JSONL with `input` and `outputs`), read
    /// instead of generated.
    pub ruler_jsonl: Option<PathBuf>,
    /// Where `results.jsonl`, `summary.md`, the plots and the generated samples
    /// (`samples/TASK-LENGTH.jsonl`, RULER's layout) go.
    pub out: PathBuf,
}

/// What a running sweep reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// Line `line` (from 1) of `results.jsonl` at `path` does not parse: skipped, its cell is
    /// answered again.
    UnreadLine {
        path: &'a Path,
        line: usize,
        error: &'a serde_json::Error,
    },
    /// `task` cannot be sampled at `length` tokens: left out (and named in the summary).
    SkippedTask {
        task: Task,
        length: usize,
        error: &'a RulerError,
    },
    /// The samples are ready: `total` (sample, cell) pairs, some perhaps already finished.
    Answering { total: usize },
    /// `outcome` answered and saved: `done` of `total` pairs finished, earlier runs' included.
    Answered {
        outcome: &'a Outcome,
        done: usize,
        total: usize,
    },
}

/// What a finished sweep leaves besides its files.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every outcome of the sweep's directory: earlier runs' and this one's.
    pub outcomes: Vec<Outcome>,
    /// The text of `summary.md`.
    pub summary: String,
}

/// A sample to answer, with the length its results are filed under.
type Prepared = (usize, Sample);

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.into(),
        reason: e.to_string(),
    }
}

impl RulerSweep {
    /// Checks what can be checked without a model: every cell's policy and budget, and that
    /// RULER JSONL samples have their one task.
    pub fn check<B: KernelBackend>(&self) -> Result<(), Error> {
        for cell in &self.cells {
            cell.build::<B>()?;
        }
        if self.ruler_jsonl.is_some() && self.tasks.len() != 1 {
            return Err(Error::Unsupported(
                "RULER JSONL samples belong to one task: name exactly that one".into(),
            ));
        }
        Ok(())
    }

    /// Runs the sweep on `model`, resuming from the `results.jsonl` in `out`, telling `events`
    /// how it goes; writes the files and returns the outcomes and summary.
    pub fn run<B: KernelBackend>(
        &self,
        model: &Model<B>,
        mut events: impl FnMut(Event<'_>),
    ) -> Result<Report, Error> {
        self.check::<B>()?;
        fs::create_dir_all(&self.out).map_err(io(&self.out))?;
        let results = self.out.join("results.jsonl");
        let mut outcomes = finished(&results, &mut events)?;
        let done: BTreeSet<_> = outcomes.iter().map(Outcome::key).collect();
        // The samples, generated (or read) up front: cheap next to the model.
        let mut skipped: Vec<String> = Vec::new();
        let samples = match &self.ruler_jsonl {
            Some(file) => self.read(file, &model.tokenizer)?,
            None => self.generate(&model.tokenizer, &mut |task, length, error| {
                events(Event::SkippedTask {
                    task,
                    length,
                    error,
                });
                skipped.push(format!("{task} at {length} tokens: {error}"));
            })?,
        };
        let cells = &self.cells;
        let total = samples.len() * cells.len();
        events(Event::Answering { total });
        let mut finished = 0;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&results)
            .map_err(io(&results))?;
        for (length, sample) in &samples {
            let todo: Vec<Cell> = cells
                .iter()
                .filter(|c| {
                    !done.contains(&(sample.task.to_string(), *length, sample.index, (*c).clone()))
                })
                .cloned()
                .collect();
            finished += cells.len() - todo.len();
            if todo.is_empty() {
                continue;
            }
            let prompt = split(&sample.input, &model.tokenizer)?;
            let prompt_tokens = prompt.context.len() + prompt.question.len();
            answer_cells(
                model,
                &prompt,
                &todo,
                self.protocol,
                sample.tokens_to_generate,
                |cell, answer, bytes, seconds| {
                    let outcome = Outcome {
                        task: sample.task.to_string(),
                        length: *length,
                        index: sample.index,
                        policy: cell.policy.clone(),
                        budget: cell.budget,
                        score: sample.score(&answer),
                        answer,
                        outputs: sample.outputs.clone(),
                        prompt_tokens,
                        kv_cache_bytes: bytes,
                        seconds,
                    };
                    let line = serde_json::to_string(&outcome).expect("serialisable");
                    writeln!(file, "{line}").map_err(io(&results))?;
                    finished += 1;
                    events(Event::Answered {
                        outcome: &outcome,
                        done: finished,
                        total,
                    });
                    outcomes.push(outcome);
                    Ok(())
                },
            )?;
        }
        let lengths: Vec<usize> = samples
            .iter()
            .map(|s| s.0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let scores = table(&outcomes);
        let mut summary = summary::markdown(&scores, cells, &lengths, &self.budgets, self.protocol);
        for s in &skipped {
            summary.push_str(&format!("Skipped {s}\n"));
        }
        let summary_path = self.out.join("summary.md");
        fs::write(&summary_path, &summary).map_err(io(&summary_path))?;
        for &length in &lengths {
            let plot = summary::plot(&scores, cells, length, &self.budgets);
            let path = self.out.join(format!("score-vs-budget-{length}.svg"));
            fs::write(&path, plot.svg()).map_err(io(&path))?;
        }
        Ok(Report { outcomes, summary })
    }

    /// The first `samples` of a RULER JSONL file, all filed under its longest prompt's length
    /// (one group per file).
    fn read(&self, file: &Path, tokenizer: &Tokenizer) -> Result<Vec<Prepared>, Error> {
        let count = |t: &str| tokenizer.encode(t, true).map_or(0, |ids| ids.len());
        let read = read_jsonl(file, self.tasks[0], &count)
            .map_err(|e| Error::Unsupported(e.to_string()))?;
        let read: Vec<Sample> = read.into_iter().take(self.samples).collect();
        let nominal = read.iter().map(|s| s.length).max().unwrap_or(0);
        Ok(read.into_iter().map(|s| (nominal, s)).collect())
    }

    /// Generates every task's samples at every length, saving them in RULER's layout (for its
    /// scripts and `ruler_jsonl`); a task that cannot be made that short goes to `skip`.
    fn generate(
        &self,
        tokenizer: &Tokenizer,
        skip: &mut dyn FnMut(Task, usize, &RulerError),
    ) -> Result<Vec<Prepared>, Error> {
        let sources = ruler::sources(&self.tasks)?;
        let dir = self.out.join("samples");
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut samples = Vec::new();
        for &length in &self.lengths {
            for &task in &self.tasks {
                let set = (0..self.samples)
                    .map(|index| ruler::sample(task, length, self.seed, index, &sources, tokenizer))
                    .collect::<Result<Vec<_>, _>>();
                let set = match set {
                    Ok(set) => set,
                    Err(e @ RulerError::TargetTooSmall { .. }) => {
                        skip(task, length, &e);
                        continue;
                    }
                    Err(e) => return Err(Error::Unsupported(e.to_string())),
                };
                let path = dir.join(format!("{task}-{length}.jsonl"));
                let file = fs::File::create(&path).map_err(io(&path))?;
                write_jsonl(&set, std::io::BufWriter::new(file)).map_err(io(&path))?;
                samples.extend(set.into_iter().map(|s| (length, s)));
            }
        }
        Ok(samples)
    }
}

/// Outcomes already in `results.jsonl` at `path` (lines that do not parse are reported and
/// skipped).
fn finished(path: &Path, events: &mut impl FnMut(Event<'_>)) -> Result<Vec<Outcome>, Error> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = fs::read_to_string(path).map_err(io(path))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<Outcome>(line) {
            Ok(o) => out.push(o),
            Err(error) => events(Event::UnreadLine {
                path,
                line: i + 1,
                error: &error,
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resuming_skips_and_reports_lines_that_do_not_parse() {
        let dir = std::env::temp_dir().join("momentkv-eval-resume");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.jsonl");
        let outcome = Outcome {
            task: "vt".into(),
            length: 1024,
            index: 0,
            policy: "full".into(),
            budget: None,
            score: 100.0,
            answer: "a".into(),
            outputs: vec!["a".into()],
            prompt_tokens: 10,
            kv_cache_bytes: 64,
            seconds: 0.5,
        };
        let good = serde_json::to_string(&outcome).unwrap();
        fs::write(&path, format!("{good}\n\n{{\"task\": \n{good}\n")).unwrap();
        let mut unread = Vec::new();
        let read = finished(&path, &mut |e| match e {
            Event::UnreadLine { line, .. } => unread.push(line),
            other => panic!("{other:?}"),
        })
        .unwrap();
        assert_eq!(read, [outcome.clone(), outcome]);
        assert_eq!(unread, [3]);
        assert!(finished(&dir.join("none.jsonl"), &mut |_| {})
            .unwrap()
            .is_empty());
    }
}
