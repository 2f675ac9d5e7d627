//! A rule-based sentence splitter standing in for nltk's `sent_tokenize` (Punkt), which RULER
//! runs on the essay haystack to place needles between sentences.
//!
//! A sentence ends at a run of `.`, `!` or `?`, followed by any closing quotes or brackets, then
//! white space. A lone `.` after an abbreviation does not end one: a single letter (an initial,
//! `J.`), a word with a dot inside (`e.g.`, `U.S.`), or a title such as `Mr.` or `Dr.`.
//! Punkt learns its abbreviations from a corpus and also weighs the next word's case, so it can
//! split an essay differently in a few places; like Punkt, this never splits without white
//! space (`mistakes.If` stays one sentence). Whether a place is a boundary depends only on the
//! text up to the white space after it, so the sentences of a prefix are those of the whole
//! text, the last one cut short.

use crate::score::is_python_space;

/// Abbreviations after which a `.` does not end a sentence, lowercase and without the dot.
const ABBREVIATIONS: [&str; 17] = [
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "cf", "inc", "ltd", "corp",
    "approx", "fig", "vol",
];

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '}' | '”' | '’' | '»')
}

/// Whether `word` followed by a `.` is an abbreviation rather than a sentence's last word.
fn is_abbreviation(word: &str) -> bool {
    let word = word.trim_start_matches(|c: char| !c.is_alphanumeric());
    let mut chars = word.chars();
    let single_letter =
        matches!((chars.next(), chars.next()), (Some(c), None) if c.is_alphabetic());
    single_letter
        || word.contains('.')
        || ABBREVIATIONS
            .iter()
            .any(|abbreviation| word.eq_ignore_ascii_case(abbreviation))
}

/// The words of `text` (split at Python's white space), with their byte offsets.
pub(crate) fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(is_python_space)
        .filter(|word| !word.is_empty())
        .map(move |word| (word.as_ptr() as usize - text.as_ptr() as usize, word))
}

/// Whether a sentence ends with `word` when white space follows it.
fn ends_sentence(word: &str) -> bool {
    let body = word.trim_end_matches(is_closer);
    let stem = body.trim_end_matches(['.', '!', '?']);
    match &body[stem.len()..] {
        "" => false,
        "." => !is_abbreviation(stem),
        _ => true,
    }
}

/// Byte offsets where the sentences of `text` start (none for blank text).
pub(crate) fn sentence_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut open = false;
    for (start, word) in words(text) {
        if !open {
            starts.push(start);
        }
        open = !ends_sentence(word);
    }
    starts
}

/// `text` split into sentences, trimmed, by the rules in this module's documentation.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let starts = sentence_starts(text);
    starts
        .iter()
        .enumerate()
        .map(|(k, &start)| {
            let end = starts.get(k + 1).copied().unwrap_or(text.len());
            text[start..end].trim_end_matches(is_python_space)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::split_sentences;

    #[test]
    fn splits_after_terminators_followed_by_space() {
        assert_eq!(
            split_sentences("One two. Three? Four!  Five"),
            ["One two.", "Three?", "Four!", "Five"]
        );
        assert_eq!(
            split_sentences("He said \"stop.\" Then (he left.) Done"),
            ["He said \"stop.\"", "Then (he left.)", "Done"]
        );
        assert_eq!(
            split_sentences("Wait... what?! Yes."),
            ["Wait...", "what?!", "Yes."]
        );
    }

    #[test]
    fn does_not_split_without_space_or_after_abbreviations() {
        assert_eq!(
            split_sentences("April 2012A list of mistakes.If you had"),
            ["April 2012A list of mistakes.If you had"]
        );
        assert_eq!(
            split_sentences("Mr. Smith met Dr. J. Doe, e.g. in the U.S. today. Next"),
            ["Mr. Smith met Dr. J. Doe, e.g. in the U.S. today.", "Next"]
        );
    }

    #[test]
    fn blank_text_has_no_sentences() {
        assert!(split_sentences("").is_empty());
        assert!(split_sentences(" \n ").is_empty());
        assert_eq!(split_sentences("  lone words  "), ["lone words"]);
    }
}
