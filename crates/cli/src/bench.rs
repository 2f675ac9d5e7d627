use std::time::Instant;

use momentkv::backend::{dispatch, WithBackend};
use momentkv::cache::FullCache;
use momentkv::kernels::KernelBackend;
use momentkv::transformer::{generate, GenerateOptions, Sampler};
use momentkv::{hub, load, Error};

use crate::ModelArgs;

/// Text the benchmark prompt is cut from, repeated to the requested length.
const FILLER: &str = "The library kept its records in long rows of cabinets, and every evening the \
keeper walked the aisles to check that nothing had been moved. Some drawers held letters, some held \
maps, and one held nothing but the keys to the others. Visitors asked why the building needed so \
many locks; the keeper said that memory is only useful when it can be found again. ";

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 512)]
    pub prompt_len: usize,
    /// Text the prompt is cut from (repeated as needed); a built-in paragraph by default.
    #[arg(long)]
    pub prompt_file: Option<std::path::PathBuf>,
    /// Tokens to generate (greedy, stop tokens ignored).
    #[arg(long, default_value_t = 64)]
    pub gen: usize,
    /// Untimed warm-up generations before the measured one.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

struct Bench(BenchArgs);

impl WithBackend for Bench {
    type Output = Result<(), Error>;

    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), Error> {
        let args = self.0;
        let path = hub::resolve(&args.model.model)?;
        let started = Instant::now();
        let model = load::load::<B>(&path, &device)?;
        let load_s = started.elapsed().as_secs_f64();
        let text = match &args.prompt_file {
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
        let prompt: Vec<u32> = filler
            .iter()
            .copied()
            .cycle()
            .take(args.prompt_len)
            .collect();
        let layers = model.transformer.config().num_hidden_layers;
        let options = GenerateOptions {
            max_new_tokens: args.gen,
            stop_tokens: Vec::new(),
        };
        for _ in 0..args.warmup {
            let warm = GenerateOptions {
                max_new_tokens: args.gen.min(4),
                stop_tokens: Vec::new(),
            };
            generate(
                &model.transformer,
                &mut FullCache::new(layers),
                &prompt,
                &warm,
                &mut Sampler::greedy(),
                |_| {},
            )?;
        }
        let out = generate(
            &model.transformer,
            &mut FullCache::new(layers),
            &prompt,
            &options,
            &mut Sampler::greedy(),
            |_| {},
        )?;
        let report = serde_json::json!({
            "model": path.display().to_string(),
            "backend": B::name(&device),
            "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "prompt_tokens": out.prompt_tokens,
            "generated_tokens": out.tokens.len(),
            "load_s": load_s,
            "prefill_tok_s": out.prefill_tok_s(),
            "decode_tok_s": out.decode_tok_s(),
            "peak_kv_cache_bytes": out.kv_cache_bytes,
            "kernels": B::kernel_engine(),
        });
        if args.json {
            println!("{report}");
        } else {
            println!("model        {}", path.display());
            println!(
                "backend      {} (kernels: {})",
                B::name(&device),
                B::kernel_engine()
            );
            println!(
                "prompt       {} tokens, {} generated",
                out.prompt_tokens,
                out.tokens.len()
            );
            println!("load         {load_s:.2} s");
            println!("prefill      {:.1} tok/s", out.prefill_tok_s());
            println!("decode       {:.1} tok/s", out.decode_tok_s());
            println!("peak KV      {} bytes", out.kv_cache_bytes);
        }
        Ok(())
    }
}

pub fn run(args: BenchArgs) -> Result<(), Error> {
    let backend = args.model.backend()?;
    dispatch(backend, Bench(args))?
}
