//! The needle tasks on inline data: needles, answers and depths as RULER places them.

use momentkv_ruler::{generate, Essays, Sources, Task, WordLists};

use crate::support::{
    check_niah, essay_text, inline_sources, needles, niah_queries, quarter_chars, small_words,
};

const NIAH: [Task; 8] = [
    Task::NiahSingle1,
    Task::NiahSingle2,
    Task::NiahSingle3,
    Task::NiahMultikey1,
    Task::NiahMultikey2,
    Task::NiahMultikey3,
    Task::NiahMultivalue,
    Task::NiahMultiquery,
];

#[test]
fn every_needle_appears_once_and_the_asked_ones_hold_the_outputs() {
    let sources = inline_sources();
    for task in NIAH {
        for target in [1024, 4096] {
            for index in 0..6 {
                let sample = generate(task, target, 42, index, &sources, &quarter_chars).unwrap();
                check_niah(&sample, true);
            }
        }
    }
}

#[test]
fn needle_counts_and_questions_follow_each_tasks_settings() {
    let sources = inline_sources();
    // (task, needles in the prompt beyond distractor lines, keys asked, values per answer)
    for (task, needles_min, queries, outputs) in [
        (Task::NiahSingle2, 1, 1, 1),
        (Task::NiahMultikey1, 4, 1, 1),
        (Task::NiahMultivalue, 4, 1, 4),
        (Task::NiahMultiquery, 4, 4, 4),
    ] {
        let sample = generate(task, 2048, 1, 0, &sources, &quarter_chars).unwrap();
        assert_eq!(needles(&sample.input).len(), needles_min, "{task}");
        assert_eq!(niah_queries(&sample.input).len(), queries, "{task}");
        assert_eq!(sample.outputs.len(), outputs, "{task}");
        assert!(sample
            .outputs
            .iter()
            .all(|v| v.len() == 7 && v.parse::<u32>().is_ok()));
    }
    let sample = generate(Task::NiahMultikey2, 2048, 1, 0, &sources, &quarter_chars).unwrap();
    assert!(
        needles(&sample.input).len() > 50,
        "the haystack is other needles"
    );
    let sample = generate(Task::NiahMultikey3, 2048, 1, 0, &sources, &quarter_chars).unwrap();
    assert_eq!(sample.outputs[0].len(), 36, "a uuid");
    assert_eq!(niah_queries(&sample.input)[0].len(), 36, "a uuid key");
}

#[test]
fn one_value_prompts_are_singular_and_several_plural() {
    let sources = inline_sources();
    let single = generate(Task::NiahSingle3, 2048, 3, 0, &sources, &quarter_chars).unwrap();
    assert!(single.input.starts_with("A special magic uuid is hidden within the following text. Make sure to memorize it. I will quiz you about the uuid afterwards.\n"));
    let query = niah_queries(&single.input)[0];
    assert!(single.input.ends_with(&format!("\nWhat is the special magic uuid for {query} mentioned in the provided text? The special magic uuid for {query} mentioned in the provided text is")));
    assert!(single
        .input
        .contains(&format!("One of the special magic uuids for {query} is: ")));
    let many = generate(Task::NiahMultivalue, 2048, 3, 0, &sources, &quarter_chars).unwrap();
    assert!(many.input.starts_with("Some special magic numbers are hidden within the following text. Make sure to memorize it. I will quiz you about the numbers afterwards.\n"));
    assert!(many.input.ends_with(" mentioned in the provided text are"));
}

#[test]
fn small_word_lists_give_keys_from_them() {
    let sources = Sources {
        words: Some(small_words()),
        ..Sources::default()
    };
    let adjectives = ["nasty", "blue-eyed", "ad hoc", "big", "small", "red"];
    let nouns = ["ATM", "contact lens", "dog", "cat", "tree", "lamp", "sofa"];
    for index in 0..20 {
        let sample = generate(Task::NiahSingle1, 1024, 5, index, &sources, &quarter_chars).unwrap();
        check_niah(&sample, false);
        let key = niah_queries(&sample.input)[0];
        assert!(
            adjectives
                .iter()
                .any(|a| nouns.iter().any(|n| key == format!("{a}-{n}"))),
            "{key}"
        );
    }
}

#[test]
fn keys_of_one_sample_differ_even_from_few_words() {
    let sources = Sources {
        essays: Some(Essays::from_text(&essay_text(2000)).unwrap()),
        words: Some(small_words()),
        ..Sources::default()
    };
    for task in [
        Task::NiahMultiquery,
        Task::NiahMultikey1,
        Task::NiahMultikey2,
    ] {
        for index in 0..30 {
            let sample = generate(task, 1024, 8, index, &sources, &quarter_chars).unwrap();
            check_niah(&sample, true);
        }
    }
    let one_key = Sources {
        words: Some(WordLists::from_lines("big\n", "dog\n", "run\n").unwrap()),
        ..Sources::default()
    };
    assert!(generate(Task::NiahSingle1, 1024, 1, 0, &one_key, &quarter_chars).is_ok());
    let err = generate(Task::NiahMultikey2, 1024, 1, 0, &one_key, &quarter_chars).unwrap_err();
    assert!(
        err.to_string()
            .contains("they give 1 keys; niah_multikey_2 needs 2"),
        "{err}"
    );
}
