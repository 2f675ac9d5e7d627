//! RULER's 13 synthetic tasks, named as in its `synthetic.yaml`.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::score::Metric;
use crate::sources::Source;

/// One of RULER's synthetic tasks: eight needle-in-a-haystack variants, variable tracking
/// (`vt`), common and frequent words extraction (`cwe`, `fwe`), and QA over SQuAD (`qa_1`) and
/// HotpotQA (`qa_2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    NiahSingle1,
    NiahSingle2,
    NiahSingle3,
    NiahMultikey1,
    NiahMultikey2,
    NiahMultikey3,
    NiahMultivalue,
    NiahMultiquery,
    Vt,
    Cwe,
    Fwe,
    Qa1,
    Qa2,
}

impl Task {
    /// Every task, in RULER's order.
    pub const ALL: [Task; 13] = [
        Task::NiahSingle1,
        Task::NiahSingle2,
        Task::NiahSingle3,
        Task::NiahMultikey1,
        Task::NiahMultikey2,
        Task::NiahMultikey3,
        Task::NiahMultivalue,
        Task::NiahMultiquery,
        Task::Vt,
        Task::Cwe,
        Task::Fwe,
        Task::Qa1,
        Task::Qa2,
    ];

    /// Every task's name, in the order of [`Task::ALL`].
    pub const NAMES: [&'static str; 13] = [
        "niah_single_1",
        "niah_single_2",
        "niah_single_3",
        "niah_multikey_1",
        "niah_multikey_2",
        "niah_multikey_3",
        "niah_multivalue",
        "niah_multiquery",
        "vt",
        "cwe",
        "fwe",
        "qa_1",
        "qa_2",
    ];

    /// RULER's name for the task (`niah_single_1`, `vt`, `qa_2`, ...).
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The most tokens the model may answer with (`tokens_to_generate` in RULER's constants).
    pub fn tokens_to_generate(self) -> usize {
        match self {
            Task::Vt => 30,
            Task::Cwe => 120,
            Task::Fwe => 50,
            Task::Qa1 | Task::Qa2 => 32,
            _ => 128,
        }
    }

    /// How answers are scored: qa gives credit for any reference, the others for each one found.
    pub fn metric(self) -> Metric {
        match self {
            Task::Qa1 | Task::Qa2 => Metric::Part,
            _ => Metric::All,
        }
    }

    /// The data a sample of this task is made from (none for niah_multikey_3, vt and fwe).
    pub fn sources(self) -> &'static [Source] {
        match self {
            Task::NiahSingle1 | Task::NiahMultikey2 | Task::Cwe => &[Source::Words],
            Task::NiahSingle2
            | Task::NiahSingle3
            | Task::NiahMultikey1
            | Task::NiahMultivalue
            | Task::NiahMultiquery => &[Source::Essays, Source::Words],
            Task::NiahMultikey3 | Task::Vt | Task::Fwe => &[],
            Task::Qa1 => &[Source::Squad],
            Task::Qa2 => &[Source::HotpotQa],
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Task {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|task| task.name() == name)
            .ok_or_else(|| Error::UnknownTask { name: name.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for (task, name) in Task::ALL.into_iter().zip(Task::NAMES) {
            assert_eq!(task.name(), name);
            assert_eq!(name.parse::<Task>().unwrap(), task);
        }
        let err = "niah_single_4".parse::<Task>().unwrap_err().to_string();
        assert!(
            err.contains("niah_single_4") && err.contains("qa_2"),
            "{err}"
        );
    }

    #[test]
    fn generation_lengths_and_metrics_follow_ruler() {
        assert_eq!(Task::NiahMultiquery.tokens_to_generate(), 128);
        assert_eq!(Task::Vt.tokens_to_generate(), 30);
        assert_eq!(Task::Cwe.tokens_to_generate(), 120);
        assert_eq!(Task::Fwe.tokens_to_generate(), 50);
        assert_eq!(Task::Qa2.tokens_to_generate(), 32);
        assert_eq!(Task::Qa1.metric(), Metric::Part);
        assert_eq!(Task::Fwe.metric(), Metric::All);
    }
}
