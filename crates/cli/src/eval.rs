//! `momentkv eval`: RULER's tasks over policies and budgets, resumable, with a Markdown summary
//! and score-vs-budget plots.

use std::path::PathBuf;
use std::time::Instant;

use momentkv::backend::{dispatch, WithBackend};
use momentkv::kernels::KernelBackend;
use momentkv::Error;
use momentkv_eval::experiment::{Event, RulerSweep};
use momentkv_eval::passkey::Protocol;
use momentkv_eval::ruler::Pipeline;
use momentkv_eval::sweep::{Cell, Column, Outcome, Ratio};
use momentkv_ruler::Task;

use crate::cache_args::split_policies;
use crate::model_args::ModelArgs;

/// `--quick`: a few tasks at 1k tokens that finish in minutes on a laptop CPU.
const QUICK_TASKS: &str = "niah_single_1,niah_single_2,niah_multikey_1,vt,fwe";
const QUICK_POLICIES: &str = "streaming;snapkv;momentkv";
const QUICK_BUDGETS: [usize; 2] = [128, 256];
/// The budgets when neither `--budgets` nor `--compression` is given.
const DEFAULT_BUDGETS: [usize; 4] = [64, 128, 256, 512];

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
    /// Budgets in tokens per KV head (64,128,256,512 when neither this nor --compression is
    /// given).
    #[arg(long, value_delimiter = ',')]
    pub budgets: Vec<usize>,
    /// Compression ratios, kvpress's `compression_ratio`: the fraction of the prefill removed,
    /// in [0, 1), keeping ⌊n·(1−r)⌋ of its n tokens per KV head.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub compression: Vec<f64>,
    /// `default`: RULER's prompt as written, the question from its last line; `kvpress`: kvpress's
    /// pipeline, the chat template around context and question, kvpress's greedy decoding.
    #[arg(long, default_value = "default")]
    pub protocol: String,
    /// Seed of the generated samples.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Compress the question with the context instead of reading it after compression.
    #[arg(long)]
    pub query_aware: bool,
    /// Evaluate samples prepared by RULER's own generator (JSONL with `input` and `outputs`)
    /// instead of generating them: a file, `--tasks` then naming the single task it belongs to,
    /// or a directory in RULER's layout, `<task>/validation.jsonl` for each task (`--tasks`
    /// choosing among them).
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
            self.compression.clear();
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

    /// The summary's columns: the budgets, then the compression ratios (checked).
    fn columns(&self) -> Result<Vec<Column>, Error> {
        let budgets = if self.budgets.is_empty() && self.compression.is_empty() {
            &DEFAULT_BUDGETS[..]
        } else {
            &self.budgets[..]
        };
        let mut columns: Vec<Column> = budgets.iter().map(|&b| Column::Budget(b)).collect();
        for &r in &self.compression {
            columns.push(Column::Compression(Ratio::new(r)?));
        }
        Ok(columns)
    }

    fn cells(&self, columns: &[Column]) -> Vec<Cell> {
        let mut cells = vec![Cell::full()];
        for p in split_policies(&self.policies) {
            if p == "full" {
                continue;
            }
            cells.extend(columns.iter().map(|c| c.cell(&p)));
        }
        cells
    }
}

/// `12/120 (10%), 3m20s left` on one rewritten stderr line.
struct Progress {
    /// Cells answered in this run, which time the rest.
    fresh: usize,
    /// When the sweep began answering.
    started: Instant,
}

impl Progress {
    /// Shows `outcome`, the `done`th of `total` (cells) finished.
    fn step(&mut self, outcome: &Outcome, done: usize, total: usize) {
        self.fresh += 1;
        let per = self.started.elapsed().as_secs_f64() / self.fresh as f64;
        let left = (per * (total - done) as f64) as u64;
        let (_, _, _, cell) = outcome.key();
        crate::out::note(format_args!(
            "\r\x1b[2K[{done}/{total} {:>3}%] {} left · {} {}k #{} {cell}",
            100 * done / total.max(1),
            format_args!("{}m{:02}s", left / 60, left % 60),
            outcome.task,
            outcome.length / 1024,
            outcome.index,
        ));
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
        let columns = args.columns()?;
        let sweep = RulerSweep {
            cells: args.cells(&columns),
            tasks,
            lengths: args.lengths,
            samples: args.samples,
            columns,
            seed: args.seed,
            pipeline: args.protocol.parse::<Pipeline>()?,
            protocol: if args.query_aware {
                Protocol::QueryAware
            } else {
                Protocol::QueryAgnostic
            },
            ruler_jsonl: args.ruler_jsonl,
            out: args.out,
        };
        sweep.check::<B>()?;
        let model = args.model.load::<B>(&device)?;
        let mut progress = Progress {
            fresh: 0,
            started: Instant::now(),
        };
        let report = sweep.run(&model, |event| match event {
            Event::TornLine { path, bytes, kept } => noteln!(
                "{}: its last line was torn ({bytes} bytes): moved to {}, answered again",
                path.display(),
                kept.display()
            ),
            Event::UnreadLine { path, line, error } => {
                noteln!("{}:{line}: skipped ({error})", path.display());
            }
            Event::SkippedTask {
                task,
                length,
                error,
            } => noteln!("skipped {task} at {length} tokens: {error}"),
            Event::UnknownTask { path } => {
                noteln!("skipped {}: not named after a RULER task", path.display());
            }
            Event::Answering { .. } => progress.started = Instant::now(),
            Event::Answered {
                outcome,
                done,
                total,
            } => progress.step(outcome, done, total),
        })?;
        noteln!();
        out!("{}", report.summary);
        noteln!("results in {}", sweep.out.display());
        Ok(())
    }
}

pub fn run(args: EvalArgs) -> Result<(), Error> {
    let backend = args.model.backend()?;
    dispatch(backend, Eval(args))?
}
