use std::time::{Duration, Instant};

use momentkv::backend::{dispatch, WithBackend};
use momentkv::kernels::KernelBackend;
use momentkv::transformer::{generate, GenerateOptions, Generation, Sampler};
use momentkv::{hub, load, Error, Model};

use crate::cache_args::CacheArgs;
use crate::kernel_bench::{self, KernelShape};
use crate::model_args::{adapter_json, ModelArgs};

/// Text the benchmark prompt is cut from, repeated to the requested length.
const FILLER: &str = "The library kept its records in long rows of cabinets, and every evening the \
keeper walked the aisles to check that nothing had been moved. Some drawers held letters, some held \
maps, and one held nothing but the keys to the others. Visitors asked why the building needed so \
many locks; the keeper said that memory is only useful when it can be found again. ";

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Sweep these budgets (tokens per KV head) with `--policy`, after a full-cache run, and print
    /// one table: KV bytes and decode speed against the full cache, measured in one run.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["budget", "compression"])]
    pub budgets: Vec<usize>,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 512)]
    pub prompt_len: usize,
    /// Text the prompt is cut from (repeated as needed); a built-in paragraph by default.
    #[arg(long)]
    pub prompt_file: Option<std::path::PathBuf>,
    /// Tokens to generate (greedy, stop tokens ignored).
    #[arg(long, default_value_t = 64)]
    pub gen: usize,
    /// Untimed warm-up generations before the measured ones.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Print JSON (one object per measured run).
    #[arg(long)]
    pub json: bool,
    /// Benchmark the decode-attention kernel on synthetic tensors instead of a model: unfused
    /// tensor ops vs the fused kernel, without and with the moment correction, at `--budgets`
    /// (128..4096 by default).
    #[arg(long, conflicts_with_all = ["json", "prompt_file"])]
    pub kernel: bool,
    #[command(flatten)]
    pub kernel_shape: KernelShape,
}

/// One measured generation.
struct Run {
    label: String,
    out: Generation,
    evicted: usize,
}

impl Run {
    /// Mean decode step time over the first and the last quarter of the steps: equal when decode
    /// cost does not grow with the context.
    fn quarter_ms(&self) -> (f64, f64) {
        let steps = &self.out.decode_step_times;
        let q = (steps.len() / 4).max(1).min(steps.len());
        let mean = |s: &[Duration]| {
            s.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / s.len().max(1) as f64
        };
        (mean(&steps[..q]), mean(&steps[steps.len() - q..]))
    }

    fn json(&self) -> serde_json::Value {
        let (first, last) = self.quarter_ms();
        serde_json::json!({
            "cache": self.label,
            "prompt_tokens": self.out.prompt_tokens,
            "generated_tokens": self.out.tokens.len(),
            "prefill_tok_s": self.out.prefill_tok_s(),
            "decode_tok_s": self.out.decode_tok_s(),
            "decode_ms_first_quarter": first,
            "decode_ms_last_quarter": last,
            "kv_cache_bytes": self.out.kv_cache_bytes,
            "evicted_tokens": self.evicted,
        })
    }
}

struct Bench(BenchArgs);

impl Bench {
    fn prompt<B: KernelBackend>(&self, model: &Model<B>) -> Result<Vec<u32>, Error> {
        let text = match &self.0.prompt_file {
            Some(path) => std::fs::read_to_string(path).map_err(|e| Error::Io {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            None => FILLER.to_string(),
        };
        let filler = model.tokenizer.encode(&text, false)?;
        if filler.is_empty() {
            return Err(Error::Unsupported(
                "the benchmark prompt text is empty".into(),
            ));
        }
        Ok(filler
            .iter()
            .copied()
            .cycle()
            .take(self.0.prompt_len)
            .collect())
    }

    fn measure<B: KernelBackend>(
        &self,
        model: &Model<B>,
        prompt: &[u32],
        cache: &CacheArgs,
        gen: usize,
    ) -> Result<Run, Error> {
        let mut kv = cache.build(&model.transformer)?;
        let options = GenerateOptions {
            stop_tokens: Vec::new(),
            ..model.options(gen)
        };
        let out = generate(
            &model.transformer,
            &mut kv,
            prompt,
            &options,
            &mut Sampler::greedy(),
            |_| {},
        )?;
        let label = match kv.policy().evicts() {
            true => format!("{} @ {}", kv.policy().spec, kv.budget()),
            false => "full".into(),
        };
        Ok(Run {
            label,
            out,
            evicted: kv.evicted(),
        })
    }
}

impl WithBackend for Bench {
    type Output = Result<(), Error>;

    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), Error> {
        let args = &self.0;
        if args.kernel {
            return kernel_bench::run::<B>(&args.kernel_shape, &args.budgets, &device);
        }
        // A known model is fetched before the clock starts.
        let path = hub::resolve(&args.model.model)?;
        let started = Instant::now();
        let model = load::load_with::<B>(&path, &args.model.load_options(), &device)?;
        let load_s = started.elapsed().as_secs_f64();
        let prompt = self.prompt(&model)?;
        let mut caches = Vec::new();
        if args.budgets.is_empty() {
            caches.push(args.cache.clone());
        } else {
            caches.push(CacheArgs {
                policy: "full".into(),
                budget: None,
                compression: None,
                ..args.cache.clone()
            });
            caches.extend(args.budgets.iter().map(|&n| CacheArgs {
                budget: Some(n),
                ..args.cache.clone()
            }));
        }
        for _ in 0..args.warmup {
            self.measure(&model, &prompt, &caches[0], args.gen.min(4))?;
        }
        let mut runs = Vec::new();
        for cache in &caches {
            runs.push(self.measure(&model, &prompt, cache, args.gen)?);
        }
        if args.json {
            for run in &runs {
                let mut v = run.json();
                v["model"] = path.display().to_string().into();
                v["adapter"] = adapter_json(model.adapter.as_ref());
                v["backend"] = B::name(&device).into();
                v["kernels"] = B::kernel_engine().into();
                v["load_s"] = load_s.into();
                v["threads"] = std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .into();
                outln!("{v}");
            }
            return Ok(());
        }
        outln!("model        {}", path.display());
        if let Some(adapter) = &model.adapter {
            let how = if adapter.merged {
                "merged"
            } else {
                "side path"
            };
            outln!("adapter      {} ({how})", adapter.dir.display());
        }
        outln!(
            "backend      {} (kernels: {})",
            B::name(&device),
            B::kernel_engine()
        );
        outln!(
            "prompt       {} tokens, {} generated, eviction at {}",
            prompt.len(),
            args.gen,
            args.cache.evict_during
        );
        outln!("load         {load_s:.2} s");
        let base = &runs[0];
        outln!(
            "\n{:<34} {:>12} {:>7} {:>12} {:>12} {:>8} {:>14}",
            "cache",
            "KV bytes",
            "vs 1st",
            "prefill t/s",
            "decode t/s",
            "vs 1st",
            "ms/tok 1st→4th"
        );
        for run in &runs {
            let (first, last) = run.quarter_ms();
            outln!(
                "{:<34} {:>12} {:>7.3} {:>12.1} {:>12.1} {:>8.2} {:>6.1} → {:>5.1}",
                run.label,
                run.out.kv_cache_bytes,
                run.out.kv_cache_bytes as f64 / base.out.kv_cache_bytes as f64,
                run.out.prefill_tok_s(),
                run.out.decode_tok_s(),
                run.out.decode_tok_s() / base.out.decode_tok_s(),
                first,
                last
            );
        }
        Ok(())
    }
}

pub fn run(args: BenchArgs) -> Result<(), Error> {
    let backend = args.model.backend()?;
    dispatch(backend, Bench(args))?
}
