use std::path::Path;

use momentkv::tokenizer::Tokenizer;
use momentkv::Error;

/// Essay text to hide things in: RULER's `PaulGrahamEssays.json` (`{"text": ...}`).
pub struct Essays {
    text: String,
}

/// Characters of essay text tokenized per wanted token: generous, so one pass suffices.
const CHARS_PER_TOKEN: usize = 8;

impl Essays {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.into(),
            reason: e.to_string(),
        })?;
        #[derive(serde::Deserialize)]
        struct File {
            text: String,
        }
        let file: File = serde_json::from_slice(&bytes).map_err(|e| Error::Io {
            path: path.into(),
            reason: format!("not RULER's essay JSON ({{\"text\": ...}}): {e}"),
        })?;
        Self::from_text(file.text)
    }

    pub fn from_text(text: String) -> Result<Self, Error> {
        if text.trim().is_empty() {
            return Err(Error::Unsupported("the essay text is empty".into()));
        }
        Ok(Self { text })
    }

    /// The essays' whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first `tokens` tokens of the essays (repeated if they are too short), as text.
    pub fn cut(&self, tokenizer: &Tokenizer, tokens: usize) -> Result<String, Error> {
        let want_chars = tokens * CHARS_PER_TOKEN;
        let mut source = String::new();
        while source.len() < want_chars {
            source.push_str(&self.text);
        }
        let end = (0..=want_chars)
            .rev()
            .find(|&i| source.is_char_boundary(i))
            .unwrap_or(0);
        let ids = tokenizer.encode(&source[..end], false)?;
        Ok(tokenizer.decode(&ids[..tokens.min(ids.len())])?)
    }
}

/// The largest sentence boundary (just after ". ") at or before `at`, or `at` itself when the
/// text before it has none.
pub fn sentence_boundary(text: &str, at: usize) -> usize {
    let at = (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[..at].rfind(". ").map_or(at, |i| i + 2)
}

#[cfg(test)]
mod tests {
    use super::sentence_boundary;

    #[test]
    fn boundaries_fall_after_a_full_stop() {
        let t = "One. Two three. Four";
        assert_eq!(sentence_boundary(t, 12), 5);
        assert_eq!(sentence_boundary(t, 18), 16);
        assert_eq!(sentence_boundary(t, 3), 3);
        assert_eq!(&t[sentence_boundary(t, 100)..], "Four");
    }
}
