//! Stand-in token counters, inline data, and checks that a sample is laid out as RULER lays it
//! out (used on this crate's samples and on RULER's own).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use momentkv_ruler::{
    depth_position, split_sentences, Essays, QaSet, Sample, Sources, Task, WordLists, DEPTHS,
};

/// A stand-in tokenizer: one token a white-space separated word.
pub fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// A stand-in tokenizer: a token per four characters, rounded up.
pub fn quarter_chars(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// A token counter.
pub type Count = fn(&str) -> usize;

/// Both stand-in counters, by name.
pub const COUNTERS: [(&str, Count); 2] = [("words", words), ("chars/4", quarter_chars)];

/// A word of letters for `i`: `a`, `b`, ..., `ba`, `bb`, ...
fn letters(mut i: usize) -> String {
    let mut word = Vec::new();
    loop {
        word.push(b'a' + (i % 26) as u8);
        i /= 26;
        if i == 0 {
            break;
        }
    }
    word.reverse();
    String::from_utf8(word).unwrap()
}

/// Small word lists with RULER's quirks: a trailing space, a repeat, words with spaces.
pub fn small_words() -> WordLists {
    WordLists::from_lines(
        "nasty \nblue-eyed\nad hoc\nnasty\nbig\nsmall\nred\n",
        "ATM\ncontact lens\ndog\ncat\ntree\nlamp\nsofa\n",
        "run\ndog\njump\nsing\n",
    )
    .unwrap()
}

/// Word lists big enough for cwe prompts of several thousand tokens.
pub fn many_words() -> WordLists {
    let list = |prefix: &str, n: usize| -> String {
        (0..n)
            .map(|i| format!("{prefix}{}\n", letters(i)))
            .collect()
    };
    WordLists::from_lines(&list("adj", 40), &list("noun", 60), &list("verb", 1500)).unwrap()
}

/// Essay-like text: sentences of uneven length, some run together without a space (as in
/// RULER's essays), some with abbreviations.
pub fn essay_text(sentences: usize) -> String {
    let mut text = String::new();
    for i in 0..sentences {
        let length = 3 + (i * 7) % 15;
        let body: Vec<String> = (0..length).map(|j| letters(i * 31 + j * 7 + 100)).collect();
        text.push_str(&body.join(" "));
        text.push_str(match i % 11 {
            3 => " with Mr. Smith.",
            5 => "?",
            7 => "!",
            _ => ".",
        });
        text.push_str(if i % 13 == 12 {
            ""
        } else if i % 5 == 0 {
            "\n\n"
        } else {
            " "
        });
    }
    text
}

/// A SQuAD-format file of `articles` articles with five paragraphs and a question each.
pub fn squad_json(articles: usize) -> String {
    let articles: Vec<String> = (0..articles)
        .map(|a| {
            let paragraphs: Vec<String> = (0..5)
                .map(|p| {
                    let answer = format!("Answer{}", letters(a * 5 + p));
                    let filler: Vec<String> =
                        (0..(20 + (a + p) % 30)).map(|w| letters(a * 97 + p * 13 + w)).collect();
                    format!(
                        r#"{{"context": "Paragraph {a}.{p} says {answer} then {}.", "qas": [
                            {{"question": "What does paragraph {a}.{p} say?", "id": "{a}{p}",
                              "answers": [{{"text": "{answer}", "answer_start": 0}}], "is_impossible": false}},
                            {{"question": "Unanswerable {a}.{p}?", "id": "u{a}{p}", "answers": [], "is_impossible": true}}]}}"#,
                        filler.join(" ")
                    )
                })
                .collect();
            format!(r#"{{"title": "T{a}", "paragraphs": [{}]}}"#, paragraphs.join(","))
        })
        .collect();
    format!(r#"{{"version": "v2.0", "data": [{}]}}"#, articles.join(","))
}

/// Inline data for every task but qa_2: an essay, many words, a small SQuAD.
pub fn inline_sources() -> Sources {
    Sources {
        essays: Some(Essays::from_text(&essay_text(8000)).unwrap()),
        words: Some(many_words()),
        squad: Some(QaSet::squad(&squad_json(200)).unwrap()),
        hotpotqa: None,
    }
}

/// Whether the run must have RULER's data, failing rather than skipping without it:
/// `MOMENTKV_REQUIRE_DATA` set to anything but `0` (empty counts as unset), or, when it is unset,
/// `CI=true`. The rule of `momentkv::hub::require_data`, which this crate cannot depend on.
fn require_data() -> bool {
    match std::env::var("MOMENTKV_REQUIRE_DATA")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(v) => v != "0",
        None => std::env::var("CI").is_ok_and(|ci| ci.eq_ignore_ascii_case("true")),
    }
}

/// Says on the process's stderr, past the harness's capture, that `test` skipped and why.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "skipped {test}: {why}");
}

/// The directory named by `MOMENTKV_RULER_DATA`, or `None` (saying so) when it is not set; where
/// the data is required ([`require_data`]), a failure instead.
pub fn data_dir(test: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MOMENTKV_RULER_DATA").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let why = "MOMENTKV_RULER_DATA is not set; set it to a directory with PaulGrahamEssays.json, \
               squad.json, hotpotqa.json, adjectivelist.txt, nounlist.txt and verblist.txt \
               (`momentkv fetch` gets each: paul-graham-essays, ruler-squad, ruler-hotpotqa, \
               wonderwords-adjectives, wonderwords-nouns, wonderwords-verbs)";
    assert!(
        !require_data(),
        "{test}: {why} (required: MOMENTKV_REQUIRE_DATA or CI=true is set)"
    );
    skip(test, why);
    None
}

/// The text between `start` and the next `end` after it.
pub fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    let to = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?}"))
        + from;
    &text[from..to]
}

/// A needle found in a prompt.
#[derive(Debug)]
pub struct Needle<'a> {
    pub start: usize,
    pub text: &'a str,
    pub key: &'a str,
    pub value: &'a str,
}

/// Every `One of the special magic ... for KEY is: VALUE.` in `input`.
pub fn needles(input: &str) -> Vec<Needle<'_>> {
    const HEAD: &str = "One of the special magic ";
    input
        .match_indices(HEAD)
        .map(|(start, _)| {
            let rest = &input[start..];
            let key_at = rest.find(" for ").unwrap() + 5;
            let value_at = rest.find(" is: ").unwrap() + 5;
            let end = value_at + rest[value_at..].find('.').unwrap() + 1;
            Needle {
                start,
                text: &rest[..end],
                key: &rest[key_at..value_at - 5],
                value: &rest[value_at..end - 1],
            }
        })
        .collect()
}

/// The keys a niah prompt asks for (`a`, or `a, b, c, and d`).
pub fn niah_queries(input: &str) -> Vec<&str> {
    let question = input.rsplit('\n').next().unwrap();
    let query = between(question, " for ", " mentioned in the provided text?");
    match query.rsplit_once(", and ") {
        Some((rest, last)) => rest.split(", ").chain([last]).collect(),
        None => vec![query],
    }
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort();
    items
}

/// A niah sample: each needle appears once; the asked keys' needles hold exactly the outputs;
/// with `depths`, needles in an essay sit where RULER's depth rule puts them.
pub fn check_niah(sample: &Sample, depths: bool) {
    let input = &sample.input;
    let found = needles(input);
    assert!(!found.is_empty(), "no needles");
    let mut answers = Vec::new();
    for key in niah_queries(input) {
        let own: Vec<&Needle> = found.iter().filter(|n| n.key == key).collect();
        assert!(!own.is_empty(), "no needle for {key}");
        for needle in own {
            assert_eq!(input.matches(needle.text).count(), 1, "{}", needle.text);
            answers.push(needle.value.to_string());
        }
    }
    assert_eq!(sorted(&answers), sorted(&sample.outputs));
    let context = &input[input.find('\n').unwrap() + 1..input.rfind('\n').unwrap()];
    let lines = matches!(
        sample.task,
        Task::NiahSingle1 | Task::NiahMultikey2 | Task::NiahMultikey3
    );
    if lines {
        for line in context.lines() {
            let is_needle = found.iter().any(|n| n.text == line);
            let filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
            assert!(is_needle || line == filler, "{line:?}");
        }
    } else if depths {
        let without = |text: &str| {
            found
                .iter()
                .fold(text.to_string(), |t, n| t.replace(n.text, " "))
        };
        for needle in needles(context) {
            let before = split_sentences(&without(&context[..needle.start])).len();
            let after = split_sentences(&without(&context[needle.start..])).len();
            let total = before + after;
            assert!(
                DEPTHS.iter().any(|&d| depth_position(total, d) == before),
                "{before} of {total} sentences before {}",
                needle.text
            );
        }
    }
}

/// `1. a 2. b ...` back into words.
pub fn numbered(list: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut rest = list.strip_prefix("1. ").expect("a numbered list");
    let mut next = 2;
    while let Some(at) = rest.find(&format!(" {next}. ")) {
        words.push(&rest[..at]);
        rest = &rest[at + format!(" {next}. ").len()..];
        next += 1;
    }
    words.push(rest);
    words
}

fn counts<'a>(words: &[&'a str]) -> HashMap<&'a str, usize> {
    let mut counts = HashMap::new();
    for word in words {
        *counts.entry(*word).or_insert(0) += 1;
    }
    counts
}

/// `top` are the words seen more often in `words` than any other.
fn assert_most_frequent(words: &[&str], top: &[&str]) {
    let counts = counts(words);
    let least_top = top
        .iter()
        .map(|w| counts.get(w).copied().unwrap_or(0))
        .min()
        .unwrap();
    let most_other = counts
        .iter()
        .filter(|(w, _)| !top.contains(w))
        .map(|(_, &c)| c)
        .max()
        .unwrap_or(0);
    assert!(
        least_top > most_other,
        "{top:?}: {least_top} vs {most_other}"
    );
}

/// A vt chain: `VAR a = value`, `VAR b = VAR a `, ... each once, in order.
fn assert_chain(text: &str, names: &[&str], value: &str) {
    let mut lines = vec![format!("VAR {} = {value} ", names[0])];
    lines.extend(
        names
            .windows(2)
            .map(|p| format!("VAR {} = VAR {} ", p[1], p[0])),
    );
    let at: Vec<usize> = lines
        .iter()
        .map(|line| {
            assert_eq!(text.matches(line.as_str()).count(), 1, "{line:?}");
            text.find(line.as_str()).unwrap()
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "chain out of order");
    assert_eq!(text.matches("VAR ").count(), 2 * names.len() - 1);
}

/// A vt sample: the example's chain and the sample's, each in order; the outputs are the
/// sample's five names.
pub fn check_vt(sample: &Sample) {
    let input = &sample.input;
    assert!(input.starts_with(" Memorize and track the chain(s) of variable assignment"));
    let split = input
        .find("\n\n\n\nMemorize")
        .expect("the example, then the prompt");
    let (example, prompt) = (&input[..split], &input[split + 4..]);
    let example_names: Vec<&str> = example
        .rsplit("they are: ")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(example_names.len(), 5);
    assert_chain(
        example,
        &example_names,
        between(example, "assigned the value ", " in the text"),
    );
    let names: Vec<&str> = sample.outputs.iter().map(String::as_str).collect();
    assert_eq!(names.len(), 5);
    assert!(names
        .iter()
        .all(|n| n.len() == 5 && n.bytes().all(|b| b.is_ascii_uppercase())));
    assert_chain(
        prompt,
        &names,
        between(prompt, "assigned the value ", " in the text"),
    );
    assert!(prompt.ends_with(", they are: "));
}

const CWE_HEAD: &str = "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n";

/// A cwe sample: a solved example whose answer is its ten most common words, then the list
/// whose ten most common words are the outputs.
pub fn check_cwe(sample: &Sample) {
    let parts: Vec<&str> = sample.input.split(CWE_HEAD).collect();
    assert_eq!(parts.len(), 3, "an example and a prompt");
    let (list, answer) = parts[1].split_once("\nQuestion:").unwrap();
    let answer = answer.rsplit("are:").next().unwrap().trim_end_matches('\n');
    assert_most_frequent(&numbered(list), &numbered(answer));
    let list = parts[2].split_once("\nQuestion:").unwrap().0;
    let outputs: Vec<&str> = sample.outputs.iter().map(String::as_str).collect();
    assert_eq!(outputs.len(), 10);
    assert_most_frequent(&numbered(list), &outputs);
}

/// An fwe sample: `...` is the most frequent word and the outputs the next three.
pub fn check_fwe(sample: &Sample) {
    let text = between(
        &sample.input,
        "Find the three most frequently appeared coded words. ",
        "\nQuestion:",
    );
    let words: Vec<&str> = text.split(' ').collect();
    assert_most_frequent(&words, &["..."]);
    let rest: Vec<&str> = words.into_iter().filter(|w| *w != "...").collect();
    let outputs: Vec<&str> = sample.outputs.iter().map(String::as_str).collect();
    assert_eq!(outputs.len(), 3);
    assert_most_frequent(&rest, &outputs);
}

/// A qa sample: it asks question `index`, holds all of the question's documents, numbered from 1,
/// and (unless it is yes or no) an answer appears in them.
pub fn check_qa(sample: &Sample, set: &QaSet) {
    let question = &set.questions()[sample.index];
    assert!(sample
        .input
        .ends_with(&format!("Question: {} Answer:", question.question)));
    assert_eq!(sample.outputs, question.answers);
    let documents = sample.input.matches("\n\nDocument ").count();
    assert!(sample
        .input
        .contains(&format!("\n\nDocument {documents}:\n")));
    assert!(!sample
        .input
        .contains(&format!("\n\nDocument {}:\n", documents + 1)));
    let own: Vec<&str> = question
        .documents
        .iter()
        .map(|&d| set.documents()[d].as_str())
        .collect();
    for document in &own {
        assert!(
            sample.input.contains(&format!(":\n{document}\n\n")),
            "{document}"
        );
    }
    let yes_no = sample.outputs.iter().all(|a| a == "yes" || a == "no");
    assert!(
        yes_no
            || sample
                .outputs
                .iter()
                .any(|a| own.iter().any(|d| d.contains(a.as_str())))
    );
}

/// The checks for `sample`'s task (qa needs its data set).
pub fn check(sample: &Sample, sources: &Sources, depths: bool) {
    match sample.task {
        Task::Vt => check_vt(sample),
        Task::Cwe => check_cwe(sample),
        Task::Fwe => check_fwe(sample),
        Task::Qa1 => check_qa(sample, sources.squad.as_ref().unwrap()),
        Task::Qa2 => check_qa(sample, sources.hotpotqa.as_ref().unwrap()),
        _ => check_niah(sample, depths),
    }
}
