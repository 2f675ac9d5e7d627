//! `momentkv perplexity`: the teacher-forced NLL of a long text while the cache holds a budget,
//! against the full cache's (see `momentkv_eval::perplexity` for the protocol), as a table, JSON
//! lines and an SVG plot.

use std::path::PathBuf;

use momentkv::backend::{dispatch, WithBackend};
use momentkv::cache::EvictAt;
use momentkv::kernels::KernelBackend;
use momentkv::Error;
use momentkv_eval::perplexity::{read_text, tokenize, CellNll, Perplexity};
use momentkv_eval::sweep::Column;

use crate::cache_args::PolicyGrid;
use crate::model_args::ModelArgs;

#[derive(clap::Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text: a file (`.gz` is gunzipped), or a known text fetched on first use:
    /// `pride-and-prejudice` (Jane Austen's novel, PG-19's genre) or `paul-graham-essays`.
    #[arg(long, default_value = momentkv::hub::PRIDE_AND_PREJUDICE.name)]
    pub text: String,
    /// Tokens of the text read and scored: its first N, as the model's tokenizer encodes it.
    #[arg(long, default_value_t = Perplexity::DEFAULT_CONTEXT)]
    pub context: usize,
    /// Tokens prefilled once, before the caches fork, and not scored but for the first prediction
    /// (default: the smallest budget, at least 16).
    #[arg(long)]
    pub prefix: Option<usize>,
    /// Tokens per forward pass while reading (1: StreamingLLM's token-by-token protocol).
    #[arg(long, default_value_t = 1)]
    pub stride: usize,
    #[command(flatten)]
    pub grid: PolicyGrid,
    /// When to evict while reading: `decode=K` evicts back to the budget whenever the cache holds
    /// K tokens more (1, at every token, by default).
    #[arg(long, default_value = "decode")]
    pub evict_during: String,
    /// Print one JSON object per cache (the full cache's first) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write an SVG plot of ΔNLL against the budget, one line per policy.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

impl PerplexityArgs {
    /// `K` of `--evict-during decode=K`: the only schedule a text read token by token has.
    fn evict_every(&self) -> Result<usize, Error> {
        let at: EvictAt = self.evict_during.parse()?;
        match at {
            EvictAt {
                chunk: None,
                decode: Some(k),
            } => Ok(k),
            _ => Err(Error::Unsupported(format!(
                "--evict-during {}: perplexity prefills the prefix in one pass and reads the rest \
                 as decoding, so the schedule is decode[=K]",
                self.evict_during
            ))),
        }
    }

    fn settings(&self, tokens: Vec<u32>) -> Result<Perplexity, Error> {
        let cells = self
            .grid
            .cells()
            .into_iter()
            .map(|(policy, budget)| Column::Budget(budget).cell(&policy))
            .collect();
        Ok(Perplexity {
            context: self.context,
            prefix: self.prefix,
            stride: self.stride,
            evict_every: self.evict_every()?,
            ..Perplexity::new(tokens, cells)
        })
    }
}

struct Run(PerplexityArgs);

impl WithBackend for Run {
    type Output = Result<(), Error>;

    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), Error> {
        let args = self.0;
        // A bad --evict-during fails before the model loads.
        args.evict_every()?;
        let text = read_text(&args.text)?;
        let model = args.model.load::<B>(&device)?;
        let settings = args.settings(tokenize(&model.tokenizer, &text)?)?;
        settings.check(&model)?;
        if !args.json {
            outln!(
                "{} tokens of {} scored after a {}-token prefix ({} per pass, --evict-during {})\n",
                settings.context - settings.prefix(),
                args.text,
                settings.prefix(),
                settings.stride,
                args.evict_during
            );
            outln!("| policy | budget | NLL | ΔNLL | PPL ratio | KV bytes |");
            outln!("|---|---|---|---|---|---|");
        }
        let report = settings.run(&model, |cell| {
            if args.json {
                outln!("{}", serde_json::to_string(cell).expect("serialisable"));
            } else {
                row(cell)?;
            }
            Ok(())
        })?;
        if let Some(path) = &args.plot {
            std::fs::write(path, report.plot().svg()).map_err(|e| Error::Io {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            noteln!("plot written to {}", path.display());
        }
        Ok(())
    }
}

/// One line of the table.
fn row(cell: &CellNll) -> Result<(), Error> {
    let budget = cell.budget.map_or_else(|| "-".into(), |b| b.to_string());
    outln!(
        "| {} | {budget} | {:.4} | {:+.4} | {:.4} | {} |",
        cell.policy,
        cell.nll,
        cell.delta_nll,
        cell.ppl_ratio,
        cell.kv_cache_bytes
    );
    Ok(())
}

pub fn run(args: PerplexityArgs) -> Result<(), Error> {
    let backend = args.model.backend()?;
    dispatch(backend, Run(args))?
}
