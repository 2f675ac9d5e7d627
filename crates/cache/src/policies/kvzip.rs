//! KVzip (Kim et al., 2025), as kvpress 0.5.5's `KVzipPress` computes it.
//!
//! After the prompt, the model is asked to repeat it: "Repeat the previous context exactly.",
//! the chat template's tail (end of turn, assistant opener), then the prompt's own ids, in chunks
//! of `chunk` tokens (later chunks are introduced by "Repeat the part of the previous context
//! exactly, starting with" and the previous chunk's last 8 ids). Each replay pass takes the
//! positions after the prompt and attends over the whole uncompressed cache; its tokens are not
//! kept. A prompt token's score is the largest attention any replay query of its KV head's group
//! pays it, the softmax taken over the sinks, the token's own chunk and the replay's own keys
//! (causally). Budgets are shared across heads with no per-head floor and, unless `layerwise`,
//! across layers: one bottom-`⌊N·r⌋` over all `N` entries of the model. Template-head tokens past
//! the sinks are never replayed and score 0, so they go first, as in kvpress.

use std::ops::Range;

use burn::tensor::{activation::softmax, backend::Backend, Bool, Tensor, TensorData};

use super::Entry;
use crate::params::{Args, Param, MAX_POSITIONS};
use crate::scorer::{host, Observation, Scorer};
use crate::{Allocation, CacheError, LayerBudget, Policy};

pub static ENTRY: Entry = Entry {
    name: "kvzip",
    aliases: &[],
    summary: "KVzip: the attention a replay of the prompt pays each token, one budget over all \
              heads and layers",
    params: &[
        Param::count(
            "chunk",
            2048,
            1,
            MAX_POSITIONS,
            "prompt tokens reconstructed per replay pass",
        ),
        Param::flag(
            "layerwise",
            false,
            "the same budget in every layer (else one budget over all layers)",
        ),
        Param::count(
            "sinks",
            4,
            0,
            MAX_POSITIONS,
            "first tokens never evicted, and in every replay's softmax",
        ),
    ],
    plain_scorer: false,
    kvpress: &[("kvzip", "kvzip:chunk=32")],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    let chunk = args.count("chunk")?;
    let layerwise = args.flag("layerwise")?;
    let sinks = args.count("sinks")?;
    Ok(Policy {
        allocation: Allocation::Adaptive { alpha: 0.0 },
        layer_budget: if layerwise {
            LayerBudget::Uniform
        } else {
            LayerBudget::Joint
        },
        sinks,
        ..Policy::scored(Kvzip { chunk, sinks })
    })
}

/// The first replay's instruction.
pub const FIRST: &str = "\n\nRepeat the previous context exactly.";
/// Later replays' instruction, followed by the previous chunk's last [`OVERLAP`] ids.
pub const LATER: &str = "\n\nRepeat the part of the previous context exactly, starting with";
/// Ids of the previous chunk that introduce a later replay.
pub const OVERLAP: usize = 8;

/// The replay prompts for one model, tokenized once (kvpress: `KVzipPress.__call__`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatPrompts {
    /// Tokens of the chat template's head before the user's content (0 without a template):
    /// never replayed, so they score 0 (the first `sinks` of them are protected).
    pub prefix: usize,
    /// [`FIRST`]'s ids.
    pub first: Vec<u32>,
    /// [`LATER`]'s ids.
    pub later: Vec<u32>,
    /// The template's tail after the user's content (end of turn and assistant opener); `"\n"`'s
    /// ids without a template.
    pub suffix: Vec<u32>,
}

/// The replay passes over the prompt `context` in chunks of `chunk`: for each, the prompt
/// positions it reconstructs and its ids (kvpress: `KVzipPress.prepare`). The part after the
/// template head is cut into chunks; it is one chunk, possibly empty, when no longer than `chunk`.
pub fn replays(
    context: &[u32],
    prompts: &RepeatPrompts,
    chunk: usize,
) -> Vec<(Range<usize>, Vec<u32>)> {
    let head = prompts.prefix.min(context.len());
    let body = &context[head..];
    let pieces: Vec<&[u32]> = if body.len() > chunk {
        body.chunks(chunk).collect()
    } else {
        vec![body]
    };
    let mut start = head;
    let mut previous: &[u32] = &[];
    pieces
        .into_iter()
        .map(|piece| {
            let mut ids = if start == head {
                prompts.first.clone()
            } else {
                let tail = &previous[previous.len().saturating_sub(OVERLAP)..];
                [&prompts.later[..], tail].concat()
            };
            ids.extend_from_slice(&prompts.suffix);
            ids.extend_from_slice(piece);
            let span = start..start + piece.len();
            start = span.end;
            previous = piece;
            (span, ids)
        })
        .collect()
}

/// KVzip's score (see the module docs).
#[derive(Debug, Clone)]
pub struct Kvzip {
    /// Prompt tokens per replay pass.
    pub chunk: usize,
    /// Leading positions in every replay's softmax (and protected by the policy).
    pub sinks: usize,
}

impl<B: Backend> Scorer<B> for Kvzip {
    fn replay_chunk(&self) -> Option<usize> {
        Some(self.chunk)
    }

    /// During a replay pass of `s` tokens reconstructing positions `span` (`n` of them), with
    /// `σ = min(sinks, span.start)` and the keys `K = [k_{0..σ} | k_span | the pass's own]`:
    /// `w = softmax(q Kᵀ/√d)` (causal over the pass's own keys), and the score of `j ∈ span` is
    /// `max` over the pass's queries and the query group of `w[·, j]`; 0 elsewhere.
    ///
    /// `obs.queries`: the pass's `[batch, heads, s, head_dim]`; `obs.keys`: `[batch, kv_heads,
    /// t, head_dim]`, the pass's own keys last.
    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        let span = obs.replay.clone().expect("KVzip scores replay passes only");
        let q = obs.queries("KVzip");
        let [b, heads, s, d] = q.dims();
        let [_, kv, t] = obs.dims();
        let (g, n, sink) = (heads / kv, span.len(), self.sinks.min(span.start));
        let mut out = vec![0f32; b * kv * t];
        if n == 0 {
            return out;
        }
        let mut context = Vec::with_capacity(2);
        if sink > 0 {
            context.push(obs.keys.clone().narrow(2, 0, sink));
        }
        context.push(obs.keys.clone().narrow(2, span.start, n));
        let own = obs.keys.clone().narrow(2, t - s, s);
        let a = q
            .mul_scalar(1.0 / (d as f64).sqrt())
            .reshape([b, kv, g * s, d]);
        let device = a.device();
        // Row r of a head's g·s rows is query r mod s: it may not see the pass's later keys.
        let later: Vec<bool> = (0..g * s)
            .flat_map(|row| (0..s).map(move |j| j > row % s))
            .collect();
        let later = TensorData::new(later, [1, 1, g * s, s]);
        let later = Tensor::<B, 4, Bool>::from_data(later, &device)
            .repeat_dim(0, b)
            .repeat_dim(1, kv);
        let logits = Tensor::cat(
            vec![
                a.clone().matmul(Tensor::cat(context, 2).swap_dims(2, 3)),
                a.matmul(own.swap_dims(2, 3)).mask_fill(later, f32::NEG_INFINITY),
            ],
            3,
        );
        let w = softmax(logits, 3);
        let best = host(w.narrow(3, sink, n).max_dim(2).reshape([b * kv, n]));
        for row in 0..b * kv {
            out[row * t + span.start..row * t + span.end]
                .copy_from_slice(&best[row * n..(row + 1) * n]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompts() -> RepeatPrompts {
        RepeatPrompts {
            prefix: 2,
            first: vec![100],
            later: vec![200, 201],
            suffix: vec![300],
        }
    }

    #[test]
    fn replays_cut_the_prompt_after_its_template_head_into_chunks() {
        let context: Vec<u32> = (0..12).collect();
        let r = replays(&context, &prompts(), 4);
        let spans: Vec<_> = r.iter().map(|(s, _)| s.clone()).collect();
        assert_eq!(spans, vec![2..6, 6..10, 10..12]);
        assert_eq!(r[0].1, vec![100, 300, 2, 3, 4, 5]);
        assert_eq!(r[1].1, vec![200, 201, 2, 3, 4, 5, 300, 6, 7, 8, 9]);
        assert_eq!(r[2].1, vec![200, 201, 6, 7, 8, 9, 300, 10, 11]);
    }

    #[test]
    fn a_prompt_no_longer_than_its_head_replays_one_empty_chunk() {
        let r = replays(&[7, 8], &prompts(), 4);
        assert_eq!(r, vec![(2..2, vec![100, 300])]);
        let r = replays(&[7, 8, 9], &prompts(), 4);
        assert_eq!(r, vec![(2..3, vec![100, 300, 9])]);
    }
}
