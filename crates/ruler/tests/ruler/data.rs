//! On RULER's data files (`MOMENTKV_RULER_DATA`): the files parse to what RULER reads from them,
//! every task's samples pass the layout checks, and so do RULER's own samples
//! (`MOMENTKV_RULER_REFERENCE`: a directory of `<task>/validation.jsonl` from RULER's prepare.py).

use std::path::PathBuf;

use momentkv_ruler::{generate, read_jsonl, Sources, Task};

use crate::support::{check, data_dir, quarter_chars, skip};

#[test]
fn data_files_read_as_ruler_reads_them() {
    let Some(dir) = data_dir("data_files_read_as_ruler_reads_them") else {
        return;
    };
    let sources = Sources::load(&dir, &Task::ALL).unwrap();
    assert_eq!(sources.essays.as_ref().unwrap().words(), 525_448);
    let words = sources.words.as_ref().unwrap();
    assert_eq!(words.keys(), 6_171_620);
    assert_eq!(words.pool().len(), 8_166);
    let squad = sources.squad.as_ref().unwrap();
    assert_eq!(
        (squad.documents().len(), squad.questions().len()),
        (1_204, 5_928)
    );
    let hotpotqa = sources.hotpotqa.as_ref().unwrap();
    assert_eq!(
        (hotpotqa.documents().len(), hotpotqa.questions().len()),
        (66_635, 7_405)
    );
}

#[test]
fn samples_from_rulers_data_pass_the_checks() {
    let Some(dir) = data_dir("samples_from_rulers_data_pass_the_checks") else {
        return;
    };
    let sources = Sources::load(&dir, &Task::ALL).unwrap();
    for task in Task::ALL {
        for (target, index) in [(4096, 0), (4096, 1), (16384, 2)] {
            let sample = generate(task, target, 42, index, &sources, &quarter_chars).unwrap();
            check(&sample, &sources, true);
            assert!(sample.length <= target);
        }
    }
}

#[test]
fn rulers_own_samples_pass_the_same_checks() {
    // RULER's prepared samples come from RULER's own scripts, not `momentkv fetch`: optional
    // even where data is required.
    let Some(reference) = std::env::var_os("MOMENTKV_RULER_REFERENCE").map(PathBuf::from) else {
        skip(
            "rulers_own_samples_pass_the_same_checks",
            "set MOMENTKV_RULER_REFERENCE to RULER's prepared data (<task>/validation.jsonl)",
        );
        return;
    };
    let Some(dir) = data_dir("rulers_own_samples_pass_the_same_checks") else {
        return;
    };
    let sources = Sources::load(&dir, &[Task::Qa1, Task::Qa2]).unwrap();
    for task in Task::ALL {
        let path = reference.join(task.name()).join("validation.jsonl");
        let samples = read_jsonl(&path, task, &quarter_chars).unwrap();
        assert!(!samples.is_empty(), "{}", path.display());
        for sample in &samples {
            // RULER's essays were split by a different sentence tokenizer: no depth check.
            check(sample, &sources, false);
        }
    }
}
