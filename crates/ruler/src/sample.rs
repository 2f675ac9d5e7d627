//! A RULER sample and how one is generated: the task draws its needles, words or question, then
//! the haystack is sized so that the prompt fits the target in the evaluated model's tokens.

use std::ops::RangeInclusive;

use serde::Serialize;

use crate::error::Error;
use crate::fit::fit;
use crate::niah::Niah;
use crate::qa::Qa;
use crate::rng::Rng;
use crate::score::Metric;
use crate::sources::Sources;
use crate::task::Task;
use crate::{cwe, fwe, vt};

/// One prompt and its reference answers. Serialises to RULER's JSONL record: `index`, `input`,
/// `outputs`, `length`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Which sample of its task this is.
    pub index: usize,
    #[serde(skip)]
    pub task: Task,
    /// The whole prompt, ending with the task's answer prefix (RULER's `base` template).
    pub input: String,
    /// The reference answers.
    pub outputs: Vec<String>,
    /// Prompt tokens plus [`Sample::tokens_to_generate`].
    pub length: usize,
    /// The most tokens the model may answer with.
    #[serde(skip)]
    pub tokens_to_generate: usize,
    /// How the answer is scored.
    #[serde(skip)]
    pub metric: Metric,
}

impl Sample {
    /// The score, 0 to 100, of the model's raw answer (see [`Metric::score`]).
    pub fn score(&self, answer: &str) -> f64 {
        self.metric.score(answer, &self.outputs)
    }
}

/// A sample with its random choices made, waiting for its haystack's size.
pub(crate) trait Draft {
    /// The sizes the haystack may take, in the task's unit (words, lines, documents, ...).
    fn sizes(&self) -> RangeInclusive<usize>;
    /// The prompt with a haystack of `size` units; the same every time for the same size.
    fn prompt(&self, size: usize) -> String;
    /// The reference answers.
    fn outputs(self) -> Vec<String>;
}

/// The largest target: RULER goes to a million tokens; far beyond, prompts would not fit in memory.
pub const MAX_TARGET: usize = 1 << 27;

/// Which of a seed's random streams a sample draws from.
const SAMPLE_STREAM: u64 = 0;

/// Sample `index` of `task`, its prompt as long as fits in `target_tokens` (prompt tokens, counted
/// by `count_tokens`, plus the tokens to generate). The same arguments give the same sample.
/// Essays, word pools and QA documents are finite: past them, prompts stop growing. Targets
/// are at most [`MAX_TARGET`].
pub fn generate(
    task: Task,
    target_tokens: usize,
    seed: u64,
    index: usize,
    sources: &Sources,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Result<Sample, Error> {
    if target_tokens > MAX_TARGET {
        return Err(Error::TargetTooLarge {
            target: target_tokens,
            max: MAX_TARGET,
        });
    }
    let rng = Rng::derive(seed, &[task as u64, SAMPLE_STREAM, index as u64]);
    let (target, count) = (target_tokens, count_tokens);
    let (input, outputs, length) = match task {
        Task::Vt => finish(vt::Vt::new(target, seed, rng, count), task, target, count)?,
        Task::Cwe => {
            let cwe = cwe::Cwe::new(sources.words(task)?, target, seed, rng)?;
            finish(cwe, task, target, count)?
        }
        Task::Fwe => finish(fwe::Fwe::new(target, seed, rng)?, task, target, count)?,
        Task::Qa1 | Task::Qa2 => {
            let qa = Qa::new(task, sources.qa(task)?, index, seed, rng)?;
            finish(qa, task, target, count)?
        }
        _ => {
            let niah = Niah::new(task, sources, target, seed, rng)?;
            finish(niah, task, target, count)?
        }
    };
    Ok(Sample {
        index,
        task,
        input,
        outputs,
        length,
        tokens_to_generate: task.tokens_to_generate(),
        metric: task.metric(),
    })
}

/// The prompt of the largest haystack that fits, the answers and the length.
fn finish(
    draft: impl Draft,
    task: Task,
    target: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Result<(String, Vec<String>, usize), Error> {
    let generate = task.tokens_to_generate();
    let budget = target.saturating_sub(generate);
    let fitted =
        fit(draft.sizes(), budget, |n| draft.prompt(n), count_tokens).map_err(|smallest| {
            Error::TargetTooSmall {
                task,
                target,
                needed: smallest + generate,
            }
        })?;
    Ok((fitted.prompt, draft.outputs(), fitted.tokens + generate))
}
