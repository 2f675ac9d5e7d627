//! vt, cwe, fwe and qa on inline data.

use momentkv_ruler::{generate, kvpress_parts, QaSet, Sources, Task};

use crate::support::{
    check_cwe, check_fwe, check_qa, check_vt, inline_sources, numbered, quarter_chars, small_words,
    squad_json, words,
};

#[test]
fn vt_outputs_are_the_chains_names_in_order() {
    let sources = Sources::default();
    for target in [1024, 4096] {
        for index in 0..5 {
            check_vt(&generate(Task::Vt, target, 42, index, &sources, &quarter_chars).unwrap());
        }
    }
}

#[test]
fn vt_samples_share_the_example_but_not_its_names() {
    let sources = Sources::default();
    let example = |index| {
        let input = generate(Task::Vt, 2048, 42, index, &sources, &words)
            .unwrap()
            .input;
        input[..input.find("\n\n\n\n").unwrap()].to_string()
    };
    let (a, b) = (example(0), example(1));
    assert_ne!(a, b);
    let mask = |text: &str| {
        text.split(' ')
            .map(|w| {
                if w.len() == 3 && w.bytes().all(|c| c.is_ascii_uppercase()) && w != "VAR" {
                    "NAME"
                } else {
                    w
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(mask(&a), mask(&b), "the same example, renamed");
}

#[test]
fn cwe_outputs_are_the_ten_most_common_words() {
    let sources = inline_sources();
    for target in [1024, 4096] {
        for index in 0..4 {
            check_cwe(&generate(Task::Cwe, target, 42, index, &sources, &quarter_chars).unwrap());
        }
    }
}

#[test]
fn cwe_repeats_common_words_30_times_from_4096_tokens_and_6_below() {
    let sources = inline_sources();
    for (target, repeats) in [(2048, 6), (4096, 30)] {
        let sample = generate(Task::Cwe, target, 9, 0, &sources, &quarter_chars).unwrap();
        let list = sample.input.rsplit("most often.\n").next().unwrap();
        let list = numbered(list.split_once("\nQuestion:").unwrap().0);
        for word in &sample.outputs {
            assert_eq!(
                list.iter().filter(|w| *w == word).count(),
                repeats,
                "{word}"
            );
        }
    }
}

#[test]
fn cwe_needs_more_words_than_its_example() {
    let sources = Sources {
        words: Some(small_words()),
        ..Sources::default()
    };
    let err = generate(Task::Cwe, 1024, 1, 0, &sources, &words)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("16 distinct words; the example alone takes 20"),
        "{err}"
    );
}

#[test]
fn fwe_outputs_are_the_second_to_fourth_most_frequent_words() {
    let sources = Sources::default();
    for target in [1024, 4096, 16384] {
        for index in 0..3 {
            check_fwe(&generate(Task::Fwe, target, 42, index, &sources, &quarter_chars).unwrap());
        }
    }
}

#[test]
fn qa_prompts_hold_the_questions_paragraph_and_its_answer() {
    let sources = inline_sources();
    let set = sources.squad.as_ref().unwrap();
    for index in [0, 1, 57, 199] {
        let sample = generate(Task::Qa1, 4096, 42, index, &sources, &quarter_chars).unwrap();
        check_qa(&sample, set);
        assert!(sample.input.matches("\n\nDocument ").count() > 5);
    }
}

#[test]
fn qa_2_reads_hotpotqa_paragraphs() {
    let items: Vec<String> = (0..50)
        .map(|i| {
            format!(
                r#"{{"question": "Q{i}?", "answer": "{}", "context": [["Gold {i}", ["Holds A{i} here. ", "More."]], ["Other {i}", ["Nothing ", "else."]]]}}"#,
                if i % 2 == 0 { format!("A{i}") } else { "yes".into() }
            )
        })
        .collect();
    let set = QaSet::hotpotqa(&format!("[{}]", items.join(","))).unwrap();
    assert_eq!(set.documents().len(), 100);
    let sources = Sources {
        hotpotqa: Some(set),
        ..Sources::default()
    };
    for index in 0..4 {
        let sample = generate(Task::Qa2, 600, 1, index, &sources, &words).unwrap();
        check_qa(&sample, sources.hotpotqa.as_ref().unwrap());
        assert!(sample
            .input
            .contains(&format!(":\nGold {index}\nHolds A{index} here. More.\n\n")));
    }
    let squad = QaSet::squad(&squad_json(1)).unwrap();
    assert_eq!(
        squad.questions().len(),
        5,
        "unanswerable questions are left out"
    );
}

#[test]
fn every_task_is_cut_where_kvpress_cuts_it() {
    let sources = inline_sources();
    // qa_2's HotpotQA paragraphs are not inline; its template is qa_1's.
    for task in Task::ALL.into_iter().filter(|&t| t != Task::Qa2) {
        for target in [1024, 4096] {
            let sample = generate(task, target, 42, 0, &sources, &quarter_chars).unwrap();
            let parts = kvpress_parts(task, &sample.input).unwrap();
            assert_eq!(
                [parts.context, parts.question, parts.answer_prefix].concat(),
                sample.input,
                "{task}"
            );
            // The question and answer prefix are the template's last sentences, past any example.
            assert!(parts.context.len() > target, "{task}: {parts:?}");
            assert!(
                !parts.question.contains('\n') || task == Task::Qa1,
                "{task}: {parts:?}"
            );
            assert!(
                parts.answer_prefix.starts_with("Answer:")
                    || parts.answer_prefix.starts_with("The special magic"),
                "{task}: {parts:?}"
            );
        }
    }
}
