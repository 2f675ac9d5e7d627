//! `momentkv eval`: RULER's tasks over policies and budgets, resumable, with a Markdown summary
//! and score-vs-budget plots.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use momentkv::backend::{dispatch, WithBackend};
use momentkv::kernels::KernelBackend;
use momentkv::{hub, load, Error};
use momentkv_eval::passkey::Protocol;
use momentkv_eval::plot::{LinePlot, Series};
use momentkv_eval::ruler::{self, split};
use momentkv_eval::sweep::{answer_cells, average, table, Cell, Outcome, Table};
use momentkv_ruler::{read_jsonl, write_jsonl, Error as RulerError, Sample, Task};

use crate::cache_args::split_policies;
use crate::ModelArgs;

/// `--quick`: a few tasks at 1k tokens that finish in minutes on a laptop CPU.
const QUICK_TASKS: &str = "niah_single_1,niah_single_2,niah_multikey_1,vt,fwe";
const QUICK_POLICIES: &str = "streaming;snapkv;momentkv";
const QUICK_BUDGETS: [usize; 2] = [128, 256];

#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// RULER tasks (comma list; `all` for the 13).
    #[arg(long, default_value = "all", value_delimiter = ',')]
    pub tasks: Vec<String>,
    /// Prompt lengths in model tokens (prompt plus answer).
    #[arg(long, default_value = "4096", value_delimiter = ',')]
    pub lengths: Vec<usize>,
    /// Samples per task and length.
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
    /// Policies, `NAME[:key=value,...]`, separated by `;` or `,` between names (the full cache is
    /// always evaluated).
    #[arg(long, value_delimiter = ';')]
    pub policies: Vec<String>,
    /// Budgets in tokens per KV head.
    #[arg(long, value_delimiter = ',', default_value = "64,128,256,512")]
    pub budgets: Vec<usize>,
    /// Seed of the generated samples.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Compress the question with the context instead of reading it after compression.
    #[arg(long)]
    pub query_aware: bool,
    /// Evaluate samples prepared by RULER's own generator (JSONL with `input` and `outputs`)
    /// instead of generating them; `--tasks` then names the single task they belong to.
    #[arg(long)]
    pub ruler_jsonl: Option<PathBuf>,
    /// Where results.jsonl, summary.md, the plots and the generated samples (samples/TASK-LENGTH.jsonl,
    /// RULER's layout) go; finished cells found there are not recomputed.
    #[arg(long, default_value = "eval-results")]
    pub out: PathBuf,
    /// A small run: tasks niah_single_1, niah_single_2, niah_multikey_1, vt, fwe at 1024 tokens,
    /// 2 samples, streaming, snapkv and momentkv at budgets 128 and 256 (other options ignored).
    #[arg(long)]
    pub quick: bool,
}

impl EvalArgs {
    fn apply_quick(&mut self) {
        if self.quick {
            self.tasks = QUICK_TASKS.split(',').map(String::from).collect();
            self.lengths = vec![1024];
            self.samples = 2;
            self.policies = QUICK_POLICIES.split(';').map(String::from).collect();
            self.budgets = QUICK_BUDGETS.to_vec();
        }
    }

    fn tasks(&self) -> Result<Vec<Task>, Error> {
        if self.tasks.iter().any(|t| t == "all") {
            return Ok(Task::ALL.to_vec());
        }
        self.tasks
            .iter()
            .map(|t| {
                t.trim()
                    .parse::<Task>()
                    .map_err(|e| Error::Unsupported(e.to_string()))
            })
            .collect()
    }

    fn cells(&self) -> Vec<Cell> {
        let mut cells = vec![Cell::full()];
        for p in split_policies(&self.policies) {
            if p == "full" {
                continue;
            }
            cells.extend(self.budgets.iter().map(|&b| Cell {
                policy: p.clone(),
                budget: Some(b),
            }));
        }
        cells
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.into(),
        reason: e.to_string(),
    }
}

/// Outcomes already in `results.jsonl` (lines that do not parse are reported and skipped).
fn finished(path: &Path) -> Result<Vec<Outcome>, Error> {
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
            Err(e) => eprintln!("{}:{}: skipped ({e})", path.display(), i + 1),
        }
    }
    Ok(out)
}

/// `12/120 (10%), 3m20s left` on one rewritten stderr line.
struct Progress {
    total: usize,
    done: usize,
    fresh: usize,
    started: Instant,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.done += 1;
        self.fresh += 1;
        let per = self.started.elapsed().as_secs_f64() / self.fresh as f64;
        let left = (per * (self.total - self.done) as f64) as u64;
        eprint!(
            "\r\x1b[2K[{}/{} {:>3}%] {} left · {what}",
            self.done,
            self.total,
            100 * self.done / self.total.max(1),
            format_args!("{}m{:02}s", left / 60, left % 60)
        );
        let _ = std::io::stderr().flush();
    }
}

struct Eval(EvalArgs);

impl WithBackend for Eval {
    type Output = Result<(), Error>;

    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), Error> {
        let mut args = self.0;
        args.apply_quick();
        if args.samples == 0 || args.lengths.is_empty() {
            return Err(Error::Unsupported(
                "--samples and --lengths need at least one each".into(),
            ));
        }
        let tasks = args.tasks()?;
        let cells = args.cells();
        for cell in &cells {
            cell.build::<B>()?;
        }
        let protocol = if args.query_aware {
            Protocol::QueryAware
        } else {
            Protocol::QueryAgnostic
        };
        let path = hub::resolve(&args.model.model)?;
        let model = load::load::<B>(&path, &device)?;
        fs::create_dir_all(&args.out).map_err(io(&args.out))?;
        let results = args.out.join("results.jsonl");
        let mut outcomes = finished(&results)?;
        let done: BTreeSet<_> = outcomes.iter().map(Outcome::key).collect();

        // The samples, generated (or read) up front: cheap next to the model.
        let mut samples: Vec<(usize, Sample)> = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        match &args.ruler_jsonl {
            Some(file) => {
                let [task] = tasks[..] else {
                    return Err(Error::Unsupported(
                        "--ruler-jsonl takes the one task its samples belong to: --tasks NAME"
                            .into(),
                    ));
                };
                let count = |t: &str| model.tokenizer.encode(t, true).map_or(0, |ids| ids.len());
                let read = read_jsonl(file, task, &count)
                    .map_err(|e| Error::Unsupported(e.to_string()))?;
                // One group per file: results are keyed by its longest prompt.
                let read: Vec<Sample> = read.into_iter().take(args.samples).collect();
                let nominal = read.iter().map(|s| s.length).max().unwrap_or(0);
                samples.extend(read.into_iter().map(|s| (nominal, s)));
            }
            None => {
                let sources = ruler::sources(&tasks)?;
                let dir = args.out.join("samples");
                fs::create_dir_all(&dir).map_err(io(&dir))?;
                for &length in &args.lengths {
                    for &task in &tasks {
                        let set = (0..args.samples)
                            .map(|index| {
                                ruler::sample(
                                    task,
                                    length,
                                    args.seed,
                                    index,
                                    &sources,
                                    &model.tokenizer,
                                )
                            })
                            .collect::<Result<Vec<_>, _>>();
                        let set = match set {
                            Ok(set) => set,
                            Err(e @ RulerError::TargetTooSmall { .. }) => {
                                eprintln!("skipped {task} at {length} tokens: {e}");
                                skipped.push(format!("{task} at {length} tokens: {e}"));
                                continue;
                            }
                            Err(e) => return Err(Error::Unsupported(e.to_string())),
                        };
                        // RULER's layout, for its scripts and `--ruler-jsonl`.
                        let path = dir.join(format!("{task}-{length}.jsonl"));
                        let file = fs::File::create(&path).map_err(io(&path))?;
                        write_jsonl(&set, std::io::BufWriter::new(file)).map_err(io(&path))?;
                        samples.extend(set.into_iter().map(|s| (length, s)));
                    }
                }
            }
        }
        let mut progress = Progress {
            total: samples.len() * cells.len(),
            done: 0,
            fresh: 0,
            started: Instant::now(),
        };
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
            progress.done += cells.len() - todo.len();
            if todo.is_empty() {
                continue;
            }
            let prompt = split(&sample.input, &model.tokenizer)?;
            let prompt_tokens = prompt.context.len() + prompt.question.len();
            answer_cells(
                &model,
                &prompt,
                &todo,
                protocol,
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
                    outcomes.push(outcome);
                    progress.step(&format!(
                        "{} {}k #{} {}",
                        sample.task,
                        length / 1024,
                        sample.index,
                        budget_label(cell)
                    ));
                    Ok(())
                },
            )?;
        }
        eprintln!();
        let lengths: Vec<usize> = samples
            .iter()
            .map(|s| s.0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let scores = table(&outcomes);
        let mut summary = summary(&scores, &cells, &lengths, &args.budgets, protocol);
        for s in &skipped {
            summary.push_str(&format!("Skipped {s}\n"));
        }
        let summary_path = args.out.join("summary.md");
        fs::write(&summary_path, &summary).map_err(io(&summary_path))?;
        print!("{summary}");
        for &length in &lengths {
            let plot = plot(&scores, &cells, length, &args.budgets);
            let path = args.out.join(format!("score-vs-budget-{length}.svg"));
            fs::write(&path, plot.svg()).map_err(io(&path))?;
        }
        eprintln!("results in {}", args.out.display());
        Ok(())
    }
}

fn budget_label(cell: &Cell) -> String {
    match cell.budget {
        Some(b) => format!("{} @ {b}", cell.policy),
        None => cell.policy.clone(),
    }
}

/// The policies of `cells` in order, without repeats.
fn policies(cells: &[Cell]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in cells {
        if !out.contains(&c.policy.as_str()) {
            out.push(&c.policy);
        }
    }
    out
}

fn score_cell(x: Option<f64>) -> String {
    x.map_or("-".into(), |s| format!("{s:.1}"))
}

/// Per length: the task-averaged table (policy × budget, full-cache row first), then one table
/// per task.
fn summary(
    table: &Table,
    cells: &[Cell],
    lengths: &[usize],
    budgets: &[usize],
    protocol: Protocol,
) -> String {
    let mut s = String::new();
    let protocol = match protocol {
        Protocol::QueryAgnostic => "query-agnostic: the question is read after compression",
        Protocol::QueryAware => "query-aware: the question is compressed with the context",
    };
    // With the full cache alone, one score column.
    let budgets = if cells.len() == 1 { &[][..] } else { budgets };
    let head: Vec<String> = match budgets {
        [] => vec!["score".into()],
        _ => budgets.iter().map(|b| format!("budget {b}")).collect(),
    };
    let row = |s: &mut String, name: &str, score: &dyn Fn(Option<usize>) -> Option<f64>| {
        let cols: Vec<String> = if name == "full" {
            vec![score_cell(score(None)); budgets.len().max(1)]
        } else {
            budgets
                .iter()
                .map(|&b| score_cell(score(Some(b))))
                .collect()
        };
        s.push_str(&format!("| {name} | {} |\n", cols.join(" | ")));
    };
    for &length in lengths {
        let Some(tasks) = table.get(&length) else {
            continue;
        };
        let n = tasks
            .values()
            .flat_map(|c| c.get(&Cell::full()).map(|x| x.1))
            .max()
            .unwrap_or(0);
        s.push_str(&format!(
            "## {length} tokens: mean over {} tasks ({n} samples each; {protocol})\n\n",
            tasks.len()
        ));
        s.push_str(&format!(
            "| policy | {} |\n|---|{}\n",
            head.join(" | "),
            "---|".repeat(head.len())
        ));
        for p in policies(cells) {
            row(&mut s, p, &|b| {
                average(
                    table,
                    length,
                    &Cell {
                        policy: p.into(),
                        budget: b,
                    },
                )
            });
        }
        for (task, scores) in tasks {
            s.push_str(&format!("\n### {task} ({length} tokens)\n\n"));
            s.push_str(&format!(
                "| policy | {} |\n|---|{}\n",
                head.join(" | "),
                "---|".repeat(head.len())
            ));
            for p in policies(cells) {
                row(&mut s, p, &|b| {
                    scores
                        .get(&Cell {
                            policy: p.into(),
                            budget: b,
                        })
                        .map(|x| x.0)
                });
            }
        }
        s.push('\n');
    }
    s
}

/// Task-averaged score against budget, one line per policy; the full cache is flat.
fn plot(table: &Table, cells: &[Cell], length: usize, budgets: &[usize]) -> LinePlot {
    let series = policies(cells)
        .into_iter()
        .map(|p| Series {
            name: p.to_string(),
            points: budgets
                .iter()
                .map(|&b| {
                    let budget = (p != "full").then_some(b);
                    let cell = Cell {
                        policy: p.into(),
                        budget,
                    };
                    (b as f64, average(table, length, &cell).unwrap_or(f64::NAN))
                })
                .collect(),
        })
        .collect();
    LinePlot {
        title: format!("RULER at {length} tokens: score against KV budget"),
        x_label: "budget (tokens per KV head)".into(),
        y_label: "score (mean over tasks)".into(),
        series,
        x_at_data: true,
    }
}

pub fn run(args: EvalArgs) -> Result<(), Error> {
    let backend = args.model.backend()?;
    dispatch(backend, Eval(args))?
}
