use momentkv::backend::{dispatch, WithBackend};
use momentkv::kernels::KernelBackend;
use momentkv::tokenizer::ChatMessage;
use momentkv::transformer::{generate, Sampler};
use momentkv::Error;

use crate::cache_args::{nothing_evicted_note, CacheArgs};
use crate::model_args::{adapter_json, ModelArgs};

#[derive(clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// The prompt text.
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt in the model's chat template as a user turn.
    #[arg(long)]
    pub chat: bool,
    /// Upper bound on generated tokens.
    #[arg(long, default_value_t = 128)]
    pub max_new_tokens: usize,
    /// Sampling temperature, finite and at least 0; 0 is greedy.
    #[arg(long, default_value_t = 0.0, value_parser = temperature, allow_negative_numbers = true)]
    pub temperature: f64,
    /// Nucleus sampling: keep the most likely tokens up to this probability mass.
    #[arg(long, default_value_t = 1.0, value_parser = top_p)]
    pub top_p: f64,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

fn temperature(s: &str) -> Result<f64, String> {
    let t: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if t.is_finite() && t >= 0.0 {
        Ok(t)
    } else {
        Err(format!(
            "{t} is not a temperature: give a finite number ≥ 0 (0 is greedy)"
        ))
    }
}

fn top_p(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if p > 0.0 && p <= 1.0 {
        Ok(p)
    } else {
        Err(format!("{p} is outside (0, 1]"))
    }
}

struct Generate(GenerateArgs);

impl WithBackend for Generate {
    type Output = Result<(), Error>;

    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), Error> {
        let args = self.0;
        let model = args.model.load::<B>(&device)?;
        let prompt = if args.chat {
            let text = model
                .tokenizer
                .apply_chat_template(&[ChatMessage::new("user", &args.prompt)], true)?;
            model.tokenizer.encode(&text, false)?
        } else {
            model.tokenizer.encode(&args.prompt, true)?
        };
        let options = model.options(args.max_new_tokens);
        let mut sampler = Sampler::new(args.temperature, args.top_p, args.seed);
        let mut cache = args.cache.build(&model.transformer)?;
        let mut stream = model.tokenizer.stream();
        let mut stream_error: Option<Error> = None;
        let out = generate(
            &model.transformer,
            &mut cache,
            &prompt,
            &options,
            &mut sampler,
            |id| {
                if args.json || stream_error.is_some() {
                    return;
                }
                let shown = match stream.step(id) {
                    Ok(Some(text)) => crate::out::write(format_args!("{text}")),
                    Ok(None) => Ok(()),
                    Err(e) => Err(e.into()),
                };
                stream_error = shown.err();
            },
        )?;
        if let Some(e) = stream_error {
            return Err(e);
        }
        if args.json {
            let report = serde_json::json!({
                "model": model.source.display().to_string(),
                "adapter": adapter_json(model.adapter.as_ref()),
                "backend": B::name(&device),
                "prompt_tokens": out.prompt_tokens,
                "tokens": out.tokens,
                "text": model.tokenizer.decode(&out.tokens)?,
                "prefill_tok_s": out.prefill_tok_s(),
                "decode_tok_s": out.decode_tok_s(),
                "kv_cache_bytes": out.kv_cache_bytes,
                "policy": cache.policy().spec,
                "budget": cache.budget().to_string(),
                "evicted_tokens": cache.evicted(),
                "stopped": out.stopped,
            });
            outln!("{report}");
        } else {
            outln!();
            if let Some(note) = nothing_evicted_note(&cache) {
                noteln!("{note}");
            }
            noteln!(
                "[{} prompt tokens, {} generated; prefill {:.1} tok/s, decode {:.1} tok/s, KV cache {} bytes ({}, {} evicted), {}]",
                out.prompt_tokens,
                out.tokens.len(),
                out.prefill_tok_s(),
                out.decode_tok_s(),
                out.kv_cache_bytes,
                cache.policy().spec,
                cache.evicted(),
                B::name(&device)
            );
        }
        Ok(())
    }
}

pub fn run(args: GenerateArgs) -> Result<(), Error> {
    let backend = args.model.backend()?;
    dispatch(backend, Generate(args))?
}
