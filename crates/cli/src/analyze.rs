//! `momentkv analyze`: per-layer attention error of evicting policies against the full cache
//! (MomentKV's diagnostics), as tables, JSON and an SVG plot.

use std::path::PathBuf;

use momentkv::backend::{dispatch, WithBackend};
use momentkv::cache::analysis::{AnalyzingCache, LayerReport};
use momentkv::cache::{KvCache, Phase};
use momentkv::kernels::KernelBackend;
use momentkv::transformer::replay;
use momentkv::{hub, repeat_prompts, Error};
use momentkv_eval::haystack::Essays;
use momentkv_eval::plot::{LinePlot, Series};

use crate::cache_args::{CacheArgs, PolicyGrid};
use crate::model_args::ModelArgs;

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt, from a text file; without it, the first `--length` tokens of RULER's essays.
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// Prompt length in tokens when no `--prompt-file` is given.
    #[arg(long, default_value_t = 1500)]
    pub length: usize,
    /// The last N prompt tokens are read after the context is compressed and measured; the rest
    /// is the context.
    #[arg(long, default_value_t = 32)]
    pub queries: usize,
    #[command(flatten)]
    pub grid: PolicyGrid,
    /// When to evict while reading the context (as for `generate`).
    #[arg(long, default_value = "prefill")]
    pub evict_during: String,
    /// Print one JSON object per (policy, budget), with every layer, instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// Write an SVG plot of the relative error per layer, one line per (policy, budget).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

struct Analyze(AnalyzeArgs);

/// One (policy, budget)'s result.
struct Run {
    policy: String,
    budget: usize,
    layers: Vec<LayerReport>,
    kv_cache_bytes: usize,
}

impl Run {
    fn mean(&self, f: impl Fn(&LayerReport) -> f64) -> f64 {
        let xs: Vec<f64> = self
            .layers
            .iter()
            .map(f)
            .filter(|x| x.is_finite())
            .collect();
        xs.iter().sum::<f64>() / xs.len().max(1) as f64
    }
}

impl WithBackend for Analyze {
    type Output = Result<(), Error>;

    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), Error> {
        let args = self.0;
        let model = args.model.load::<B>(&device)?;
        let text = match &args.prompt_file {
            Some(p) => std::fs::read_to_string(p).map_err(|e| Error::Io {
                path: p.clone(),
                reason: e.to_string(),
            })?,
            None => Essays::load(&hub::ensure(&hub::PAUL_GRAHAM_ESSAYS)?)?
                .cut(&model.tokenizer, args.length)?,
        };
        let tokens = model.tokenizer.encode(&text, true)?;
        if args.queries == 0 || tokens.len() <= args.queries {
            return Err(Error::Unsupported(format!(
                "the prompt has {} tokens: it needs more than --queries {} (the measured tail) \
                 so that there is a context to compress",
                tokens.len(),
                args.queries
            )));
        }
        let (context, tail) = tokens.split_at(tokens.len() - args.queries);
        // The full cache is the reference every policy is measured against.
        let cells: Vec<CacheArgs> = args
            .grid
            .cells()
            .into_iter()
            .map(|(policy, budget)| CacheArgs {
                policy,
                budget: Some(budget),
                compression: None,
                evict_during: args.evict_during.clone(),
            })
            .collect();
        // Check every policy and budget before the first long run.
        for cell in &cells {
            cell.build(&model.transformer)?;
        }
        let layers = model.transformer.config().num_hidden_layers;
        let repeat = repeat_prompts(&model.tokenizer).ok();
        let mut runs = Vec::new();
        for cell in cells {
            let mut cache = AnalyzingCache::new(cell.build(&model.transformer)?, layers);
            let chunk = cache
                .cache()
                .prefill_chunk()
                .unwrap_or(context.len())
                .max(1);
            for piece in context.chunks(chunk) {
                model
                    .transformer
                    .forward(&[piece.to_vec()], Phase::Prefill, &mut cache)?;
            }
            replay(&model.transformer, &mut cache, context, repeat.as_ref())?;
            model
                .transformer
                .forward(&[tail.to_vec()], Phase::Decode, &mut cache)?;
            let run = Run {
                policy: cell.policy.clone(),
                budget: cell.budget.unwrap_or(0),
                layers: cache.report(),
                kv_cache_bytes: cache.bytes(),
            };
            if args.json {
                outln!("{}", json(&run, context.len(), tail.len()));
            } else {
                print_layers(&run)?;
            }
            runs.push(run);
        }
        if !args.json {
            print_summary(&runs, context.len(), tail.len())?;
        }
        if let Some(path) = &args.plot {
            let plot = LinePlot {
                title: format!(
                    "Attention error per layer ({} context tokens, {} measured)",
                    context.len(),
                    tail.len()
                ),
                x_label: "layer".into(),
                y_label: "relative L2 error of the attention output".into(),
                series: runs
                    .iter()
                    .map(|r| Series {
                        name: format!("{} @ {}", r.policy, r.budget),
                        points: r
                            .layers
                            .iter()
                            .map(|l| (l.layer as f64, l.rel_error))
                            .collect(),
                    })
                    .collect(),
                x_at_data: false,
            };
            std::fs::write(path, plot.svg()).map_err(|e| Error::Io {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            noteln!("plot written to {}", path.display());
        }
        Ok(())
    }
}

fn json(run: &Run, context: usize, queries: usize) -> serde_json::Value {
    let finite = |x: f64| x.is_finite().then_some(x);
    serde_json::json!({
        "policy": run.policy,
        "budget": run.budget,
        "context_tokens": context,
        "measured_tokens": queries,
        "kv_cache_bytes": run.kv_cache_bytes,
        "mean_rel_error": run.mean(|l| l.rel_error),
        "mean_evicted_mass": run.mean(|l| l.evicted_mass),
        "layers": run.layers.iter().map(|l| serde_json::json!({
            "layer": l.layer,
            "rel_error": l.rel_error,
            "evicted_mass": l.evicted_mass,
            "estimate_cosine": finite(l.estimate_cosine),
            "mismatch_cosine": finite(l.mismatch_cosine),
        })).collect::<Vec<_>>(),
    })
}

fn cell(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "-".into()
    }
}

fn print_layers(run: &Run) -> Result<(), Error> {
    outln!("\n{} @ budget {}\n", run.policy, run.budget);
    outln!("| layer | rel. error | evicted mass | cos(f_E, estimate) | cos(o_R, f_E) |");
    outln!("|---|---|---|---|---|");
    for l in &run.layers {
        outln!(
            "| {} | {} | {} | {} | {} |",
            l.layer,
            cell(l.rel_error),
            cell(l.evicted_mass),
            cell(l.estimate_cosine),
            cell(l.mismatch_cosine)
        );
    }
    Ok(())
}

fn print_summary(runs: &[Run], context: usize, queries: usize) -> Result<(), Error> {
    outln!(
        "\nMean over layers ({context} context tokens compressed, the next {queries} measured)\n"
    );
    outln!("| policy | budget | rel. error | evicted mass | cos(f_E, estimate) | cos(o_R, f_E) |");
    outln!("|---|---|---|---|---|---|");
    for r in runs {
        outln!(
            "| {} | {} | {} | {} | {} | {} |",
            r.policy,
            r.budget,
            cell(r.mean(|l| l.rel_error)),
            cell(r.mean(|l| l.evicted_mass)),
            cell(r.mean(|l| l.estimate_cosine)),
            cell(r.mean(|l| l.mismatch_cosine))
        );
    }
    Ok(())
}

pub fn run(args: AnalyzeArgs) -> Result<(), Error> {
    let backend = args.model.backend()?;
    dispatch(backend, Analyze(args))?
}
