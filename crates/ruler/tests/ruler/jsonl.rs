//! RULER's JSONL records: written as RULER writes them, read from RULER's files.

use momentkv_ruler::{generate, parse_jsonl, write_jsonl, Metric, Sources, Task};

use crate::support::words;

#[test]
fn samples_round_trip_through_rulers_record() {
    let sources = Sources::default();
    let samples: Vec<_> = (0..3)
        .map(|i| generate(Task::Fwe, 1024, 7, i, &sources, &words).unwrap())
        .collect();
    let mut out = Vec::new();
    write_jsonl(&samples, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 3);
    let first_line = text.lines().next().unwrap();
    let first: serde_json::Value = serde_json::from_str(first_line).unwrap();
    let mut fields: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["index", "input", "length", "outputs"]);
    assert!(first_line.starts_with("{\"index\":0,\"input\":\"Read the following coded text"));
    assert!(first_line.ends_with(&format!("],\"length\":{}}}", samples[0].length)));
    let count_nothing = |_: &str| -> usize { panic!("lengths are recorded") };
    assert_eq!(
        parse_jsonl(&text, Task::Fwe, &count_nothing).unwrap(),
        samples
    );
}

#[test]
fn rulers_lines_need_only_input_and_outputs() {
    let text = r#"{"index": 7, "input": "a b c", "outputs": ["x"], "length": 99, "pred": "x", "others": {}}

{"input": "d e", "outputs": ["y", "z"]}
"#;
    let samples = parse_jsonl(text, Task::Qa2, &words).unwrap();
    assert_eq!((samples[0].index, samples[0].length), (7, 99));
    assert_eq!((samples[1].index, samples[1].length), (1, 2 + 32));
    assert_eq!(samples[1].outputs, ["y", "z"]);
    assert_eq!(samples[1].metric, Metric::Part);
    let err = parse_jsonl("{\"input\": \"x\"}", Task::Vt, &words).unwrap_err();
    assert!(
        err.to_string().contains("line 1") && err.to_string().contains("outputs"),
        "{err}"
    );
}
