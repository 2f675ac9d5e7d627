//! Scoring against RULER's own functions: the expected values come from running
//! `postprocess_pred`, `string_match_all_per_sample` and `string_match_part_per_sample`
//! (nvidia-long-context-eval 26.3) on these cases.

use momentkv_ruler::{postprocess, string_match_all, string_match_part, Metric, Task};

/// (raw answer, references, postprocessed, string_match_all, string_match_part)
const CASES: [(&str, &[&str], &str, f64, f64); 16] = [
    (
        "The answer is 8536477.",
        &["8536477"],
        "The answer is 8536477.",
        100.0,
        100.0,
    ),
    (
        "the magic words are APPLE and banana",
        &["apple", "Banana", "cherry"],
        "the magic words are APPLE and banana",
        66.66666666666666,
        100.0,
    ),
    ("nothing here", &["a1", "b2"], "nothing here", 0.0, 0.0),
    (
        "1111111 was one of them",
        &["1111111", "2222222", "3333333", "4444444"],
        "1111111 was one of them",
        25.0,
        100.0,
    ),
    (
        "1111111, 2222222, 4444444",
        &["1111111", "2222222", "3333333", "4444444"],
        "1111111, 2222222, 4444444",
        75.0,
        100.0,
    ),
    (
        "france",
        &["France", "France", "France", "France"],
        "france",
        100.0,
        100.0,
    ),
    (
        "10th and 11th centuries",
        &["10th and 11th centuries", "in the 10th and 11th centuries"],
        "10th and 11th centuries",
        50.0,
        100.0,
    ),
    ("ÉCOLE normale", &["école"], "ÉCOLE normale", 100.0, 100.0),
    ("", &["x"], "", 0.0, 0.0),
    ("anything", &[""], "anything", 100.0, 100.0),
    (
        "UOBNR BQAKM LJXLD",
        &["UOBNR", "BQAKM", "LJXLD", "ENQQX", "UMVPI"],
        "UOBNR BQAKM LJXLD",
        60.0,
        100.0,
    ),
    (
        "  \u{0}Hello\tWorld\u{1f} \n",
        &["hello\nworld"],
        "Hello\nWorld",
        100.0,
        100.0,
    ),
    ("\u{1c} abc \u{1d}", &["abc"], "abc", 100.0, 100.0),
    ("\u{3000}yes\u{3000}", &["Yes", "no"], "yes", 50.0, 100.0),
    ("a\u{7f}b", &["a\u{7f}b"], "a\u{7f}b", 100.0, 100.0),
    (
        "\u{85}the Chief of Protocol.\r\n",
        &["chief of protocol"],
        "the Chief of Protocol.",
        100.0,
        100.0,
    ),
];

#[test]
fn scores_match_rulers_functions() {
    for (answer, references, cleaned, all, part) in CASES {
        assert_eq!(postprocess(answer), cleaned, "{answer:?}");
        assert_eq!(string_match_all(cleaned, references), all, "{answer:?}");
        assert_eq!(string_match_part(cleaned, references), part, "{answer:?}");
        assert_eq!(Metric::All.score(answer, references), all, "{answer:?}");
        assert_eq!(Metric::Part.score(answer, references), part, "{answer:?}");
    }
}

#[test]
fn task_scores_are_means_of_the_sample_scores() {
    // RULER's string_match_all and string_match_part over all cases: 70.42 and 87.5.
    let mean = |metric: Metric| {
        CASES
            .iter()
            .map(|(a, r, ..)| metric.score(a, r))
            .sum::<f64>()
            / CASES.len() as f64
    };
    assert!(
        (mean(Metric::All) - 70.42).abs() < 0.005,
        "{}",
        mean(Metric::All)
    );
    assert_eq!(mean(Metric::Part), 87.5);
}

#[test]
fn qa_gives_credit_for_any_answer_and_the_rest_for_each() {
    assert_eq!(Task::Qa1.metric(), Metric::Part);
    assert_eq!(Task::NiahMultivalue.metric(), Metric::All);
    assert_eq!(Metric::Part.name(), "string_match_part");
    assert_eq!(
        string_match_all::<&str>("anything", &[]),
        0.0,
        "no references, no credit"
    );
}
