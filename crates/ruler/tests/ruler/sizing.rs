//! Prompt lengths, determinism, token-count economy and errors.

use std::cell::Cell;

use momentkv_ruler::{generate, Error, Sources, Task};

use crate::support::{inline_sources, quarter_chars, small_words, words, COUNTERS};

/// One line of the repeat haystack (niah_single_1) and of vt's filler.
const FILLER: &str =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.\n";

/// Within 2% of the target, or, where the haystack grows a line at a time and a line is more
/// than 2% of the target (a short target), within a line: RULER never splits one.
#[test]
fn lengths_come_within_two_percent_of_the_target() {
    let sources = inline_sources();
    let mut misses = Vec::new();
    for (name, count) in COUNTERS {
        for target in [1024, 2048, 4096] {
            for task in Task::ALL
                .into_iter()
                .filter(|t| !matches!(t, Task::Qa1 | Task::Qa2))
            {
                for index in 0..2 {
                    let sample = generate(task, target, 42, index, &sources, &count).unwrap();
                    assert_eq!(
                        sample.length,
                        count(&sample.input) + task.tokens_to_generate()
                    );
                    assert!(sample.length <= target);
                    let line = match task {
                        Task::NiahSingle1 | Task::Vt => count(FILLER),
                        _ => 0,
                    };
                    if sample.length * 50 < target * 49 && sample.length + line < target {
                        misses.push(format!("{task} at {target} ({name}): {}", sample.length));
                    }
                }
            }
        }
    }
    assert!(misses.is_empty(), "{misses:#?}");
}

#[test]
fn qa_lengths_come_within_one_document_of_the_target() {
    let sources = inline_sources();
    let set = sources.squad.as_ref().unwrap();
    let longest = set
        .documents()
        .iter()
        .map(|d| quarter_chars(d))
        .max()
        .unwrap();
    for target in [1024, 2048, 4096] {
        for index in 0..4 {
            let sample = generate(Task::Qa1, target, 42, index, &sources, &quarter_chars).unwrap();
            assert!(sample.length <= target, "{}", sample.length);
            assert!(
                sample.length + longest + 8 > target,
                "{} at {target}",
                sample.length
            );
        }
    }
}

#[test]
fn the_same_seed_and_index_give_the_same_sample() {
    let sources = inline_sources();
    for task in Task::ALL.into_iter().filter(|t| *t != Task::Qa2) {
        let sample = |seed, index| generate(task, 2048, seed, index, &sources, &words).unwrap();
        let first = sample(42, 3);
        assert_eq!(first, sample(42, 3), "{task}");
        assert_eq!(first.index, 3);
        assert_ne!(first.input, sample(42, 4).input, "{task}");
        assert_ne!(first.outputs, sample(42, 4).outputs, "{task}");
        if !matches!(task, Task::Qa1) {
            assert_ne!(first.input, sample(43, 3).input, "{task}");
        }
    }
}

#[test]
fn sizing_takes_few_token_counts() {
    let sources = inline_sources();
    for task in [
        Task::NiahSingle2,
        Task::NiahMultikey3,
        Task::Cwe,
        Task::Fwe,
        Task::Qa1,
    ] {
        for target in [4096, 65536] {
            let calls = Cell::new(0);
            let count = |text: &str| {
                calls.set(calls.get() + 1);
                quarter_chars(text)
            };
            generate(task, target, 42, 0, &sources, &count).unwrap();
            assert!(
                calls.get() <= 12,
                "{task} at {target}: {} token counts",
                calls.get()
            );
        }
    }
    let calls = Cell::new(0);
    let count = |text: &str| {
        calls.set(calls.get() + 1);
        quarter_chars(text)
    };
    generate(Task::Vt, 65536, 42, 0, &Sources::default(), &count).unwrap();
    assert!(
        calls.get() <= 20,
        "vt (with its example): {} token counts",
        calls.get()
    );
}

#[test]
fn missing_data_and_small_targets_are_errors() {
    let none = Sources::default();
    for task in Task::ALL {
        let result = generate(task, 4096, 1, 0, &none, &words);
        match task.sources() {
            [] => assert!(result.is_ok(), "{task} needs no data"),
            needed => {
                let err = result.unwrap_err();
                assert!(matches!(err, Error::MissingSource { .. }), "{task}: {err}");
                assert!(
                    err.to_string().contains(needed[0].files()[0]),
                    "{task}: {err}"
                );
            }
        }
    }
    let words_only = Sources {
        words: Some(small_words()),
        ..Sources::default()
    };
    for (task, target) in [(Task::NiahSingle1, 150), (Task::Vt, 400), (Task::Fwe, 199)] {
        let err = generate(task, target, 1, 0, &words_only, &words).unwrap_err();
        assert!(
            matches!(err, Error::TargetTooSmall { .. }),
            "{task} at {target}: {err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("target of {target} tokens")),
            "{err}"
        );
    }
    let sources = inline_sources();
    let err = generate(Task::Qa1, 4096, 1, 1000, &sources, &words).unwrap_err();
    assert!(
        err.to_string()
            .contains("1000 questions, so there is no sample 1000"),
        "{err}"
    );
    let err = generate(Task::Vt, 1 << 40, 1, 0, &none, &words).unwrap_err();
    assert!(matches!(err, Error::TargetTooLarge { .. }), "{err}");
    let err = "niah".parse::<Task>().unwrap_err();
    assert!(
        err.to_string().contains("unknown RULER task `niah`"),
        "{err}"
    );
}
