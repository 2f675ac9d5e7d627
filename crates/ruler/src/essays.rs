//! The essay haystack: RULER's `PaulGrahamEssays.json`, cut into words and sentences.

use std::path::Path;

use crate::error::Error;
use crate::sentences::{sentence_starts, words};

/// The Paul Graham essays (`PaulGrahamEssays.json`, `{"text": ...}`). RULER's haystack unit is a
/// word: the text's first `n` words joined by single spaces, then split into sentences.
#[derive(Debug, Clone)]
pub struct Essays {
    /// The text with its white space runs made single spaces, trimmed.
    text: String,
    /// The byte offset where each word ends.
    word_ends: Vec<usize>,
    /// The byte offset where each sentence starts.
    sentence_starts: Vec<usize>,
}

const EXPECTED: &str = "RULER's essay JSON ({\"text\": ...})";

impl Essays {
    /// Reads `PaulGrahamEssays.json`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let json = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        Self::from_json(&json).map_err(|e| e.at(path))
    }

    /// Parses the contents of `PaulGrahamEssays.json`.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        #[derive(serde::Deserialize)]
        struct File {
            text: String,
        }
        let file: File = serde_json::from_str(json).map_err(|e| Error::Invalid {
            expected: EXPECTED,
            reason: e.to_string(),
        })?;
        Self::from_text(&file.text)
    }

    /// Essays from plain text.
    pub fn from_text(text: &str) -> Result<Self, Error> {
        let mut joined = String::with_capacity(text.len());
        let mut word_ends = Vec::new();
        for (_, word) in words(text) {
            if !joined.is_empty() {
                joined.push(' ');
            }
            joined.push_str(word);
            word_ends.push(joined.len());
        }
        if word_ends.is_empty() {
            return Err(Error::Invalid {
                expected: EXPECTED,
                reason: "the essay text has no words".into(),
            });
        }
        let sentence_starts = sentence_starts(&joined);
        Ok(Self {
            text: joined,
            word_ends,
            sentence_starts,
        })
    }

    /// How many words the essays have.
    pub fn words(&self) -> usize {
        self.word_ends.len()
    }

    /// The first `words` words (at least one, at most all), as sentences.
    pub(crate) fn cut(&self, words: usize) -> Cut<'_> {
        let end = self.word_ends[words.clamp(1, self.words()) - 1];
        let sentences = self.sentence_starts.partition_point(|&start| start < end);
        Cut {
            text: &self.text[..end],
            starts: &self.sentence_starts[..sentences],
        }
    }
}

/// The start of the essays, as sentences.
pub(crate) struct Cut<'a> {
    text: &'a str,
    starts: &'a [usize],
}

impl Cut<'_> {
    /// How many sentences there are.
    pub fn sentences(&self) -> usize {
        self.starts.len()
    }

    /// Sentences `from..to`, joined by single spaces (empty when there are none).
    pub fn span(&self, from: usize, to: usize) -> &str {
        if from >= to {
            return "";
        }
        let end = self
            .starts
            .get(to)
            .map_or(self.text.len(), |&next| next - 1);
        &self.text[self.starts[from]..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentences::split_sentences;

    const TEXT: &str = "April 2012A nurse made\na list.  Her list seems   plausible. \
                        I could see myself.If you had to compress it? Be happy!\n\n";

    #[test]
    fn white_space_is_normalised_and_words_are_counted() {
        let essays = Essays::from_text(TEXT).unwrap();
        assert_eq!(essays.words(), 21);
        assert_eq!(essays.cut(3).text, "April 2012A nurse");
        assert_eq!(essays.cut(0).text, "April");
        assert!(essays.cut(100).text.ends_with("compress it? Be happy!"));
    }

    #[test]
    fn cuts_have_the_sentences_of_their_text() {
        let essays = Essays::from_text(TEXT).unwrap();
        for n in 1..=essays.words() {
            let cut = essays.cut(n);
            let expected = split_sentences(cut.text);
            let spans: Vec<&str> = (0..cut.sentences()).map(|i| cut.span(i, i + 1)).collect();
            assert_eq!(spans, expected, "first {n} words");
            assert_eq!(cut.span(0, cut.sentences()), cut.text);
        }
        let cut = essays.cut(100);
        assert_eq!(cut.sentences(), 4);
        assert_eq!(
            cut.span(1, 3),
            "Her list seems plausible. I could see myself.If you had to compress it?"
        );
        assert_eq!(cut.span(2, 2), "");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(Essays::from_json("{\"text\": \" \\n \"}").is_err());
        let err = Essays::from_json("{\"essays\": []}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("essay JSON"), "{err}");
    }
}
