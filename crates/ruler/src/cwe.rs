//! Common words extraction (RULER's `common_words_extraction.py`): a numbered list where ten
//! words come 30 times and the rest 3 times (6 and 1 below 4096 tokens); the answer is the ten.
//! A solved example list comes first.

use std::ops::RangeInclusive;

use crate::error::Error;
use crate::rng::{shuffle_fixed, Rng};
use crate::sample::Draft;
use crate::templates::{fill, CWE};
use crate::words::WordLists;

/// How many common words there are.
const COMMON: usize = 10;

/// Below this target RULER uses a smaller example and fewer repeats.
const SHORT_TARGET: usize = 4096;

/// How often a list repeats each common word and each other word.
#[derive(Debug, Clone, Copy)]
struct Shape {
    common_repeats: usize,
    uncommon_repeats: usize,
}

impl Shape {
    const fn new(common_repeats: usize, uncommon_repeats: usize) -> Self {
        Self {
            common_repeats,
            uncommon_repeats,
        }
    }
}

/// `common * common_repeats + uncommon * uncommon_repeats`, shuffled as RULER does.
fn word_list<'a>(words: &[&'a str], shape: Shape, seed: u64) -> Vec<&'a str> {
    let (common, uncommon) = words.split_at(COMMON.min(words.len()));
    let mut list = Vec::with_capacity(
        common.len() * shape.common_repeats + uncommon.len() * shape.uncommon_repeats,
    );
    for _ in 0..shape.common_repeats {
        list.extend_from_slice(common);
    }
    for _ in 0..shape.uncommon_repeats {
        list.extend_from_slice(uncommon);
    }
    shuffle_fixed(seed, &mut list);
    list
}

/// `1. word 2. word ...`
fn numbered(words: &[&str]) -> String {
    words
        .iter()
        .enumerate()
        .map(|(i, word)| format!("{}. {word}", i + 1))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A cwe sample with its example and word order drawn.
pub(crate) struct Cwe<'a> {
    /// The solved example and a newline, put before the prompt.
    example: String,
    /// The pool in random order: a list of `n` words takes the first `n`, the first ten common.
    words: Vec<&'a str>,
    shape: Shape,
    seed: u64,
}

impl<'a> Cwe<'a> {
    pub fn new(
        lists: &'a WordLists,
        target: usize,
        seed: u64,
        mut rng: Rng,
    ) -> Result<Self, Error> {
        let (example_size, example_shape, shape) = if target < SHORT_TARGET {
            (20, Shape::new(3, 1), Shape::new(6, 1))
        } else {
            (40, Shape::new(10, 3), Shape::new(30, 3))
        };
        let pool = lists.pool();
        if pool.len() < example_size {
            return Err(Error::Invalid {
                expected: "word lists for cwe",
                reason: format!(
                    "they have {} distinct words; the example alone takes {}",
                    pool.len(),
                    example_size
                ),
            });
        }
        let example_words: Vec<&str> = rng
            .sample(pool.len(), example_size)
            .into_iter()
            .map(|i| pool[i].as_str())
            .collect();
        let example = format!(
            "{}{}\n",
            fill(
                CWE,
                &[(
                    "context",
                    &numbered(&word_list(&example_words, example_shape, seed))
                )]
            ),
            numbered(&example_words[..COMMON])
        );
        let mut words: Vec<&str> = pool.iter().map(String::as_str).collect();
        rng.shuffle(&mut words);
        Ok(Self {
            example,
            words,
            shape,
            seed,
        })
    }
}

impl Draft for Cwe<'_> {
    fn sizes(&self) -> RangeInclusive<usize> {
        COMMON..=self.words.len()
    }

    fn prompt(&self, words: usize) -> String {
        let list = word_list(&self.words[..words], self.shape, self.seed);
        format!(
            "{}{}",
            self.example,
            fill(CWE, &[("context", &numbered(&list))])
        )
    }

    fn outputs(self) -> Vec<String> {
        self.words[..COMMON].iter().map(|w| w.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_repeat_common_and_uncommon_words_and_number_them() {
        let words = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
        let shape = Shape::new(3, 2);
        let list = word_list(&words, shape, 42);
        assert_eq!(list.len(), 10 * 3 + 2 * 2);
        for (i, word) in words.iter().enumerate() {
            let expected = if i < 10 { 3 } else { 2 };
            assert_eq!(
                list.iter().filter(|w| *w == word).count(),
                expected,
                "{word}"
            );
        }
        assert_eq!(
            list,
            word_list(&words, shape, 42),
            "RULER's shuffle is fixed by the seed"
        );
        assert_eq!(numbered(&["x", "y z"]), "1. x 2. y z");
    }
}
