use std::ops::Range;

use burn::tensor::Tensor;
use momentkv_kernels::KernelBackend;

use crate::attention::{attention_with_mass, masked_attention};
use crate::moment_attention::moment_attention;
use crate::pass::Pass;
use crate::scorer::{QueryNeed, QUERY_BUFFER};
use crate::select::{select, Rules, Selection};
use crate::store::LayerStore;
use crate::{
    Allocation, Budget, CacheError, EvictAt, Geometry, KvCache, LayerBudget, ModelContext,
    Observation, Phase, Policy, PrefillRecord,
};

/// A KV cache that holds at most a budget of tokens per KV head, evicting by a [`Policy`].
///
/// Kept tokens keep their original RoPE positions (their keys are stored post-RoPE). Each layer
/// evicts inside its own attention call, after the new tokens have attended over everything held,
/// so scores see exact attention (kvpress's protocol). When evicting ([`EvictAt`]): once after
/// the prompt, after each prompt chunk, and/or at every generated token once over budget.
///
/// What it keeps per layer is what the policy declares ([`crate::Policy::inputs`]) beside the
/// keys and values, plus what its scorer derived from the model when the cache was built
/// ([`crate::Scorer::layer_state`]); [`KvCache::bytes`] counts all of it.
///
/// A policy that scores the prompt from replays of it (KVzip, [`crate::Scorer::replay_chunk`])
/// evicts nothing while prefilling; it scores during the [`Phase::Replay`] passes the caller runs
/// next ([`KvCache::replay_chunk`]) and evicts once, at [`KvCache::end_replay`], from one pool of
/// every layer's heads ([`LayerBudget::Joint`]) or one per layer.
///
/// Batches: each sequence (batch row) keeps its own tokens; all rows advance in lockstep.
pub struct EvictingCache<B: KernelBackend> {
    geometry: Geometry,
    policy: Policy<B>,
    budget: Budget,
    at: EvictAt,
    layers: Vec<Option<LayerStore<B>>>,
    /// Per layer, what the scorer derived from the model ([`crate::Scorer::layer_state`]).
    states: Vec<Option<Tensor<B, 4>>>,
    pass: Pass,
    phase: Phase,
    evicted: usize,
    /// The prompt positions the replay pass in flight reconstructs.
    replay: Option<Range<usize>>,
    /// Per layer, the replay passes' scores `[batch, kv_heads, seen]` so far (empty: none yet).
    replay_scores: Vec<Vec<f32>>,
    /// A replaying policy has its prompt and has not yet evicted from it.
    awaiting_replay: bool,
}

impl<B: KernelBackend> EvictingCache<B> {
    /// A cache for the model `model` describes (a bare [`Geometry`] converts into one without
    /// weights); errors name a geometry that does not add up, or what the policy needs of the
    /// model that the context lacks.
    pub fn new(
        model: impl Into<ModelContext<B>>,
        policy: Policy<B>,
        budget: Budget,
        at: EvictAt,
    ) -> Result<Self, CacheError> {
        let model = model.into();
        let g = &model.geometry;
        if g.kv_heads == 0
            || !g.heads.is_multiple_of(g.kv_heads)
            || g.inv_freq.len() * 2 != g.head_dim
        {
            return Err(CacheError::Shape {
                layer: 0,
                what: "geometry (heads, kv_heads, head_dim)",
                found: vec![g.heads, g.kv_heads, g.inv_freq.len() * 2],
                expected: vec![g.heads, g.kv_heads, g.head_dim],
            });
        }
        let shared = policy
            .scorer
            .as_ref()
            .is_some_and(|s| s.shared_across_heads());
        if shared && matches!(policy.allocation, Allocation::Adaptive { .. }) {
            return Err(CacheError::BadParameter {
                policy: policy.spec.clone(),
                key: "scorer".into(),
                value: policy.spec.clone(),
                reason: "this scorer ranks tokens the same in every head, so adaptive per-head \
                         budgets have nothing to adapt to"
                    .into(),
            });
        }
        if policy.replays() && (at.chunk.is_some() || at.decode.is_some()) {
            return Err(CacheError::BadSchedule(format!(
                "'{}' scores the prompt from replays of it and evicts once, after them: evict at \
                 prefill only (schedule '{at}')",
                policy.spec
            )));
        }
        let layers = g.layers;
        let states = match &policy.scorer {
            Some(scorer) => (0..g.layers)
                .map(|layer| scorer.layer_state(layer, &model))
                .collect::<Result<_, _>>()?,
            None => (0..g.layers).map(|_| None).collect(),
        };
        Ok(Self {
            layers: (0..g.layers).map(|_| None).collect(),
            states,
            geometry: model.geometry,
            policy,
            budget,
            at,
            pass: Pass::default(),
            phase: Phase::Prefill,
            evicted: 0,
            replay: None,
            replay_scores: vec![Vec::new(); layers],
            awaiting_replay: false,
        })
    }

    /// The cache this policy would hold after prefilling `record`'s prompt in one pass and
    /// evicting at its end: the same kept tokens, moments and buffers as running the prompt
    /// through [`EvictingCache::new`] with eviction at `prefill`. `at` applies from here on (its
    /// `chunked` part cannot, the prompt having passed in one piece).
    pub fn fork(
        record: &PrefillRecord<B>,
        model: impl Into<ModelContext<B>>,
        policy: Policy<B>,
        budget: Budget,
        at: EvictAt,
    ) -> Result<Self, CacheError> {
        if at.chunk.is_some() {
            return Err(CacheError::Fork(
                "the prompt passed in one piece, so it cannot be evicted chunk by chunk".into(),
            ));
        }
        let model = model.into();
        let inputs = policy.inputs();
        if inputs.mass && !record.has_mass() {
            return Err(CacheError::Fork(format!(
                "'{}' reads attention mass, which the record did not keep",
                policy.spec
            )));
        }
        if record.layers() != model.geometry.layers {
            return Err(CacheError::Fork(format!(
                "the record has {} layers, the geometry {}",
                record.layers(),
                model.geometry.layers
            )));
        }
        let mut cache = Self::new(model, policy, budget, at)?;
        cache.pass.seen = record.seen();
        for layer in 0..cache.layers.len() {
            let recorded = record
                .layer(layer)
                .ok_or_else(|| CacheError::Fork(format!("layer {layer} was never attended")))?;
            let mut store = LayerStore::new(recorded.keys.clone(), recorded.values.clone(), 0);
            store.queries = match (inputs.queries, recorded.queries) {
                (QueryNeed::None, _) => None,
                (_, None) => {
                    return Err(CacheError::Fork(format!(
                        "'{}' reads queries, which the record did not keep",
                        cache.policy.spec
                    )))
                }
                (QueryNeed::Recent(w), Some(q)) => {
                    let have = q.dims()[2];
                    Some(q.clone().narrow(2, have - w.min(have), w.min(have)))
                }
                (QueryNeed::All, Some(q)) => Some(q.clone()),
            };
            if inputs.mass {
                store.mass = recorded.mass.cloned();
            }
            cache.layers[layer] = Some(store);
            if cache.policy.evicts() && !cache.policy.replays() {
                cache.evict(layer, 0);
            }
            cache.trim_query_buffer(layer);
        }
        cache.awaiting_replay = cache.policy.replays();
        Ok(cache)
    }

    pub fn policy(&self) -> &Policy<B> {
        &self.policy
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Tokens evicted so far, summed over layers, heads and batch rows.
    pub fn evicted(&self) -> usize {
        self.evicted
    }

    /// Positions held by each `[batch, kv_heads]` row of `layer`, ascending.
    pub fn kept_positions(&self, layer: usize) -> Option<Vec<Vec<u32>>> {
        let store = self.layers.get(layer)?.as_ref()?;
        let t = store.slots();
        Some(
            store
                .positions
                .chunks(t)
                .zip(store.valid.chunks(t))
                .map(|(p, v)| {
                    p.iter()
                        .zip(v)
                        .filter(|(_, &ok)| ok)
                        .map(|(&p, _)| p)
                        .collect()
                })
                .collect(),
        )
    }

    /// Tokens a pool of `rows` heads holding `context` tokens each keeps in all, under the
    /// budget: `rows · min(n, context)` for `n` tokens, `N − ⌊N·r⌋` of its `N = rows · context`
    /// entries for a compression ratio `r` (KVzip's count, as kvpress takes it).
    fn pool_keep(&self, rows: usize, context: usize) -> usize {
        let entries = rows * context;
        match self.budget {
            Budget::Tokens(n) => rows * n.min(context),
            Budget::Compression(r) => entries - (entries as f64 * r) as usize,
        }
    }

    /// Announces a replay pass reconstructing `span`, after checking that one is due.
    fn prepare_replay(&mut self, new: usize, span: Range<usize>) -> Result<usize, CacheError> {
        if !self.awaiting_replay {
            return Err(CacheError::Replay(format!(
                "'{}' expects no replay pass now: only a replaying policy (kvzip) takes them, \
                 after its prompt and before it evicts",
                self.policy.spec
            )));
        }
        let seen = self.pass.seen;
        if span.start > span.end || span.end > seen {
            return Err(CacheError::Replay(format!(
                "a replay of positions {}..{} reaches past the {seen} prompt tokens held",
                span.start, span.end
            )));
        }
        self.replay = Some(span);
        Ok(self.pass.prepare_replay(new))
    }

    /// Scores `store`'s prompt slots from one replay pass's queries `q` and records the scores of
    /// the positions `span` it reconstructs (slot = position: nothing is evicted before).
    fn score_replay(
        &mut self,
        layer: usize,
        store: &LayerStore<B>,
        q: Tensor<B, 4>,
        span: Range<usize>,
    ) {
        let seen = self.pass.seen;
        let obs = Observation {
            layer,
            geometry: &self.geometry,
            keys: store.keys.clone(),
            values: store.values.clone(),
            positions: &store.positions,
            valid: &store.valid,
            queries: Some(q),
            first_query: seen,
            mass: None,
            seen,
            keep: 0,
            moments: None,
            state: self.states[layer].as_ref(),
            replay: Some(span.clone()),
        };
        let [_, _, t] = obs.dims();
        let scorer = self.policy.scorer.as_ref().expect("a replaying policy");
        let scores = scorer.score(&obs);
        let rows = scores.len() / t;
        let recorded = &mut self.replay_scores[layer];
        if recorded.is_empty() {
            *recorded = vec![0.0; rows * seen];
        }
        for row in 0..rows {
            recorded[row * seen + span.start..row * seen + span.end]
                .copy_from_slice(&scores[row * t + span.start..row * t + span.end]);
        }
    }

    /// Tokens per head `layer` keeps now: its share of the budget for the context seen so far.
    fn layer_keep(&self, layer: usize, held: usize) -> usize {
        let keep = self.budget.keep(self.pass.seen);
        let mean = match self.budget {
            Budget::Tokens(n) => n as f64,
            Budget::Compression(r) => self.pass.seen as f64 * (1.0 - r),
        };
        self.policy
            .layer_budget
            .keep(layer, self.geometry.layers, held, keep, mean)
    }

    /// Tokens a head may hold beyond its budget before this pass evicts: none while prefilling,
    /// the decode interval less one while generating; `None` when this pass does not evict.
    fn slack(&self) -> Option<usize> {
        if !self.policy.evicts() || self.policy.replays() {
            return None;
        }
        match self.phase {
            Phase::Prefill => Some(0),
            Phase::Decode => self.at.decode.map(|n| n - 1),
            Phase::Replay { .. } => None,
        }
    }

    /// Cuts an all-queries buffer back to the last [`QUERY_BUFFER`] once a pass has scored.
    fn trim_query_buffer(&mut self, layer: usize) {
        if self.policy.inputs().queries != QueryNeed::All {
            return;
        }
        if let Some(store) = self.layers[layer].as_mut() {
            if let Some(q) = store.queries.take() {
                let have = q.dims()[2];
                let keep = QUERY_BUFFER.min(have);
                store.queries = Some(q.narrow(2, have - keep, keep));
            }
        }
    }

    fn evict(&mut self, layer: usize, slack: usize) {
        let store = self.layers[layer].as_ref().expect("layer attended");
        let held = store.held();
        let widest = held.iter().copied().max().unwrap_or(0);
        let keep = self.layer_keep(layer, widest);
        let over = match self.policy.allocation {
            Allocation::Uniform => widest > keep + slack,
            Allocation::Adaptive { .. } => held
                .chunks(self.geometry.kv_heads)
                .any(|heads| heads.iter().sum::<usize>() > (keep + slack) * heads.len()),
        };
        if !over {
            return;
        }
        let queries = store.queries.clone();
        let first_query = self.pass.seen - queries.as_ref().map_or(0, |q| q.dims()[2]);
        let obs = Observation {
            layer,
            geometry: &self.geometry,
            keys: store.keys.clone(),
            values: store.values.clone(),
            positions: &store.positions,
            valid: &store.valid,
            queries,
            first_query,
            mass: store.mass.clone(),
            seen: self.pass.seen,
            keep,
            moments: store.moments.as_ref(),
            state: self.states[layer].as_ref(),
            replay: None,
        };
        let scorer = self.policy.scorer.as_ref().expect("evicting policy");
        let scores = scorer.score(&obs);
        let rules = Rules {
            keep,
            sinks: self.policy.sinks,
            recent: self.policy.protected_recent(keep),
            allocation: self.policy.allocation,
            total: None,
        };
        let selection = select(
            &scores,
            &store.valid,
            &store.positions,
            self.geometry.kv_heads,
            store.slots(),
            rules,
        );
        let kept: usize = selection.kept.iter().map(Vec::len).sum();
        self.evicted += held.iter().sum::<usize>() - kept;
        let moments = self.policy.keeps_moments();
        let store = self.layers[layer].as_mut().expect("layer attended");
        if moments {
            store.absorb_evicted(&selection, self.policy.order, self.policy.segment);
        }
        store.retain(&selection);
    }
}

impl<B: KernelBackend> KvCache<B> for EvictingCache<B> {
    fn prepare(&mut self, new: usize, phase: Phase) -> Result<usize, CacheError> {
        if let Phase::Replay { from, to } = phase {
            return self.prepare_replay(new, from..to);
        }
        if phase == Phase::Decode && self.replay_chunk().is_some() {
            return Err(CacheError::Replay(format!(
                "'{}' evicts after replay passes over its prompt: run them \
                 (momentkv_transformer::replay) before reading further tokens",
                self.policy.spec
            )));
        }
        self.replay = None;
        self.phase = phase;
        self.awaiting_replay |= phase == Phase::Prefill && self.policy.replays();
        Ok(self.pass.prepare(new))
    }

    fn attend(
        &mut self,
        layer: usize,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> Result<Tensor<B, 4>, CacheError> {
        let layers = self.layers.len();
        if layer >= layers {
            return Err(CacheError::NoSuchLayer { layer, layers });
        }
        let new = k.dims()[2];
        self.pass.check(layer, new)?;
        let g = &self.geometry;
        let [b, _, _, _] = k.dims();
        for (what, x, heads) in [
            ("queries", &q, g.heads),
            ("keys", &k, g.kv_heads),
            ("values", &v, g.kv_heads),
        ] {
            let want = [b, heads, new, g.head_dim];
            if x.dims() != want {
                return Err(CacheError::Shape {
                    layer,
                    what,
                    found: x.dims().to_vec(),
                    expected: want.to_vec(),
                });
            }
        }
        let replay = self.replay.clone();
        let start = if replay.is_some() {
            self.pass.seen
        } else {
            self.pass.seen - new
        };
        let inputs = self.policy.inputs();
        let store = match self.layers[layer].take() {
            None => LayerStore::new(k, v, start),
            Some(mut store) => {
                if store.keys.dims()[0] != b {
                    return Err(CacheError::Shape {
                        layer,
                        what: "keys (batch)",
                        found: k.dims().to_vec(),
                        expected: vec![store.keys.dims()[0], g.kv_heads, new, g.head_dim],
                    });
                }
                store.append(k, v, start);
                store
            }
        };
        let mut store = store;
        if let Some(span) = replay {
            // Nothing is evicted before the replays, so plain causal attention is exact.
            let out = B::causal_attention(q.clone(), store.keys.clone(), store.values.clone());
            self.score_replay(layer, &store, q, span);
            store.truncate(store.slots() - new);
            self.layers[layer] = Some(store);
            return Ok(out);
        }
        let (keys, values) = (store.keys.clone(), store.values.clone());
        // H2O's mass needs the attention weights; the output is the corrected attention when the
        // policy corrects with moments, else plain attention (the fast path when nothing is
        // padded).
        let mut plain = None;
        if inputs.mass {
            let (out, mass) =
                attention_with_mass(q.clone(), keys.clone(), values.clone(), store.bias.as_ref());
            store.mass = Some(match store.mass.take() {
                None => mass,
                Some(old) => {
                    let [b, kv, _] = old.dims();
                    let zeros = Tensor::zeros([b, kv, new], &old.device());
                    Tensor::cat(vec![old, zeros], 2) + mass
                }
            });
            plain = Some(out);
        }
        let correcting = store.moments.as_ref().filter(|_| self.policy.moments);
        let out = match (correcting, plain) {
            (Some(m), _) => moment_attention(q.clone(), keys, values, store.bias.as_ref(), m),
            (None, Some(out)) => out,
            (None, None) if store.bias.is_some() => {
                masked_attention(q.clone(), keys, values, store.bias.as_ref())
            }
            (None, None) => B::causal_attention(q.clone(), keys, values),
        };
        let keep_queries = match inputs.queries {
            QueryNeed::None => 0,
            QueryNeed::Recent(w) => w,
            QueryNeed::All => QUERY_BUFFER.max(new),
        };
        if keep_queries > 0 {
            let q = match store.queries.take() {
                None => q,
                Some(old) => Tensor::cat(vec![old, q], 2),
            };
            let have = q.dims()[2];
            store.queries =
                Some(q.narrow(2, have - keep_queries.min(have), keep_queries.min(have)));
        }
        self.layers[layer] = Some(store);
        if let Some(slack) = self.slack() {
            self.evict(layer, slack);
        }
        self.trim_query_buffer(layer);
        Ok(out)
    }

    fn seen(&self) -> usize {
        self.pass.seen
    }

    /// Every layer's store ([`LayerStore::bytes`]) plus what the scorer derived from the model.
    fn bytes(&self) -> usize {
        let states: usize = self
            .states
            .iter()
            .flatten()
            .map(|s| s.shape().num_elements() * s.dtype().size())
            .sum();
        self.layers
            .iter()
            .flatten()
            .map(LayerStore::bytes)
            .sum::<usize>()
            + states
    }

    fn prefill_chunk(&self) -> Option<usize> {
        self.at.chunk.filter(|_| self.policy.evicts())
    }

    /// The scorer's replay chunk while the prompt awaits its replays and the budget would evict
    /// some of it.
    fn replay_chunk(&self) -> Option<usize> {
        let chunk = self.policy.scorer.as_ref()?.replay_chunk()?;
        let seen = self.pass.seen;
        (self.awaiting_replay && self.pool_keep(1, seen) < seen).then_some(chunk)
    }

    /// Selects what every layer keeps from the replay scores, in one pool of all layers' heads
    /// ([`LayerBudget::Joint`]) or one pool per layer, each keeping [`Self::pool_keep`] with no
    /// per-head floor (the sinks ranked first), then evicts the rest (summarising it into moments
    /// when the policy keeps them).
    fn end_replay(&mut self) -> Result<(), CacheError> {
        if !self.awaiting_replay {
            return Err(CacheError::Replay(format!(
                "'{}' has no replay passes to end",
                self.policy.spec
            )));
        }
        self.awaiting_replay = false;
        self.replay = None;
        let (kv, layers, context) = (self.geometry.kv_heads, self.layers.len(), self.pass.seen);
        let per_pool = match self.policy.layer_budget {
            LayerBudget::Joint => layers,
            _ => 1,
        };
        let scores = std::mem::replace(&mut self.replay_scores, vec![Vec::new(); layers]);
        for first in (0..layers).step_by(per_pool) {
            let pool: Vec<&LayerStore<B>> = self.layers[first..first + per_pool]
                .iter()
                .map(|s| s.as_ref().expect("every layer attended the prompt"))
                .collect();
            let batch = pool[0].keys.dims()[0];
            let rows = per_pool * kv;
            // Rows ordered [batch][layer][kv_head], `context` slots each (slot = position).
            let (mut score, mut valid, mut positions) = (vec![], vec![], vec![]);
            for b in 0..batch {
                for (l, store) in pool.iter().enumerate() {
                    let range = b * kv * context..(b + 1) * kv * context;
                    match scores[first + l].get(range.clone()) {
                        Some(s) => score.extend_from_slice(s),
                        None => score.extend(std::iter::repeat_n(0.0, kv * context)),
                    }
                    valid.extend_from_slice(&store.valid[range.clone()]);
                    positions.extend_from_slice(&store.positions[range]);
                }
            }
            let rules = Rules {
                keep: 0,
                sinks: self.policy.sinks,
                recent: self.policy.recent,
                allocation: Allocation::Adaptive { alpha: 0.0 },
                total: Some(self.pool_keep(rows, context)),
            };
            let selection = select(&score, &valid, &positions, rows, context, rules);
            for l in 0..per_pool {
                let kept = (0..batch)
                    .flat_map(|b| (0..kv).map(move |h| b * rows + l * kv + h))
                    .map(|row| selection.kept[row].clone())
                    .collect();
                let selection = Selection { kept };
                let kept: usize = selection.kept.iter().map(Vec::len).sum();
                self.evicted += batch * kv * context - kept;
                let moments = self.policy.keeps_moments();
                let store = self.layers[first + l].as_mut().expect("attended");
                if moments {
                    store.absorb_evicted(&selection, self.policy.order, self.policy.segment);
                }
                store.retain(&selection);
            }
        }
        Ok(())
    }
}
