//! Perplexity under compression: the teacher-forced negative log-likelihood of a long text while
//! the KV cache is held at a budget as the text is read (StreamingLLM's PG-19 protocol), beside
//! the full cache's on the same tokens.
//!
//! **Protocol.** Let `x_0 … x_{C−1}` be the first `C` (`context`) ids of the text as the model's
//! tokenizer encodes it, without a chat template, with the special tokens it adds by itself (a
//! BOS for models that want one; [`tokenize`]). The first `P` (`prefix`) are prefilled once, into
//! a full cache that records what the policies read ([`PrefillRecord`]); every cell, the full
//! cache included, starts from a fork of it ([`EvictingCache::fork`]). By default `P` is the
//! smallest budget (at least [`Perplexity::MIN_PREFIX`]), so that no cell evicts when it forks and
//! every cell starts from the same exact prefix (a prefix above a cell's budget is compressed once
//! when that cell forks, as kvpress compresses a prompt). Each cell then reads `x_P … x_{C−2}` as
//! generated tokens ([`Phase::Decode`]), `S` (`stride`) per forward pass, evicting back to its
//! budget `B` whenever it holds `K` (`evict_every`, `--evict-during decode=K`) tokens more, and
//! scores every position against the next true token:
//!
//! ```text
//! ℓ_t   = −ln softmax(z_{t−1})[x_t]      z_{t−1}: the logits at position t − 1, f32 on the device
//! NLL   = 1/(C − P) · Σ_{t=P}^{C−1} ℓ_t   nats per token; ℓ_P from the prefill's last position
//! ΔNLL  = NLL(policy) − NLL(full)          ppl_ratio = e^{ΔNLL} = PPL(policy) / PPL(full)
//! ```
//!
//! The scored positions are also cut into [`Perplexity::BUCKETS`] equal ranges (fewer when fewer
//! tokens are scored), each with its mean `ℓ` and its difference from the full cache's over the
//! same range: how the loss grows as more of the text has been evicted.
//!
//! **Stride.** Token `j` of a pass attends over what the cache held before the pass plus the
//! pass's first `j + 1` tokens, and a layer evicts once the pass has attended. `S = 1, K = 1` is
//! StreamingLLM's token-by-token protocol (the cache holds exactly `B` tokens before each token);
//! a larger `S` or `K` lets the cache hold up to `B + K − 1 + S` keys while a token is scored. For
//! the full cache the stride changes nothing but speed.
//!
//! **Nothing evicted.** The cache reads `C − 1` tokens (`x_{C−1}` is only predicted) and first
//! evicts at the end of the pass that makes it hold more than `B + K − 1`, so an eviction changes a
//! prediction only if a pass follows it: at stride 1, only if `B + K < C − 1`. A cell with
//! `B + K ≥ C − 1` would score exactly the full cache's tokens; it is refused (nothing is
//! evicted), as is a text shorter than `C` tokens.

use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::time::Instant;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use momentkv::cache::{
    Budget, CacheError, EvictAt, EvictingCache, KvCache, Phase, Policy, PrefillRecord,
};
use momentkv::kernels::KernelBackend;
use momentkv::tokenizer::Tokenizer;
use momentkv::transformer::{ModelError, Transformer};
use momentkv::{hub, Error, Model};
use serde::Serialize;

use crate::haystack::Essays;
use crate::plot::{LinePlot, Series};
use crate::sweep::{record_prefill, Cell, SharedPrefill};

/// The settings of one perplexity run: the text, how much of it is scored and how, and the
/// caches compared with the full cache.
#[derive(Debug, Clone)]
pub struct Perplexity {
    /// The text's ids ([`tokenize`]); the first `context` are used.
    pub tokens: Vec<u32>,
    /// `C`: tokens read and scored (from `prefix` on).
    pub context: usize,
    /// `P`: tokens prefilled once, before the cells fork; `None`: the smallest budget of `cells`,
    /// at least [`Self::MIN_PREFIX`] ([`Self::prefix`]).
    pub prefix: Option<usize>,
    /// `S`: tokens per forward pass while teacher forcing.
    pub stride: usize,
    /// `K`: an evicting cache evicts back to its budget whenever it holds this many tokens more
    /// (`--evict-during decode=K`).
    pub evict_every: usize,
    /// The (policy, budget) cells, each with a budget; the full cache always runs first.
    pub cells: Vec<Cell>,
}

/// One cache's loss over the scored tokens: a line of `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellNll {
    pub policy: String,
    /// Tokens per KV head; `None` for the full cache.
    pub budget: Option<usize>,
    /// Mean NLL per scored token, in nats.
    pub nll: f64,
    /// The full cache's mean NLL over the same tokens.
    pub nll_full: f64,
    /// `nll − nll_full`.
    pub delta_nll: f64,
    /// `e^{nll}`.
    pub ppl: f64,
    /// `e^{delta_nll}`: this cache's perplexity over the full cache's.
    pub ppl_ratio: f64,
    /// Tokens scored: `context − prefix`.
    pub tokens: usize,
    /// Tokens prefilled before the first scored one.
    pub prefix: usize,
    /// Tokens read: `prefix + tokens`.
    pub context: usize,
    /// The cache's size once the text has been read ([`KvCache::bytes`]).
    pub kv_cache_bytes: usize,
    /// Tokens evicted, summed over layers and KV heads.
    pub evicted_tokens: usize,
    /// The scored positions in equal ranges, in order.
    pub buckets: Vec<Bucket>,
    /// Time spent on this cell (its prefill shared, so not counted).
    pub seconds: f64,
    /// `ℓ_t` of every scored position `t = prefix … context − 1`, in order.
    #[serde(skip)]
    pub per_token: Vec<f64>,
}

/// The loss over one range of scored positions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// The first predicted position of the range.
    pub start: usize,
    /// One past the last.
    pub end: usize,
    /// Mean NLL over the range, in nats.
    pub nll: f64,
    /// `nll` less the full cache's over the same range.
    pub delta_nll: f64,
}

/// A finished run: the full cache, then every cell in the order given.
#[derive(Debug, Clone)]
pub struct Report {
    pub full: CellNll,
    pub cells: Vec<CellNll>,
}

/// What one cell's pass over the text measured, before it is summarised against the full cache.
struct Scored {
    per_token: Vec<f64>,
    kv_cache_bytes: usize,
    evicted_tokens: usize,
    seconds: f64,
}

impl Perplexity {
    /// Tokens read when no `--context` is given.
    pub const DEFAULT_CONTEXT: usize = 2048;
    /// The smallest default prefix.
    pub const MIN_PREFIX: usize = 16;
    /// Position ranges the scored tokens are cut into.
    pub const BUCKETS: usize = 8;

    /// Settings with the defaults: [`Self::DEFAULT_CONTEXT`] tokens, the default prefix, one token
    /// per pass and eviction at every token (StreamingLLM's protocol).
    pub fn new(tokens: Vec<u32>, cells: Vec<Cell>) -> Self {
        Self {
            tokens,
            context: Self::DEFAULT_CONTEXT,
            prefix: None,
            stride: 1,
            evict_every: 1,
            cells,
        }
    }

    /// `P`: the prefix given, else the smallest budget of the cells, at least
    /// [`Self::MIN_PREFIX`].
    pub fn prefix(&self) -> usize {
        self.prefix.unwrap_or_else(|| {
            let smallest = self.cells.iter().filter_map(|c| c.budget).min();
            smallest.unwrap_or(0).max(Self::MIN_PREFIX)
        })
    }

    /// Checks the settings against `model` before anything runs: the text's length and ids, the
    /// context window, the prefix, stride and interval, and every cell's policy and budget.
    pub fn check<B: KernelBackend>(&self, model: &Model<B>) -> Result<(), Error> {
        let (context, prefix) = (self.context, self.prefix());
        if self.tokens.len() < context {
            return Err(Error::Unsupported(format!(
                "the text has {} tokens, fewer than the context of {context}: give a longer \
                 text or a smaller --context",
                self.tokens.len()
            )));
        }
        let config = model.transformer.config();
        if context > config.max_position_embeddings {
            return Err(Error::Unsupported(format!(
                "a context of {context} tokens exceeds the model's window of {} \
                 (max_position_embeddings): lower --context",
                config.max_position_embeddings
            )));
        }
        let vocab = config.vocab_size;
        if let Some(&id) = self.tokens[..context]
            .iter()
            .find(|&&id| id as usize >= vocab)
        {
            return Err(ModelError::TokenOutOfRange { id, vocab }.into());
        }
        if self.stride == 0 || self.evict_every == 0 {
            return Err(Error::Unsupported(
                "the stride and the eviction interval must be at least 1 token".into(),
            ));
        }
        for cell in &self.cells {
            self.check_cell::<B>(cell)?;
        }
        if prefix == 0 || prefix >= context {
            return Err(Error::Unsupported(format!(
                "a prefix of {prefix} tokens leaves nothing to score in a context of {context}: \
                 the prefix must be at least 1 and less than the context"
            )));
        }
        Ok(())
    }

    /// A cell evicts before its last prediction: an evicting policy at a budget the text exceeds
    /// with a pass to spare.
    fn check_cell<B: KernelBackend>(&self, cell: &Cell) -> Result<(), Error> {
        let (policy, _) = cell.build::<B>()?;
        let Some(budget) = cell.budget.filter(|_| policy.evicts()) else {
            return Err(CacheError::BadBudget(format!(
                "'{}' needs an evicting policy and a budget: the full cache is always measured",
                cell.policy
            ))
            .into());
        };
        let (k, context) = (self.evict_every, self.context);
        let read = context.saturating_sub(1);
        if budget.saturating_add(k) >= read {
            let when = if k == 1 {
                String::new()
            } else {
                format!(" evicting every {k} tokens")
            };
            return Err(CacheError::BadBudget(format!(
                "'{}' at budget {budget}{when} would evict nothing before the last prediction \
                 from a context of {context} tokens (the cache reads {read} of them): nothing is \
                 evicted, so lower the budget or raise --context",
                cell.policy
            ))
            .into());
        }
        Ok(())
    }

    /// Runs the full cache, then every cell, on `model`, calling `on_cell` with each result as it
    /// finishes (the full cache's first); returns them all.
    pub fn run<B: KernelBackend>(
        &self,
        model: &Model<B>,
        mut on_cell: impl FnMut(&CellNll) -> Result<(), Error>,
    ) -> Result<Report, Error> {
        self.check(model)?;
        let prefix = self.prefix();
        let tokens = &self.tokens[..self.context];
        let cells: Vec<Cell> = std::iter::once(Cell::full())
            .chain(self.cells.iter().cloned())
            .collect();
        let SharedPrefill {
            built,
            record,
            hidden,
        } = record_prefill(model, &cells, tokens[..prefix].to_vec())?;
        let transformer = &model.transformer;
        // ℓ_P, from the prefix's last position: the same for every cell.
        let first = -log_probs(transformer, hidden, &tokens[prefix..=prefix])[0];
        let mut full: Option<Vec<f64>> = None;
        let mut results = Vec::with_capacity(cells.len());
        for (cell, (policy, budget)) in cells.iter().zip(built) {
            let scored = self.score(model, &record, policy, budget, first)?;
            let reference: &[f64] = full.get_or_insert_with(|| scored.per_token.clone());
            let nll = CellNll::new(cell, scored, reference, prefix);
            on_cell(&nll)?;
            results.push(nll);
        }
        let full = results.remove(0);
        Ok(Report {
            full,
            cells: results,
        })
    }

    /// One cell: a fork of `record` reads the rest of the text `stride` tokens at a time.
    fn score<B: KernelBackend>(
        &self,
        model: &Model<B>,
        record: &PrefillRecord<B>,
        policy: Policy<B>,
        budget: Budget,
        first: f64,
    ) -> Result<Scored, Error> {
        let started = Instant::now();
        let transformer = &model.transformer;
        let (prefix, tokens) = (self.prefix(), &self.tokens[..self.context]);
        let at = EvictAt {
            chunk: None,
            decode: Some(self.evict_every),
        };
        let mut cache =
            EvictingCache::fork(record, transformer.cache_context(), policy, budget, at)?;
        let mut per_token = Vec::with_capacity(self.context - prefix);
        per_token.push(first);
        // x_P … x_{C−2} are read; each pass's tokens predict the next ones.
        for (i, piece) in tokens[prefix..self.context - 1]
            .chunks(self.stride)
            .enumerate()
        {
            let start = prefix + i * self.stride;
            let hidden = transformer.forward(&[piece.to_vec()], Phase::Decode, &mut cache)?;
            let targets = &tokens[start + 1..start + 1 + piece.len()];
            per_token.extend(
                log_probs(transformer, hidden, targets)
                    .into_iter()
                    .map(|lp| -lp),
            );
        }
        Ok(Scored {
            per_token,
            kv_cache_bytes: cache.bytes(),
            evicted_tokens: cache.evicted(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

impl CellNll {
    /// `scored` summarised against the full cache's `ℓ_t` (`full`, the same positions).
    fn new(cell: &Cell, scored: Scored, full: &[f64], prefix: usize) -> Self {
        let per_token = scored.per_token;
        let (nll, nll_full) = (mean(&per_token), mean(full));
        let delta_nll = nll - nll_full;
        let buckets = bucket_ranges(per_token.len())
            .into_iter()
            .map(|r| {
                let nll = mean(&per_token[r.clone()]);
                Bucket {
                    start: prefix + r.start,
                    end: prefix + r.end,
                    nll,
                    delta_nll: nll - mean(&full[r]),
                }
            })
            .collect();
        Self {
            policy: cell.policy.clone(),
            budget: cell.budget,
            nll,
            nll_full,
            delta_nll,
            ppl: nll.exp(),
            ppl_ratio: delta_nll.exp(),
            tokens: per_token.len(),
            prefix,
            context: prefix + per_token.len(),
            kv_cache_bytes: scored.kv_cache_bytes,
            evicted_tokens: scored.evicted_tokens,
            buckets,
            seconds: scored.seconds,
            per_token,
        }
    }
}

impl Report {
    /// ΔNLL against the budget, one line per policy, and the full cache at 0.
    pub fn plot(&self) -> LinePlot {
        let mut budgets: Vec<usize> = self.cells.iter().filter_map(|c| c.budget).collect();
        budgets.sort_unstable();
        budgets.dedup();
        let mut series = vec![Series {
            name: self.full.policy.clone(),
            points: budgets.iter().map(|&b| (b as f64, 0.0)).collect(),
        }];
        for cell in &self.cells {
            let point = (cell.budget.unwrap_or(0) as f64, cell.delta_nll);
            match series.iter_mut().find(|s| s.name == cell.policy) {
                Some(s) => s.points.push(point),
                None => series.push(Series {
                    name: cell.policy.clone(),
                    points: vec![point],
                }),
            }
        }
        for s in &mut series {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        LinePlot {
            title: format!(
                "Perplexity under compression: {} tokens scored after a {}-token prefix",
                self.full.tokens, self.full.prefix
            ),
            x_label: "budget (tokens per KV head)".into(),
            y_label: "ΔNLL against the full cache (nats per token)".into(),
            series,
            x_at_data: true,
        }
    }
}

/// The ids perplexity scores: `text` as the model's tokenizer encodes it, with the special tokens
/// it adds by itself (a BOS where the model wants one, as `generate` encodes a prompt) and no
/// chat template.
pub fn tokenize(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, Error> {
    Ok(tokenizer.encode(text, true)?)
}

/// The text `source` names: a file's contents (gunzipped when its name ends in `.gz`), or a known
/// text fetched on first use: `pride-and-prejudice` (the default) or `paul-graham-essays`
/// (RULER's essays, joined). Anything but a regular file is refused without being opened.
pub fn read_text(source: &str) -> Result<String, Error> {
    let path = Path::new(source);
    let io = |reason: String| Error::Io {
        path: path.into(),
        reason,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => read_file(path),
        Ok(_) => Err(io("is not a regular file: pass a text file".into())),
        Err(_) if source == hub::PRIDE_AND_PREJUDICE.name => {
            read_file(&hub::ensure(&hub::PRIDE_AND_PREJUDICE)?)
        }
        Err(_) if source == hub::PAUL_GRAHAM_ESSAYS.name => {
            let essays = Essays::load(&hub::ensure(&hub::PAUL_GRAHAM_ESSAYS)?)?;
            Ok(essays.text().to_string())
        }
        Err(e) => Err(io(format!(
            "{e}; pass a text file, {} or {}",
            hub::PRIDE_AND_PREJUDICE.name,
            hub::PAUL_GRAHAM_ESSAYS.name
        ))),
    }
}

/// A UTF-8 text file, gunzipped first when its name ends in `.gz`.
fn read_file(path: &Path) -> Result<String, Error> {
    let io = |reason: String| Error::Io {
        path: path.into(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| io(e.to_string()))?;
    let mut text = String::new();
    let read = if path.extension().is_some_and(|x| x == "gz") {
        flate2::read::GzDecoder::new(file).read_to_string(&mut text)
    } else {
        std::io::BufReader::new(file).read_to_string(&mut text)
    };
    read.map_err(|e| io(format!("{e} (expected UTF-8 text)")))?;
    Ok(text)
}

/// `ln softmax(z)[target]` for the last `targets.len()` positions of `hidden` (`[1, seq, hidden]`,
/// final-norm states): logits `[1, n, vocab]`, log-softmax over the vocabulary and the targets'
/// entries gathered on the device, so that only `n` floats reach the host.
fn log_probs<B: KernelBackend>(
    transformer: &Transformer<B>,
    hidden: Tensor<B, 3>,
    targets: &[u32],
) -> Vec<f64> {
    let [_, seq, _] = hidden.dims();
    let n = targets.len();
    let logits = transformer.logits(hidden.narrow(1, seq - n, n));
    let ids: Vec<i64> = targets.iter().map(|&t| i64::from(t)).collect();
    let index = Tensor::<B, 3, Int>::from_data(TensorData::new(ids, [1, n, 1]), &logits.device());
    log_softmax(logits, 2)
        .gather(2, index)
        .into_data()
        .iter::<f64>()
        .collect()
}

/// `n` scored positions in [`Perplexity::BUCKETS`] equal, non-empty ranges (`n` of one token
/// when `n` is smaller).
fn bucket_ranges(n: usize) -> Vec<Range<usize>> {
    let k = Perplexity::BUCKETS.min(n);
    (0..k).map(|i| i * n / k..(i + 1) * n / k).collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_scored_positions_in_equal_ranges() {
        let r = bucket_ranges(100);
        assert_eq!(r.len(), 8);
        assert_eq!(r[0], 0..12);
        assert_eq!(r[7].end, 100);
        assert!(r.windows(2).all(|w| w[0].end == w[1].start));
        assert!(r.iter().all(|r| (12..=13).contains(&r.len())));
        assert_eq!(bucket_ranges(3), vec![0..1, 1..2, 2..3]);
        assert!(bucket_ranges(0).is_empty());
    }

    #[test]
    fn the_default_prefix_is_the_smallest_budget_at_least_16() {
        let cell = |b| Cell {
            policy: "streaming".into(),
            budget: Some(b),
            compression: None,
        };
        let p = Perplexity::new(vec![], vec![cell(256), cell(64), cell(128)]);
        assert_eq!(p.prefix(), 64);
        assert_eq!(Perplexity::new(vec![], vec![cell(4)]).prefix(), 16);
        assert_eq!(Perplexity::new(vec![], vec![]).prefix(), 16);
        let given = Perplexity {
            prefix: Some(10),
            ..p
        };
        assert_eq!(given.prefix(), 10);
    }

    #[test]
    fn cells_summarise_against_the_full_cache() {
        let scored = Scored {
            per_token: vec![1.0, 2.0, 3.0, 6.0],
            kv_cache_bytes: 10,
            evicted_tokens: 5,
            seconds: 0.0,
        };
        let cell = Cell {
            policy: "streaming".into(),
            budget: Some(8),
            compression: None,
        };
        let c = CellNll::new(&cell, scored, &[1.0, 2.0, 3.0, 2.0], 16);
        assert_eq!((c.nll, c.nll_full, c.delta_nll), (3.0, 2.0, 1.0));
        assert!((c.ppl_ratio - 1f64.exp()).abs() < 1e-12);
        assert_eq!((c.tokens, c.prefix, c.context), (4, 16, 20));
        assert_eq!(c.buckets.len(), 4);
        assert_eq!((c.buckets[3].start, c.buckets[3].end), (19, 20));
        assert_eq!(c.buckets[3].delta_nll, 4.0);
        assert_eq!(c.buckets[0].delta_nll, 0.0);
        let json = serde_json::to_value(&c).unwrap();
        for key in [
            "policy",
            "budget",
            "nll",
            "nll_full",
            "delta_nll",
            "ppl_ratio",
            "tokens",
            "kv_cache_bytes",
            "buckets",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert!(json.get("per_token").is_none());
    }
}
