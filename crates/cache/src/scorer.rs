//! Scorers: how a policy ranks the tokens a KV head holds. Higher scores are kept.
//!
//! Each scorer is a small type behind [`Scorer`], in its policy's file
//! ([`crate::policies`]). It declares what it reads beyond keys, values and positions
//! ([`Inputs`]), and the cache keeps exactly that and shows it in an [`Observation`]; what it
//! derives from the model once (LaProx's output Gram) it builds in [`Scorer::layer_state`] when
//! the cache is built. It never recomputes projections. Selection rules shared by all policies
//! (budgets, protected sinks and recent tokens, per-head allocation) live in [`crate::Policy`]
//! and [`crate::select`].

use std::ops::Range;

use burn::tensor::{
    activation::softmax, backend::Backend, module::avg_pool1d, Bool, Tensor, TensorData,
};

use crate::{CacheError, Geometry, ModelContext, Moments};

/// Which recent queries a scorer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryNeed {
    /// None: the score depends on keys and values only.
    None,
    /// The last `n` queries.
    Recent(usize),
    /// Every query of the current pass (all of the prompt at one-pass prefill), and at least the
    /// last [`QUERY_BUFFER`] across passes.
    All,
}

/// What a scorer reads beyond keys, values and positions, declared in one place
/// ([`Scorer::inputs`]); the cache, its prefill record and forks keep exactly this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    /// Recent queries.
    pub queries: QueryNeed,
    /// The attention mass each token received (an attention pass that materialises weights).
    pub mass: bool,
    /// The moments of the evicted tokens (kept whether or not attention is corrected with them).
    pub moments: bool,
}

impl Inputs {
    /// Keys, values and positions only.
    pub const NONE: Self = Self {
        queries: QueryNeed::None,
        mass: false,
        moments: false,
    };

    /// What either of two scorers reads (a prefill record serving several policies).
    pub fn union(self, other: Self) -> Self {
        let queries = match (self.queries, other.queries) {
            (QueryNeed::All, _) | (_, QueryNeed::All) => QueryNeed::All,
            (QueryNeed::Recent(a), QueryNeed::Recent(b)) => QueryNeed::Recent(a.max(b)),
            (QueryNeed::Recent(n), QueryNeed::None) | (QueryNeed::None, QueryNeed::Recent(n)) => {
                QueryNeed::Recent(n)
            }
            (QueryNeed::None, QueryNeed::None) => QueryNeed::None,
        };
        Self {
            queries,
            mass: self.mass || other.mass,
            moments: self.moments || other.moments,
        }
    }
}

/// Queries kept across passes for [`QueryNeed::All`] scorers (kvpress's decoding buffer).
pub const QUERY_BUFFER: usize = 256;

/// What a cache shows a scorer about one layer at eviction time.
///
/// Slots are laid out `[batch, kv_heads, t]`; a slot may be padding (`valid` false) when heads hold
/// different numbers of tokens. Valid slots of a head are in increasing position order.
pub struct Observation<'a, B: Backend> {
    pub layer: usize,
    pub geometry: &'a Geometry,
    /// Post-RoPE keys `[batch, kv_heads, t, head_dim]`.
    pub keys: Tensor<B, 4>,
    /// Values `[batch, kv_heads, t, head_dim]`.
    pub values: Tensor<B, 4>,
    /// Original position of each slot, `[batch, kv_heads, t]` row-major.
    pub positions: &'a [u32],
    /// Whether each slot holds a token, same layout.
    pub valid: &'a [bool],
    /// Post-RoPE queries of the most recent tokens, `[batch, heads, w, head_dim]`, when the scorer
    /// asked for them.
    pub queries: Option<Tensor<B, 4>>,
    /// Position of the first of `queries` (they are consecutive and end at `seen − 1`).
    pub first_query: usize,
    /// Attention mass each slot has received since it entered the cache, averaged over the query
    /// group, `[batch, kv_heads, t]`, when the scorer asked for it.
    pub mass: Option<Tensor<B, 3>>,
    /// Tokens seen so far.
    pub seen: usize,
    /// Tokens per head the layer keeps after this eviction (the mean over heads under AdaKV).
    pub keep: usize,
    /// Moments of the tokens evicted before this eviction, when the scorer asked for them.
    pub moments: Option<&'a Moments<B>>,
    /// What the scorer derived from the model for this layer ([`Scorer::layer_state`]).
    pub state: Option<&'a Tensor<B, 4>>,
    /// During a replay pass ([`crate::Phase::Replay`]): the prompt positions it reconstructs.
    /// `queries` are then the pass's own, and its keys are the last `queries`' count of slots.
    pub replay: Option<Range<usize>>,
}

impl<B: Backend> Observation<'_, B> {
    /// `[batch, kv_heads, t]`.
    pub fn dims(&self) -> [usize; 3] {
        let [b, h, t, _] = self.keys.dims();
        [b, h, t]
    }

    /// The queries, or a panic naming the scorer that forgot to ask for them.
    pub(crate) fn queries(&self, who: &str) -> Tensor<B, 4> {
        self.queries
            .clone()
            .unwrap_or_else(|| panic!("{who} scores from queries but did not ask for them"))
    }

    /// Scaled logits of the last `w` queries over the slots, with the mask of the slots each
    /// query may not see (padding, or later than the query), both `[batch, kv_heads, g·w, t]`
    /// (query group folded into rows, head-major), and the scaled queries `a = q/√d`
    /// `[batch, kv_heads, g·w, head_dim]`.
    pub fn window_logits(
        &self,
        w: usize,
        who: &str,
    ) -> (Tensor<B, 4>, Tensor<B, 4, Bool>, Tensor<B, 4>) {
        let q = self.queries(who);
        let [b, heads, have, d] = q.dims();
        let w = w.min(have);
        let [_, kv, t] = self.dims();
        let g = heads / kv;
        let first = self.first_query + have - w;
        let a = q
            .narrow(2, have - w, w)
            .mul_scalar(1.0 / (d as f64).sqrt())
            .reshape([b, kv, g * w, d]);
        let logits = a.clone().matmul(self.keys.clone().swap_dims(2, 3));
        let mut mask = Vec::with_capacity(b * kv * g * w * t);
        for row in 0..b * kv {
            let slots = row * t..(row + 1) * t;
            for _ in 0..g {
                for i in 0..w {
                    let qpos = (first + i) as u32;
                    mask.extend(
                        self.positions[slots.clone()]
                            .iter()
                            .zip(&self.valid[slots.clone()])
                            .map(|(&p, &ok)| !ok || p > qpos),
                    );
                }
            }
        }
        let mask = Tensor::<B, 4, Bool>::from_data(
            TensorData::new(mask, [b, kv, g * w, t]),
            &logits.device(),
        );
        (logits, mask, a)
    }

    /// Attention weights of the last `w` queries over the slots, `[batch, kv_heads, g·w, t]`:
    /// softmax of [`Self::window_logits`] with the hidden slots masked out.
    pub fn window_weights(&self, w: usize, who: &str) -> Tensor<B, 4> {
        let (logits, mask, _) = self.window_logits(w, who);
        softmax(logits.mask_fill(mask, f32::NEG_INFINITY), 3)
    }

    /// SnapKV's reduction of per-query scores `[batch, kv_heads, g·w, t]` (rows as in
    /// [`Self::window_logits`]) to per-slot scores `[batch, kv_heads, t]`: the mean over the window
    /// for each query head, pooled ([`Self::pool_slots`]), then the mean over the query group.
    pub fn pool_window(&self, per_query: Tensor<B, 4>, kernel: usize) -> Vec<f32> {
        let [b, kv, rows, t] = per_query.dims();
        let g = self.geometry.group();
        let w = rows / g;
        let per_head = per_query
            .reshape([b * kv * g, w, t])
            .mean_dim(1)
            .reshape([b * kv, g, t]);
        host(self.pool_slots(per_head, w, kernel).mean_dim(1))
    }

    /// Per-slot scores `[batch · kv_heads, n, t]` with the slots of the last `w` positions (the
    /// observation window, protected) and padding zeroed, then an average pool of odd width
    /// `kernel` over positions (zero padding), as SnapKV smooths its scores.
    pub fn pool_slots(&self, scores: Tensor<B, 3>, w: usize, kernel: usize) -> Tensor<B, 3> {
        let [rows, _, t] = scores.dims();
        let window_start = (self.seen - w) as u32;
        let before = self
            .slot_mask(|i| self.valid[i] && self.positions[i] < window_start)
            .reshape([rows, 1, t]);
        avg_pool1d(scores * before, kernel, 1, kernel / 2, true, false)
    }

    /// A per-slot host mask as a `[batch, kv_heads, t]` float tensor (1 where `keep`, else 0).
    pub fn slot_mask(&self, keep: impl Fn(usize) -> bool) -> Tensor<B, 3> {
        let [b, h, t] = self.dims();
        let m: Vec<f32> = (0..b * h * t)
            .map(|i| if keep(i) { 1.0 } else { 0.0 })
            .collect();
        Tensor::from_data(TensorData::new(m, [b, h, t]), &self.keys.device())
    }
}

/// Ranks the tokens of each KV head: higher scores are kept.
pub trait Scorer<B: Backend>: Send {
    /// What [`Self::score`] reads beyond keys, values and positions.
    fn inputs(&self) -> Inputs {
        Inputs::NONE
    }

    /// State derived once from the model for layer `layer` when the cache is built, shown to
    /// [`Self::score`] as [`Observation::state`] and counted in the cache's bytes (LaProx: the
    /// output projection's head-group Gram). An error names what the model context lacks.
    fn layer_state(
        &self,
        _layer: usize,
        _model: &ModelContext<B>,
    ) -> Result<Option<Tensor<B, 4>>, CacheError> {
        Ok(None)
    }

    /// Prompt tokens per replay pass, for a scorer that scores the prompt from replays of it
    /// ([`crate::Phase::Replay`], KVzip) rather than at eviction; `None` for every other.
    fn replay_chunk(&self) -> Option<usize> {
        None
    }

    /// Whether the score is shared by every head (TOVA), so heads keep the same positions and
    /// per-head allocation is meaningless.
    fn shared_across_heads(&self) -> bool {
        false
    }

    /// Scores `[batch, kv_heads, t]`, row-major; values at padding slots are ignored.
    fn score(&self, obs: &Observation<B>) -> Vec<f32>;
}

/// Host copy of a float tensor.
pub(crate) fn host<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("float tensor data")
}
