//! The data files tasks draw from. The caller fetches and caches them; this crate only parses.

use std::path::Path;

use crate::error::Error;
use crate::essays::Essays;
use crate::qa_data::QaSet;
use crate::task::Task;
use crate::words::WordLists;

/// A kind of data a task needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// RULER's `PaulGrahamEssays.json`.
    Essays,
    /// wonderwords' `adjectivelist.txt`, `nounlist.txt` and `verblist.txt`.
    Words,
    /// SQuAD v2.0 dev as RULER names it, `squad.json`.
    Squad,
    /// HotpotQA dev (distractor) as RULER names it, `hotpotqa.json`.
    HotpotQa,
}

impl Source {
    /// The file names the data comes in.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Source::Essays => &["PaulGrahamEssays.json"],
            Source::Words => &["adjectivelist.txt", "nounlist.txt", "verblist.txt"],
            Source::Squad => &["squad.json"],
            Source::HotpotQa => &["hotpotqa.json"],
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Source::Essays => "the Paul Graham essays (PaulGrahamEssays.json)",
            Source::Words => {
                "wonderwords' word lists (adjectivelist.txt, nounlist.txt, verblist.txt)"
            }
            Source::Squad => "SQuAD (squad.json)",
            Source::HotpotQa => "HotpotQA (hotpotqa.json)",
        }
    }
}

/// The data samples are made from; each part is needed only by the tasks that use it
/// ([`Task::sources`]).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// For niah_single_2/3, niah_multikey_1, niah_multivalue and niah_multiquery.
    pub essays: Option<Essays>,
    /// For every niah task with word keys (all but niah_multikey_3) and cwe.
    pub words: Option<WordLists>,
    /// For qa_1.
    pub squad: Option<QaSet>,
    /// For qa_2.
    pub hotpotqa: Option<QaSet>,
}

impl Sources {
    /// Reads from `dir`, under the names of [`Source::files`], the data that `tasks` need.
    pub fn load(dir: &Path, tasks: &[Task]) -> Result<Self, Error> {
        let needed = |source| tasks.iter().any(|t| t.sources().contains(&source));
        let file = |source: Source, i: usize| dir.join(source.files()[i]);
        let mut sources = Self::default();
        if needed(Source::Essays) {
            sources.essays = Some(Essays::load(&file(Source::Essays, 0))?);
        }
        if needed(Source::Words) {
            let words = |i| file(Source::Words, i);
            sources.words = Some(WordLists::load(&words(0), &words(1), &words(2))?);
        }
        if needed(Source::Squad) {
            sources.squad = Some(QaSet::load_squad(&file(Source::Squad, 0))?);
        }
        if needed(Source::HotpotQa) {
            sources.hotpotqa = Some(QaSet::load_hotpotqa(&file(Source::HotpotQa, 0))?);
        }
        Ok(sources)
    }

    pub(crate) fn essays(&self, task: Task) -> Result<&Essays, Error> {
        self.essays
            .as_ref()
            .ok_or_else(|| missing(task, Source::Essays))
    }

    pub(crate) fn words(&self, task: Task) -> Result<&WordLists, Error> {
        self.words
            .as_ref()
            .ok_or_else(|| missing(task, Source::Words))
    }

    pub(crate) fn qa(&self, task: Task) -> Result<&QaSet, Error> {
        let (set, source) = match task {
            Task::Qa2 => (&self.hotpotqa, Source::HotpotQa),
            _ => (&self.squad, Source::Squad),
        };
        set.as_ref().ok_or_else(|| missing(task, source))
    }
}

fn missing(task: Task, source: Source) -> Error {
    Error::MissingSource {
        task,
        data: source.describe(),
    }
}
