use momentkv_kernels::KernelBackend;
use std::time::{Duration, Instant};

use momentkv_cache::policies::kvzip::{self, RepeatPrompts};
use momentkv_cache::{KvCache, Phase};

use crate::{ModelError, Sampler, Transformer};

/// What to generate and when to stop.
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// Ids that end generation (not emitted).
    pub stop_tokens: Vec<u32>,
    /// The model's replay prompts, for a cache that scores the prompt from replays of it
    /// (KVzip); `None` refuses such a cache.
    pub repeat: Option<RepeatPrompts>,
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
    /// Each decode step's time, in order.
    pub decode_step_times: Vec<Duration>,
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
/// new id as soon as it is chosen. The prompt is prefilled under the cache's policy (in chunks
/// when the cache asks for them), so it may be compressed before generation starts.
pub fn generate<B: KernelBackend>(
    model: &Transformer<B>,
    cache: &mut impl KvCache<B>,
    prompt: &[u32],
    options: &GenerateOptions,
    sampler: &mut Sampler,
    on_token: impl FnMut(u32),
) -> Result<Generation, ModelError> {
    answer(model, cache, prompt, &[], options, sampler, on_token)
}

/// kvpress's query-agnostic protocol: prefills `context` under the cache's policy (which may
/// compress it), then reads `question` as a continuation, not compressed with the context,
/// then generates. With an empty question this is [`generate`]; with an empty context the cache
/// already holds it (a fork of a recorded prefill) and only the question is read.
pub fn answer<B: KernelBackend>(
    model: &Transformer<B>,
    cache: &mut impl KvCache<B>,
    context: &[u32],
    question: &[u32],
    options: &GenerateOptions,
    sampler: &mut Sampler,
    mut on_token: impl FnMut(u32),
) -> Result<Generation, ModelError> {
    let limit = model.config().max_position_embeddings;
    let prompt_tokens = context.len() + question.len();
    let needed = cache.seen() + prompt_tokens + options.max_new_tokens.saturating_sub(1);
    if needed > limit {
        return Err(ModelError::ContextOverflow {
            tokens: needed,
            limit,
        });
    }
    if context.is_empty() && (question.is_empty() || cache.seen() == 0) {
        return Err(ModelError::EmptyPrompt);
    }
    let start = Instant::now();
    let offset = cache.seen();
    // Chunked prefill when the cache asks for it: each chunk attends over what the cache kept.
    let chunk = cache.prefill_chunk().unwrap_or(context.len()).max(1);
    let mut hidden = None;
    for piece in context.chunks(chunk) {
        hidden = Some(model.forward(&[piece.to_vec()], Phase::Prefill, cache)?);
    }
    if !context.is_empty() {
        replay_at(model, cache, context, offset, options.repeat.as_ref())?;
    }
    if !question.is_empty() {
        hidden = Some(model.forward(&[question.to_vec()], Phase::Decode, cache)?);
    }
    let hidden = hidden.expect("a non-empty context or question passed");
    let mut next = sampler.sample(model.last_logits(hidden))[0];
    let prefill_time = start.elapsed();

    let mut tokens = Vec::new();
    let mut stopped = false;
    let start = Instant::now();
    let mut decode_steps = 0;
    let mut decode_step_times = Vec::new();
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
        let step = Instant::now();
        let hidden = model.forward(&[vec![next]], Phase::Decode, cache)?;
        next = sampler.sample(model.last_logits(hidden))[0];
        decode_step_times.push(step.elapsed());
        decode_steps += 1;
    }
    Ok(Generation {
        tokens,
        prompt_tokens,
        prefill_time,
        decode_time: start.elapsed(),
        decode_steps,
        decode_step_times,
        stopped,
        kv_cache_bytes: cache.bytes(),
    })
}

/// KVzip's replay passes: when `cache` scores its prompt from replays of it
/// ([`KvCache::replay_chunk`]), runs each replay of `context` (the prompt it holds, from position
/// 0) through the model ([`Phase::Replay`]) and lets the cache evict ([`KvCache::end_replay`]);
/// otherwise does nothing. Call it after prefilling `context`, before reading anything else
/// ([`answer`] does, for the context it prefills).
pub fn replay<B: KernelBackend>(
    model: &Transformer<B>,
    cache: &mut impl KvCache<B>,
    context: &[u32],
    prompts: Option<&RepeatPrompts>,
) -> Result<(), ModelError> {
    replay_at(model, cache, context, 0, prompts)
}

/// [`replay`] of a `context` held from position `offset`.
fn replay_at<B: KernelBackend>(
    model: &Transformer<B>,
    cache: &mut impl KvCache<B>,
    context: &[u32],
    offset: usize,
    prompts: Option<&RepeatPrompts>,
) -> Result<(), ModelError> {
    let Some(chunk) = cache.replay_chunk() else {
        return Ok(());
    };
    let prompts = prompts.ok_or(ModelError::NoRepeatPrompts)?;
    for (span, ids) in kvzip::replays(context, prompts, chunk) {
        let phase = Phase::Replay {
            from: offset + span.start,
            to: offset + span.end,
        };
        model.forward(&[ids], phase, cache)?;
    }
    Ok(cache.end_replay()?)
}
