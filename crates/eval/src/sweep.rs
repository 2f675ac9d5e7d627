//! The evaluation protocol: each sample's context is prefilled once into a [`PrefillRecord`], then
//! every (policy, budget) cell evicts from a fork of it and answers greedily, so a sweep costs one
//! prefill per sample.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::tensor::Tensor;
use momentkv::cache::{
    Budget, EvictAt, EvictingCache, Inputs, KvCache, Phase, Policy, PolicySpec, PrefillRecord,
};
use momentkv::kernels::KernelBackend;
use momentkv::transformer::{answer, replay, Sampler};
use momentkv::{Error, Model};
use serde::{Deserialize, Serialize};

use crate::passkey::Protocol;
use crate::ruler::Prompt;

/// One cache to evaluate: a policy at a budget, or the full cache (`budget: None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cell {
    pub policy: String,
    pub budget: Option<usize>,
}

impl Cell {
    pub fn full() -> Self {
        Self {
            policy: "full".into(),
            budget: None,
        }
    }

    /// The policy this cell evicts with, checked.
    pub fn build<B: KernelBackend>(&self) -> Result<(Policy<B>, Budget), Error> {
        let policy = self.policy.parse::<PolicySpec>()?.build::<B>()?;
        let budget = match self.budget {
            Some(n) => Budget::tokens(n)?,
            None => Budget::compression(0.0)?,
        };
        Ok((policy, budget))
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
            },
        )
    }
}

/// Answers `prompt` under each of `cells` from one prefill, calling `done` with each answer's text
/// and cache size. Under [`Protocol::QueryAgnostic`] the context is prefilled and compressed,
/// then the question read; under [`Protocol::QueryAware`] everything but the prompt's last token is
/// prefilled and compressed, and that token read after.
pub fn answer_cells<B: KernelBackend>(
    model: &Model<B>,
    prompt: &Prompt,
    cells: &[Cell],
    protocol: Protocol,
    max_new_tokens: usize,
    mut done: impl FnMut(&Cell, String, usize, f64) -> Result<(), Error>,
) -> Result<(), Error> {
    let (prefix, question) = match protocol {
        Protocol::QueryAgnostic => (prompt.context.clone(), prompt.question.clone()),
        Protocol::QueryAware => {
            let all = [&prompt.context[..], &prompt.question[..]].concat();
            let (head, last) = all.split_at(all.len() - 1);
            (head.to_vec(), last.to_vec())
        }
    };
    let SharedPrefill { built, record, .. } = record_prefill(model, cells, prefix.clone())?;
    let transformer = &model.transformer;
    let options = model.options(max_new_tokens);
    let context = transformer.cache_context();
    for (cell, (policy, budget)) in cells.iter().zip(built) {
        let started = Instant::now();
        let mut cache =
            EvictingCache::fork(&record, context.clone(), policy, budget, EvictAt::PREFILL)?;
        replay(transformer, &mut cache, &prefix, options.repeat.as_ref())?;
        let out = answer(
            transformer,
            &mut cache,
            &[],
            &question,
            &options,
            &mut Sampler::greedy(),
            |_| {},
        )?;
        let text = model.tokenizer.decode(&out.tokens)?;
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
        let cell = Cell {
            policy: o.policy.clone(),
            budget: o.budget,
        };
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
        let snap = Cell {
            policy: "snapkv".into(),
            budget: Some(64),
        };
        // fwe has no snapkv result yet: no average.
        assert_eq!(average(&t, 1024, &snap), None);
    }
}
