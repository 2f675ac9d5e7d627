//! RULER's scoring (`eval/evaluate.py` and `eval/synthetic/constants.py`): the answer is cleaned
//! up, then each reference is looked for in it as a case-insensitive substring. Scores are
//! percentages, 0 to 100, as RULER's per-sample functions give them; a task's score is their mean.

/// Python's `str.isspace()`: Unicode white space and the separators U+001C to U+001F.
pub(crate) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// RULER's `postprocess_pred`: strip white space, turn every control character U+0000 to U+001F
/// into a newline, strip again.
pub fn postprocess(prediction: &str) -> String {
    prediction
        .trim_matches(is_python_space)
        .chars()
        .map(|c| if c <= '\u{1f}' { '\n' } else { c })
        .collect::<String>()
        .trim_matches(is_python_space)
        .to_string()
}

/// Which references of `references` occur in `prediction`, ignoring case.
fn found<'a, R: AsRef<str>>(
    prediction: &str,
    references: &'a [R],
) -> impl Iterator<Item = bool> + 'a {
    let prediction = prediction.to_lowercase();
    references
        .iter()
        .map(move |r| prediction.contains(&r.as_ref().to_lowercase()))
}

/// `string_match_all_per_sample`: the percentage of the references found in the prediction.
/// No references score 0 (RULER would divide by zero).
pub fn string_match_all<R: AsRef<str>>(prediction: &str, references: &[R]) -> f64 {
    if references.is_empty() {
        return 0.0;
    }
    let hits = found(prediction, references).filter(|&hit| hit).count();
    hits as f64 / references.len() as f64 * 100.0
}

/// `string_match_part_per_sample`: 100 when any reference is found in the prediction, else 0.
pub fn string_match_part<R: AsRef<str>>(prediction: &str, references: &[R]) -> f64 {
    if found(prediction, references).any(|hit| hit) {
        100.0
    } else {
        0.0
    }
}

/// How a task scores an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// [`string_match_all`]: credit for each reference found (niah, vt, cwe, fwe).
    All,
    /// [`string_match_part`]: full credit for any reference found (qa).
    Part,
}

impl Metric {
    /// RULER's name for the metric.
    pub fn name(self) -> &'static str {
        match self {
            Metric::All => "string_match_all",
            Metric::Part => "string_match_part",
        }
    }

    /// The score, 0 to 100, of the model's raw answer: [`postprocess`]ed, then matched.
    pub fn score<R: AsRef<str>>(self, answer: &str, references: &[R]) -> f64 {
        let prediction = postprocess(answer);
        match self {
            Metric::All => string_match_all(&prediction, references),
            Metric::Part => string_match_part(&prediction, references),
        }
    }
}
