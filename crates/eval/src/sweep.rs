//! The evaluation protocol: each sample's context is prefilled once into a [`PrefillRecord`], then
//! every (policy, budget) cell evicts from a fork of it and answers greedily, so a sweep costs one
//! prefill per sample.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use burn::tensor::Tensor;
use momentkv::cache::{
    Budget, EvictAt, EvictingCache, Inputs, KvCache, Phase, Policy, PolicySpec, PrefillRecord,
};
use momentkv::kernels::KernelBackend;
use momentkv::transformer::{answer, replay, Sampler};
use momentkv::{Error, Model};
use serde::{Deserialize, Serialize};

use crate::kvpress;
use crate::ruler::{Pipeline, Prompt};

/// kvpress's compression ratio, the fraction of the context a cell removes, in `[0, 1)`: the
/// cache keeps `⌊n·(1 − r)⌋` (at least 1) of the `n` prefilled tokens per KV head. Compared,
/// ordered and hashed by value (`total_cmp`), so that cells key tables.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ratio(f64);

impl Ratio {
    /// `r`, refused outside `[0, 1)`.
    pub fn new(r: f64) -> Result<Self, Error> {
        Budget::compression(r)?;
        Ok(Self(r))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl PartialEq for Ratio {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ratio {}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ratio {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Hash for Ratio {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a compressed cell keeps, one column of a summary: a budget of tokens per KV head, or a
/// compression ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    Budget(usize),
    Compression(Ratio),
}

impl Column {
    /// `policy` at this column's budget or ratio.
    pub fn cell(self, policy: &str) -> Cell {
        let (budget, compression) = match self {
            Column::Budget(n) => (Some(n), None),
            Column::Compression(r) => (None, Some(r)),
        };
        Cell {
            policy: policy.into(),
            budget,
            compression,
        }
    }

    /// Where the column sits on its plot's x axis: the budget, or the ratio.
    pub fn x(self) -> f64 {
        match self {
            Column::Budget(n) => n as f64,
            Column::Compression(r) => r.get(),
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Budget(n) => write!(f, "budget {n}"),
            Column::Compression(r) => write!(f, "compression {r}"),
        }
    }
}

/// One cache to evaluate: a policy at a budget of tokens per KV head or at a compression ratio
/// (one of the two), or the full cache (neither).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cell {
    pub policy: String,
    pub budget: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Ratio>,
}

impl Cell {
    pub fn full() -> Self {
        Self {
            policy: "full".into(),
            budget: None,
            compression: None,
        }
    }

    /// The column this cell belongs to; `None` for the full cache.
    pub fn column(&self) -> Option<Column> {
        match (self.budget, self.compression) {
            (Some(n), _) => Some(Column::Budget(n)),
            (None, Some(r)) => Some(Column::Compression(r)),
            (None, None) => None,
        }
    }

    /// The policy this cell evicts with, checked.
    pub fn build<B: KernelBackend>(&self) -> Result<(Policy<B>, Budget), Error> {
        let policy = self.policy.parse::<PolicySpec>()?.build::<B>()?;
        let budget = match (self.budget, self.compression) {
            (Some(_), Some(_)) => {
                return Err(Error::Unsupported(format!(
                    "cell '{}' has both a budget and a compression ratio: give one",
                    self.policy
                )))
            }
            (Some(n), None) => Budget::tokens(n)?,
            (None, Some(r)) => Budget::compression(r.get())?,
            (None, None) => Budget::compression(0.0)?,
        };
        Ok((policy, budget))
    }
}

impl fmt::Display for Cell {
    /// `snapkv @ budget 128`, `snapkv @ compression 0.5`, `full`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column() {
            Some(column) => write!(f, "{} @ {column}", self.policy),
            None => f.write_str(&self.policy),
        }
    }
}

/// One answered (sample, cell): a line of `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub task: String,
    pub length: usize,
    pub index: usize,
    pub policy: String,
    pub budget: Option<usize>,
    /// Absent from cells at a budget and from the full cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Ratio>,
    /// 0 to 100, RULER's metric for the task.
    pub score: f64,
    pub answer: String,
    pub outputs: Vec<String>,
    pub prompt_tokens: usize,
    pub kv_cache_bytes: usize,
    pub seconds: f64,
}

impl Outcome {
    /// A 1024-token sample's outcome with only its task, cell and score set.
    #[cfg(test)]
    pub(crate) fn scored(task: &str, policy: &str, budget: Option<usize>, score: f64) -> Outcome {
        Outcome {
            task: task.into(),
            length: 1024,
            index: 0,
            policy: policy.into(),
            budget,
            compression: None,
            score,
            answer: String::new(),
            outputs: vec![],
            prompt_tokens: 0,
            kv_cache_bytes: 0,
            seconds: 0.0,
        }
    }
    /// What identifies the outcome across runs (for resuming).
    pub fn key(&self) -> (String, usize, usize, Cell) {
        (
            self.task.clone(),
            self.length,
            self.index,
            Cell {
                policy: self.policy.clone(),
                budget: self.budget,
                compression: self.compression,
            },
        )
    }
}

/// Answers `prompt` under each of `cells` from one prefill, calling `done` with each answer's text
/// and cache size: the context is prefilled and compressed, then the question read and the answer
/// decoded greedily, at most `max_new_tokens` ids, as `pipeline` decodes (momentkv's stops at the
/// first stop token, kvpress's never at the first id: [`kvpress::answer`]).
pub fn answer_cells<B: KernelBackend>(
    model: &Model<B>,
    prompt: &Prompt,
    cells: &[Cell],
    pipeline: Pipeline,
    max_new_tokens: usize,
    mut done: impl FnMut(&Cell, String, usize, f64) -> Result<(), Error>,
) -> Result<(), Error> {
    let SharedPrefill { built, record, .. } = record_prefill(model, cells, prompt.context.clone())?;
    let transformer = &model.transformer;
    let options = model.options(max_new_tokens);
    let context = transformer.cache_context();
    for (cell, (policy, budget)) in cells.iter().zip(built) {
        let started = Instant::now();
        let mut cache =
            EvictingCache::fork(&record, context.clone(), policy, budget, EvictAt::PREFILL)?;
        replay(
            transformer,
            &mut cache,
            &prompt.context,
            options.repeat.as_ref(),
        )?;
        let tokens = match pipeline {
            Pipeline::Default => {
                answer(
                    transformer,
                    &mut cache,
                    &[],
                    &prompt.question,
                    &options,
                    &mut Sampler::greedy(),
                    |_| {},
                )?
                .tokens
            }
            Pipeline::Kvpress => {
                kvpress::answer(model, &mut cache, &prompt.question, max_new_tokens)?
            }
        };
        let text = model.tokenizer.decode(&tokens)?;
        let bytes = cache.bytes();
        done(cell, text, bytes, started.elapsed().as_secs_f64())?;
    }
    Ok(())
}

/// One prefill shared by several cells: each cell's policy and budget, the record every cell
/// forks, and the prefill's final-norm hidden states `[1, prefix, hidden]`.
pub(crate) struct SharedPrefill<B: KernelBackend> {
    pub built: Vec<(Policy<B>, Budget)>,
    pub record: PrefillRecord<B>,
    pub hidden: Tensor<B, 3>,
}

/// Builds each cell's policy and prefills `prefix` once into a [`PrefillRecord`] keeping what all
/// of them read.
pub(crate) fn record_prefill<B: KernelBackend>(
    model: &Model<B>,
    cells: &[Cell],
    prefix: Vec<u32>,
) -> Result<SharedPrefill<B>, Error> {
    let built = cells
        .iter()
        .map(|c| c.build::<B>())
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = built
        .iter()
        .fold(Inputs::NONE, |all, (p, _)| all.union(p.inputs()));
    let transformer = &model.transformer;
    let mut record = PrefillRecord::new(transformer.config().num_hidden_layers, inputs);
    let hidden = transformer.forward(&[prefix], Phase::Prefill, &mut record)?;
    Ok(SharedPrefill {
        built,
        record,
        hidden,
    })
}

/// Mean scores: `[length][task][cell]`.
pub type Table = BTreeMap<usize, BTreeMap<String, BTreeMap<Cell, (f64, usize)>>>;

/// Averages outcomes per (length, task, cell): `(mean score, samples)`.
pub fn table(outcomes: &[Outcome]) -> Table {
    let mut sums: Table = BTreeMap::new();
    for o in outcomes {
        let (_, _, _, cell) = o.key();
        let entry = sums
            .entry(o.length)
            .or_default()
            .entry(o.task.clone())
            .or_default()
            .entry(cell)
            .or_insert((0.0, 0));
        entry.0 += o.score;
        entry.1 += 1;
    }
    for tasks in sums.values_mut() {
        for cells in tasks.values_mut() {
            for (sum, n) in cells.values_mut() {
                *sum /= *n as f64;
            }
        }
    }
    sums
}

/// The task-averaged score of `cell` at `length` (the mean of task means, RULER's aggregate), if
/// every task has it.
pub fn average(table: &Table, length: usize, cell: &Cell) -> Option<f64> {
    let tasks = table.get(&length)?;
    let scores: Option<Vec<f64>> = tasks.values().map(|c| c.get(cell).map(|s| s.0)).collect();
    let scores = scores?;
    Some(scores.iter().sum::<f64>() / scores.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_average_samples_then_tasks() {
        let outcomes = [
            Outcome::scored("vt", "full", None, 100.0),
            Outcome::scored("vt", "full", None, 50.0),
            Outcome::scored("fwe", "full", None, 0.0),
            Outcome::scored("vt", "snapkv", Some(64), 20.0),
        ];
        let t = table(&outcomes);
        assert_eq!(t[&1024]["vt"][&Cell::full()], (75.0, 2));
        assert_eq!(average(&t, 1024, &Cell::full()), Some(37.5));
        let snap = Column::Budget(64).cell("snapkv");
        // fwe has no snapkv result yet: no average.
        assert_eq!(average(&t, 1024, &snap), None);
    }

    #[test]
    fn cells_at_a_ratio_are_their_own_column_and_line() {
        let half = Ratio::new(0.5).unwrap();
        let cell = Column::Compression(half).cell("knorm");
        assert_eq!(cell.to_string(), "knorm @ compression 0.5");
        assert_eq!(
            Column::Budget(128).cell("knorm").to_string(),
            "knorm @ budget 128"
        );
        assert_eq!(Cell::full().to_string(), "full");
        assert_eq!(cell.column(), Some(Column::Compression(half)));
        assert_eq!(Cell::full().column(), None);
        let outcome = Outcome {
            compression: Some(half),
            ..Outcome::scored("vt", "knorm", None, 100.0)
        };
        let line = serde_json::to_string(&outcome).unwrap();
        assert!(
            line.contains("\"budget\":null,\"compression\":0.5,"),
            "{line}"
        );
        let back: Outcome = serde_json::from_str(&line).unwrap();
        assert_eq!(back.key().3, cell);
        // Cells at a budget write their lines as before ratios existed, and read them back.
        let at_budget =
            serde_json::to_string(&Outcome::scored("vt", "knorm", Some(64), 0.0)).unwrap();
        assert!(!at_budget.contains("compression"), "{at_budget}");
        let back: Outcome = serde_json::from_str(&at_budget).unwrap();
        assert_eq!(back.key().3, Column::Budget(64).cell("knorm"));
        for r in [1.0, -0.5, f64::NAN] {
            let err = Ratio::new(r).unwrap_err().to_string();
            assert!(err.contains("outside [0, 1)"), "{err}");
        }
    }
}
