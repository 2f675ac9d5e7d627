//! wonderwords' word lists (`adjectivelist.txt`, `nounlist.txt`, `verblist.txt`), from which
//! RULER makes niah's word keys (`adjective-noun`) and cwe's words.

use std::path::Path;

use crate::error::Error;
use crate::rng::Rng;

/// The three word lists, read as RULER reads them: one word a line, trailing white space
/// stripped (blank lines are skipped).
#[derive(Debug, Clone)]
pub struct WordLists {
    /// The distinct adjectives, sorted.
    adjectives: Vec<String>,
    /// The distinct nouns, sorted.
    nouns: Vec<String>,
    /// cwe's pool, `sorted(set(nouns + adjectives + verbs))`.
    pool: Vec<String>,
}

impl WordLists {
    /// Reads the three files.
    pub fn load(adjectives: &Path, nouns: &Path, verbs: &Path) -> Result<Self, Error> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.into(),
                source,
            })
        };
        let (a, n, v) = (read(adjectives)?, read(nouns)?, read(verbs)?);
        let check = |text: &str, path: &Path| parse(text).map_err(|e| e.at(path));
        Ok(Self::from_words(
            check(&a, adjectives)?,
            check(&n, nouns)?,
            check(&v, verbs)?,
        ))
    }

    /// Word lists from the files' contents.
    pub fn from_lines(adjectives: &str, nouns: &str, verbs: &str) -> Result<Self, Error> {
        Ok(Self::from_words(
            parse(adjectives)?,
            parse(nouns)?,
            parse(verbs)?,
        ))
    }

    fn from_words(adjectives: Vec<String>, nouns: Vec<String>, verbs: Vec<String>) -> Self {
        let distinct = |mut words: Vec<String>| {
            words.sort_unstable();
            words.dedup();
            words
        };
        let pool = distinct([&nouns[..], &adjectives, &verbs].concat());
        Self {
            adjectives: distinct(adjectives),
            nouns: distinct(nouns),
            pool,
        }
    }

    /// How many distinct `adjective-noun` keys there are.
    pub fn keys(&self) -> usize {
        self.adjectives.len() * self.nouns.len()
    }

    /// RULER's word key, `random.choice` over the distinct `adjective-noun` pairs: an adjective
    /// and a noun drawn independently (the wonderwords lists give no pair twice).
    pub(crate) fn key(&self, rng: &mut Rng) -> String {
        let adjective = &self.adjectives[rng.below(self.adjectives.len())];
        let noun = &self.nouns[rng.below(self.nouns.len())];
        format!("{adjective}-{noun}")
    }

    /// The distinct adjectives, nouns and verbs, sorted: cwe draws its words from these.
    pub fn pool(&self) -> &[String] {
        &self.pool
    }
}

/// One word a line, trailing white space stripped, blank lines skipped; an empty list is an error.
fn parse(text: &str) -> Result<Vec<String>, Error> {
    let words: Vec<String> = text
        .lines()
        .map(|line| line.trim_end_matches(crate::score::is_python_space))
        .filter(|word| !word.is_empty())
        .map(String::from)
        .collect();
    if words.is_empty() {
        return Err(Error::Invalid {
            expected: "a word list (one word a line)",
            reason: "it has no words".into(),
        });
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> WordLists {
        WordLists::from_lines(
            "nasty \nblue-eyed\nad hoc\nnasty\n",
            "ATM\ncontact lens\ndog\n",
            "run\ndog\n",
        )
        .unwrap()
    }

    #[test]
    fn lines_are_stripped_and_duplicates_counted_once() {
        let words = lists();
        assert_eq!(words.adjectives, ["ad hoc", "blue-eyed", "nasty"]);
        assert_eq!(words.nouns, ["ATM", "contact lens", "dog"]);
        assert_eq!(words.keys(), 9);
        assert_eq!(
            words.pool(),
            [
                "ATM",
                "ad hoc",
                "blue-eyed",
                "contact lens",
                "dog",
                "nasty",
                "run"
            ]
        );
    }

    #[test]
    fn keys_join_an_adjective_and_a_noun_and_reach_every_pair() {
        let words = lists();
        let mut rng = Rng::new(5);
        let mut seen: Vec<String> = (0..400).map(|_| words.key(&mut rng)).collect();
        seen.sort_unstable();
        seen.dedup();
        let mut all: Vec<String> = ["ad hoc", "blue-eyed", "nasty"]
            .iter()
            .flat_map(|a| ["ATM", "contact lens", "dog"].map(|n| format!("{a}-{n}")))
            .collect();
        all.sort_unstable();
        assert_eq!(seen, all);
    }

    #[test]
    fn an_empty_list_is_an_error() {
        let err = WordLists::from_lines("big\n", " \n\n", "run\n").unwrap_err();
        assert!(err.to_string().contains("no words"), "{err}");
    }
}
