use momentkv_kernels::KernelBackend;
use std::time::{Duration, Instant};

use momentkv_cache::KvCache;

use crate::{ModelError, Sampler, Transformer};

/// What to generate and when to stop.
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// Ids that end generation (not emitted).
    pub stop_tokens: Vec<u32>,
}

/// A finished generation and its timings.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated ids, without the prompt and without the stop token.
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    /// Prefill: the prompt's forward pass and the first token's sampling.
    pub prefill_time: Duration,
    /// Decode: every later forward pass, one token each.
    pub decode_time: Duration,
    pub decode_steps: usize,
    /// Whether a stop token ended the generation.
    pub stopped: bool,
    /// The cache's size at the end, in bytes.
    pub kv_cache_bytes: usize,
}

impl Generation {
    pub fn prefill_tok_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_time.as_secs_f64()
    }

    pub fn decode_tok_s(&self) -> f64 {
        if self.decode_steps == 0 {
            0.0
        } else {
            self.decode_steps as f64 / self.decode_time.as_secs_f64()
        }
    }
}

/// Generates up to `max_new_tokens` after `prompt` for one sequence, calling `on_token` with each
/// new id as soon as it is chosen.
pub fn generate<B: KernelBackend>(
    model: &Transformer<B>,
    cache: &mut impl KvCache<B>,
    prompt: &[u32],
    options: &GenerateOptions,
    sampler: &mut Sampler,
    mut on_token: impl FnMut(u32),
) -> Result<Generation, ModelError> {
    let limit = model.config().max_position_embeddings;
    let needed = cache.seen() + prompt.len() + options.max_new_tokens.saturating_sub(1);
    if needed > limit {
        return Err(ModelError::ContextOverflow {
            tokens: needed,
            limit,
        });
    }
    let start = Instant::now();
    let hidden = model.forward(&[prompt.to_vec()], cache)?;
    let mut next = sampler.sample(model.last_logits(hidden))[0];
    let prefill_time = start.elapsed();

    let mut tokens = Vec::new();
    let mut stopped = false;
    let start = Instant::now();
    let mut decode_steps = 0;
    while tokens.len() < options.max_new_tokens {
        if options.stop_tokens.contains(&next) {
            stopped = true;
            break;
        }
        tokens.push(next);
        on_token(next);
        if tokens.len() >= options.max_new_tokens {
            break;
        }
        let hidden = model.forward(&[vec![next]], cache)?;
        next = sampler.sample(model.last_logits(hidden))[0];
        decode_steps += 1;
    }
    Ok(Generation {
        tokens,
        prompt_tokens: prompt.len(),
        prefill_time,
        decode_time: start.elapsed(),
        decode_steps,
        stopped,
        kv_cache_bytes: cache.bytes(),
    })
}
