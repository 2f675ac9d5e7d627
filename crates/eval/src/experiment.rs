//! A whole RULER sweep on disk: samples generated (or read from RULER's JSONL), every cell
//! answered with [`answer_cells`], outcomes appended to `results.jsonl` (finished ones are not
//! recomputed), then `summary.md` and, per length, `score-vs-budget-{length}.svg` and
//! `score-vs-compression-{length}.svg` for the cells at budgets and at compression ratios.
//!
//! A directory holds the results of one set of [`Settings`] (model bytes, adapter bytes and
//! whether it was merged, seed, protocol, sample source, momentkv version), saved in `sweep.json`: a sweep with other settings refuses it rather
//! than reuse answers computed under them. Each outcome is appended as one whole line; a torn last
//! line (a crash or a full disk mid-write) is moved to `results.jsonl.torn` before appending.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use momentkv::kernels::KernelBackend;
use momentkv::tokenizer::Tokenizer;
use momentkv::{checksum, Error, Model};
use momentkv_ruler::{read_jsonl, write_jsonl, Error as RulerError, Sample, Task};
use serde::{Deserialize, Serialize};

use crate::passkey::Protocol;
use crate::ruler::{self, Pipeline};
use crate::summary;
use crate::sweep::{answer_cells, table, Cell, Column, Outcome};

/// The file of each task in a directory of RULER's layout (`<task>/validation.jsonl`).
const RULER_FILE: &str = "validation.jsonl";

/// The settings of a RULER sweep: which samples, which caches, and where the results go.
#[derive(Debug, Clone)]
pub struct RulerSweep {
    /// RULER's tasks; with a `ruler_jsonl` file, the one task its samples belong to; with a
    /// `ruler_jsonl` directory, those of its tasks to answer.
    pub tasks: Vec<Task>,
    /// Prompt lengths of the generated samples, in model tokens (prompt plus answer).
    pub lengths: Vec<usize>,
    /// Samples per task and length (with `ruler_jsonl`: each file's first `samples`).
    pub samples: usize,
    /// The caches every sample is answered under.
    pub cells: Vec<Cell>,
    /// The summary's columns: the budgets (the x axis of the score-vs-budget plots), then the
    /// compression ratios (that of the score-vs-compression plots).
    pub columns: Vec<Column>,
    /// Seed of the generated samples.
    pub seed: u64,
    /// Whose pipeline puts the samples to the model.
    pub pipeline: Pipeline,
    /// How the question meets the compression.
    pub protocol: Protocol,
    /// Samples prepared by RULER's own generator (JSONL with `input` and `outputs`), read
    /// instead of generated: one task's file, or a directory in RULER's layout holding
    /// `<task>/validation.jsonl` for several.
    pub ruler_jsonl: Option<PathBuf>,
    /// Where `results.jsonl`, `summary.md`, the plots and the generated samples
    /// (`samples/TASK-LENGTH.jsonl`, RULER's layout) go.
    pub out: PathBuf,
}

/// What an answer depends on besides its sample and cell; a directory's results are reused only
/// under equal settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The version of momentkv that answered.
    pub momentkv: String,
    /// The checkpoint's file or directory name, for people.
    pub model: String,
    /// [`checksum::sha256`] of the checkpoint: what identifies it.
    pub model_sha256: String,
    /// The directory of the LoRA adapter applied at load, for people; `None` without one (and in
    /// the `sweep.json` of versions before adapters).
    #[serde(default)]
    pub adapter: Option<String>,
    /// [`checksum::sha256`] of the adapter's directory: what identifies it.
    #[serde(default)]
    pub adapter_sha256: Option<String>,
    /// Whether the adapter was merged into the weights (a side path rounds differently).
    #[serde(default)]
    pub adapter_merged: Option<bool>,
    /// [`Pipeline::protocol_name`]: `query-agnostic` or `query-aware`, after `kvpress ` under
    /// kvpress's pipeline.
    pub protocol: String,
    /// The seed of generated samples; `None` when they are read from RULER's JSONL.
    pub seed: Option<u64>,
    /// The SHA-256 of the RULER JSONL file the samples are read from; for a directory, `TASK
    /// SHA-256` of each task's file, `; `-separated.
    pub samples_sha256: Option<String>,
}

impl Settings {
    /// `field X there, Y here` for each field that differs but the model's and the adapter's names
    /// (a renamed copy of the same bytes is the same model), `; `-separated; empty when the
    /// settings agree.
    fn differences(&self, here: &Settings) -> String {
        const NAMES: [&str; 2] = ["model", "adapter"];
        let object = |s: &Settings| match serde_json::to_value(s) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        let (there, here) = (object(self), object(here));
        there
            .iter()
            .filter(|(k, _)| !NAMES.contains(&k.as_str()))
            .filter_map(|(k, v)| {
                let now = here.get(k).unwrap_or(&serde_json::Value::Null);
                (now != v).then(|| format!("{k} {v} there, {now} here"))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What a running sweep reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// The last line of `results.jsonl` at `path` was torn (written in part): its `bytes` were
    /// moved to `kept`, and its cell is answered again.
    TornLine {
        path: &'a Path,
        bytes: usize,
        kept: &'a Path,
    },
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
    /// A task directory of the RULER JSONL directory (`path`, holding `validation.jsonl`) is named
    /// after no RULER task: skipped.
    UnknownTask { path: &'a Path },
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
    /// Checks what can be checked without a model: every cell's policy and budget, and that a
    /// RULER JSONL file's samples have their one task.
    pub fn check<B: KernelBackend>(&self) -> Result<(), Error> {
        for cell in &self.cells {
            cell.build::<B>()?;
        }
        let file = self.ruler_jsonl.as_deref().filter(|p| !p.is_dir());
        if file.is_some() && self.tasks.len() != 1 {
            return Err(Error::Unsupported(
                "a RULER JSONL file's samples belong to one task: name exactly that one (or pass \
                 a directory of <task>/validation.jsonl)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The files of a RULER JSONL directory `dir` (`<task>/validation.jsonl`) whose tasks this
    /// sweep answers, in RULER's task order; a task directory named after no task goes to `skip`.
    /// An error when none is left.
    fn task_files(
        &self,
        dir: &Path,
        skip: &mut dyn FnMut(&Path),
    ) -> Result<Vec<(Task, PathBuf)>, Error> {
        let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(RULER_FILE).is_file())
            .collect();
        dirs.sort();
        let mut files = Vec::new();
        for path in dirs {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            match name.parse::<Task>() {
                Ok(task) if self.tasks.contains(&task) => files.push((task, path.join(RULER_FILE))),
                Ok(_) => {}
                Err(_) => skip(&path),
            }
        }
        files.sort_by_key(|(task, _)| *task as usize);
        if files.is_empty() {
            return Err(Error::Unsupported(format!(
                "{} holds no RULER task to answer: expected <task>/{RULER_FILE} with <task> among \
                 {}",
                dir.display(),
                self.tasks
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(files)
    }

    /// The SHA-256 of the samples' source: the RULER JSONL file's, or each task file's.
    fn samples_sha256(&self, path: &Path) -> Result<String, Error> {
        if !path.is_dir() {
            return checksum::sha256(path);
        }
        let mut digests = Vec::new();
        for (task, file) in self.task_files(path, &mut |_| {})? {
            digests.push(format!("{task} {}", checksum::sha256(&file)?));
        }
        Ok(digests.join("; "))
    }

    /// The settings of this sweep on `model` (hashes the checkpoint, its adapter and any RULER
    /// JSONL file).
    pub fn settings<B: KernelBackend>(&self, model: &Model<B>) -> Result<Settings, Error> {
        let adapter = model.adapter.as_ref();
        Ok(Settings {
            momentkv: env!("CARGO_PKG_VERSION").into(),
            model: model
                .source
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            model_sha256: checksum::sha256(&model.source)?,
            adapter: adapter.map(|a| a.dir.display().to_string()),
            adapter_sha256: adapter.map(|a| checksum::sha256(&a.dir)).transpose()?,
            adapter_merged: adapter.map(|a| a.merged),
            protocol: self.pipeline.protocol_name(self.protocol),
            seed: self.ruler_jsonl.is_none().then_some(self.seed),
            samples_sha256: self
                .ruler_jsonl
                .as_deref()
                .map(|p| self.samples_sha256(p))
                .transpose()?,
        })
    }

    /// Runs the sweep on `model`, resuming from the `results.jsonl` in `out` when `out` holds
    /// results of the same [`Settings`] (and refusing it when they differ), telling `events` how
    /// it goes; writes the files and returns the outcomes and summary.
    pub fn run<B: KernelBackend>(
        &self,
        model: &Model<B>,
        mut events: impl FnMut(Event<'_>),
    ) -> Result<Report, Error> {
        self.check::<B>()?;
        fs::create_dir_all(&self.out).map_err(io(&self.out))?;
        let results = self.out.join("results.jsonl");
        claim(&self.out, &self.settings(model)?)?;
        let mut outcomes = finished(&results, &mut events)?;
        let done: BTreeSet<_> = outcomes.iter().map(Outcome::key).collect();
        // The samples, generated (or read) up front: cheap next to the model.
        let mut skipped: Vec<String> = Vec::new();
        let samples = match &self.ruler_jsonl {
            Some(path) => self.read(path, &model.tokenizer, &mut |path: &Path| {
                events(Event::UnknownTask { path });
            })?,
            None => self.generate(&model.tokenizer, &mut |task, length, error| {
                events(Event::SkippedTask {
                    task,
                    length,
                    error,
                });
                skipped.push(format!("{task} at {length} tokens: {error}"));
            })?,
        };
        if samples.is_empty() {
            let why = if skipped.is_empty() {
                String::new()
            } else {
                format!(": skipped {}", skipped.join("; "))
            };
            return Err(Error::Unsupported(format!("no sample to answer{why}")));
        }
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
            let prompt = self
                .pipeline
                .prompt(sample, &model.tokenizer, self.protocol)?;
            let prompt_tokens = prompt.context.len() + prompt.question.len();
            answer_cells(
                model,
                &prompt,
                &todo,
                self.pipeline,
                sample.tokens_to_generate,
                |cell, answer, bytes, seconds| {
                    let outcome = Outcome {
                        task: sample.task.to_string(),
                        length: *length,
                        index: sample.index,
                        policy: cell.policy.clone(),
                        budget: cell.budget,
                        compression: cell.compression,
                        score: sample.score(&answer),
                        answer,
                        outputs: sample.outputs.clone(),
                        prompt_tokens,
                        kv_cache_bytes: bytes,
                        seconds,
                    };
                    let line = serde_json::to_string(&outcome).expect("serialisable") + "\n";
                    file.write_all(line.as_bytes()).map_err(io(&results))?;
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
        let mut summary = summary::markdown(
            &scores,
            cells,
            &lengths,
            &self.columns,
            self.pipeline,
            self.protocol,
        );
        for s in &skipped {
            summary.push_str(&format!("Skipped {s}\n"));
        }
        let summary_path = self.out.join("summary.md");
        fs::write(&summary_path, &summary).map_err(io(&summary_path))?;
        let (budgets, ratios): (Vec<Column>, Vec<Column>) = self
            .columns
            .iter()
            .copied()
            .partition(|c| matches!(c, Column::Budget(_)));
        for &length in &lengths {
            for (columns, name) in [(&budgets, "budget"), (&ratios, "compression")] {
                if columns.is_empty() {
                    continue;
                }
                let plot = summary::plot(&scores, cells, length, columns);
                let path = self.out.join(format!("score-vs-{name}-{length}.svg"));
                fs::write(&path, plot.svg()).map_err(io(&path))?;
            }
        }
        Ok(Report { outcomes, summary })
    }

    /// The first `samples` of each RULER JSONL file (one file, or each task's of a directory,
    /// task directories named after no task going to `skip`), all filed under the longest
    /// prompt's length (one group per file or directory).
    fn read(
        &self,
        path: &Path,
        tokenizer: &Tokenizer,
        skip: &mut dyn FnMut(&Path),
    ) -> Result<Vec<Prepared>, Error> {
        let files = if path.is_dir() {
            self.task_files(path, skip)?
        } else {
            vec![(self.tasks[0], path.to_path_buf())]
        };
        let count = |t: &str| tokenizer.encode(t, true).map_or(0, |ids| ids.len());
        let mut read: Vec<Sample> = Vec::new();
        for (task, file) in files {
            let samples =
                read_jsonl(&file, task, &count).map_err(|e| Error::Unsupported(e.to_string()))?;
            read.extend(samples.into_iter().take(self.samples));
        }
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

/// Makes `out` the directory of a sweep with `settings`: writes `sweep.json` if `out` holds no
/// results yet, and refuses a directory whose results came from other (or unrecorded) settings.
fn claim(out: &Path, settings: &Settings) -> Result<(), Error> {
    let path = out.join("sweep.json");
    let results = out.join("results.jsonl");
    let refuse = |why: String| {
        Err(Error::Unsupported(format!(
            "{} holds results of other settings ({why}): pass another --out, or remove {} to \
             start over",
            out.display(),
            results.display()
        )))
    };
    let has_results = fs::metadata(&results).is_ok_and(|m| m.len() > 0);
    match fs::read_to_string(&path) {
        Ok(text) => match serde_json::from_str::<Settings>(&text) {
            Ok(saved) => {
                let differences = saved.differences(settings);
                if differences.is_empty() {
                    return Ok(());
                }
                if has_results {
                    return refuse(differences);
                }
            }
            Err(e) if has_results => {
                return refuse(format!("{} does not parse: {e}", path.display()))
            }
            Err(_) => {}
        },
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
        Err(_) if has_results => return refuse(format!("no {} records them", path.display())),
        Err(_) => {}
    }
    let text = serde_json::to_string_pretty(settings).expect("serialisable") + "\n";
    let partial = out.join("sweep.json.partial");
    fs::write(&partial, text).map_err(io(&partial))?;
    fs::rename(&partial, &path).map_err(io(&path))
}

/// Moves a torn last line of the file at `path` (bytes after its last newline) to
/// `PATH.torn`, appended there, then cuts it from the file; returns its length and where it went.
fn set_aside_torn_line(path: &Path) -> Result<Option<(usize, PathBuf)>, Error> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io(path))?;
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole == bytes.len() {
        return Ok(None);
    }
    let kept = path.with_extension("jsonl.torn");
    let mut torn = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&kept)
        .map_err(io(&kept))?;
    torn.write_all(&bytes[whole..])
        .and_then(|()| torn.write_all(b"\n"))
        .and_then(|()| torn.sync_all())
        .map_err(io(&kept))?;
    file.set_len(whole as u64).map_err(io(path))?;
    file.seek(SeekFrom::End(0)).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    Ok(Some((bytes.len() - whole, kept)))
}

/// Outcomes already in `results.jsonl` at `path` (a torn last line is set aside, lines that do
/// not parse are reported and skipped).
fn finished(path: &Path, events: &mut impl FnMut(Event<'_>)) -> Result<Vec<Outcome>, Error> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    if let Some((bytes, kept)) = set_aside_torn_line(path)? {
        events(Event::TornLine {
            path,
            bytes,
            kept: &kept,
        });
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

    fn settings(seed: u64) -> Settings {
        Settings {
            momentkv: "0.1.0".into(),
            model: "m.gguf".into(),
            model_sha256: "ab".into(),
            adapter: None,
            adapter_sha256: None,
            adapter_merged: None,
            protocol: "query-agnostic".into(),
            seed: Some(seed),
            samples_sha256: None,
        }
    }

    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_directory_is_reused_only_under_the_settings_of_its_results() {
        let dir = fresh_dir("momentkv-eval-claim");
        claim(&dir, &settings(0)).unwrap();
        let saved: Settings =
            serde_json::from_str(&fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
        assert_eq!(saved, settings(0));
        // No results yet: other settings take the directory over.
        claim(&dir, &settings(7)).unwrap();
        fs::write(dir.join("results.jsonl"), "{}\n").unwrap();
        claim(&dir, &settings(7)).unwrap();
        let mut aware = settings(0);
        aware.protocol = "query-aware".into();
        let err = claim(&dir, &aware).unwrap_err().to_string();
        assert!(
            err.contains(
                "protocol \"query-agnostic\" there, \"query-aware\" here; seed 7 there, 0 here"
            ),
            "{err}"
        );
        fs::remove_file(dir.join("sweep.json")).unwrap();
        let err = claim(&dir, &settings(7)).unwrap_err().to_string();
        assert!(
            err.contains("no ") && err.contains("sweep.json records them"),
            "{err}"
        );
        fs::write(dir.join("sweep.json"), "{").unwrap();
        let err = claim(&dir, &settings(7)).unwrap_err().to_string();
        assert!(err.contains("does not parse"), "{err}");
    }

    /// The adapter is part of the settings: results computed without one, with other bytes or
    /// merged where they were not are not reused. Its directory's name is not compared, and a
    /// `sweep.json` written before adapters reads as one without.
    #[test]
    fn results_are_reused_only_under_the_same_adapter() {
        let dir = fresh_dir("momentkv-eval-claim-adapter");
        claim(&dir, &settings(0)).unwrap();
        fs::write(dir.join("results.jsonl"), "{}\n").unwrap();
        let adapted = Settings {
            adapter: Some("lora".into()),
            adapter_sha256: Some("cd".into()),
            adapter_merged: Some(true),
            ..settings(0)
        };
        let err = claim(&dir, &adapted).unwrap_err().to_string();
        for difference in [
            "adapter_sha256 null there, \"cd\" here",
            "adapter_merged null there, true here",
        ] {
            assert!(err.contains(difference), "{err}");
        }
        assert!(!err.contains("lora"), "{err}");

        fs::remove_file(dir.join("results.jsonl")).unwrap();
        claim(&dir, &adapted).unwrap();
        fs::write(dir.join("results.jsonl"), "{}\n").unwrap();
        let renamed = Settings {
            adapter: Some("copy-of-lora".into()),
            ..adapted.clone()
        };
        claim(&dir, &renamed).unwrap();
        let side_path = Settings {
            adapter_merged: Some(false),
            ..adapted
        };
        let err = claim(&dir, &side_path).unwrap_err().to_string();
        assert!(
            err.contains("adapter_merged true there, false here"),
            "{err}"
        );

        let mut before = serde_json::to_value(settings(0)).unwrap();
        let fields = before.as_object_mut().unwrap();
        for key in ["adapter", "adapter_sha256", "adapter_merged"] {
            fields.remove(key).unwrap();
        }
        let read: Settings = serde_json::from_value(before).unwrap();
        assert_eq!(read, settings(0));
    }

    #[test]
    fn a_torn_last_line_is_set_aside_and_the_next_record_starts_a_line() {
        let dir = fresh_dir("momentkv-eval-torn");
        let path = dir.join("results.jsonl");
        fs::write(&path, "{\"a\": 1}\n{\"task\": \"v").unwrap();
        let (bytes, kept) = set_aside_torn_line(&path).unwrap().unwrap();
        assert_eq!(bytes, 11);
        assert_eq!(kept, dir.join("results.jsonl.torn"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"a\": 1}\n");
        assert_eq!(fs::read_to_string(&kept).unwrap(), "{\"task\": \"v\n");
        assert!(set_aside_torn_line(&path).unwrap().is_none());
        fs::write(&path, "{\"b").unwrap();
        assert_eq!(set_aside_torn_line(&path).unwrap().unwrap().0, 3);
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        assert_eq!(
            fs::read_to_string(&kept).unwrap(),
            "{\"task\": \"v\n{\"b\n",
            "earlier fragments are kept"
        );
    }

    #[test]
    fn resuming_skips_and_reports_lines_that_do_not_parse() {
        let dir = fresh_dir("momentkv-eval-resume");
        let path = dir.join("results.jsonl");
        let outcome = Outcome {
            answer: "a".into(),
            outputs: vec!["a".into()],
            ..Outcome::scored("vt", "full", None, 100.0)
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
