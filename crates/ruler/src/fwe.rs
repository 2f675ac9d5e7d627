//! Frequent words extraction (RULER's `freq_words_extraction.py`): random six-letter "coded"
//! words with Zipf frequencies (α = 2); the most frequent is `...`, noise, and the answer is the
//! next three.

use std::collections::HashSet;
use std::ops::RangeInclusive;

use crate::error::Error;
use crate::rng::{shuffle_fixed, Rng};
use crate::sample::Draft;
use crate::task::Task;
use crate::templates::{fill, FWE};

/// Letters in a coded word.
const WORD_LENGTH: usize = 6;

/// ζ(2) = π²/6, the normaliser of the Zipf frequencies with α = 2.
const ZETA_2: f64 = std::f64::consts::PI * std::f64::consts::PI / 6.0;

/// RULER's vocabulary holds `target / TOKENS_PER_WORD` words.
const TOKENS_PER_WORD: usize = 50;

/// The answer takes ranks 2 to 4, so the vocabulary needs at least four words.
const MIN_VOCABULARY: usize = 4;

/// The fewest (nominal) words: from here on ranks 1 to 5 have strictly falling counts, so the
/// three words after `...` are unambiguous (rank 4's count exceeds rank 5's once
/// N (1/16 − 1/25) / ζ(2) ≥ 1).
const MIN_WORDS: usize = 74;

const LOWERCASE: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// How often the word of rank `rank` (from 1) comes in a text of `words` nominal words:
/// `int(N * k**-α / zeta(α))`.
fn count(words: usize, rank: usize) -> usize {
    (words as f64 * (rank as f64).powf(-2.0) / ZETA_2) as usize
}

/// An fwe sample with its vocabulary drawn.
pub(crate) struct Fwe {
    /// By rank: `...` first.
    vocabulary: Vec<String>,
    seed: u64,
    sizes: RangeInclusive<usize>,
}

impl Fwe {
    pub fn new(target: usize, seed: u64, mut rng: Rng) -> Result<Self, Error> {
        let size = target / TOKENS_PER_WORD;
        if size < MIN_VOCABULARY {
            return Err(Error::TargetTooSmall {
                task: Task::Fwe,
                target,
                needed: MIN_VOCABULARY * TOKENS_PER_WORD,
            });
        }
        let mut distinct = HashSet::with_capacity(size);
        while distinct.len() < size {
            distinct.insert(rng.letters(LOWERCASE, WORD_LENGTH));
        }
        let mut vocabulary: Vec<String> = distinct.into_iter().collect();
        vocabulary.sort_unstable();
        shuffle_fixed(seed, &mut vocabulary);
        vocabulary[0] = "...".into();
        Ok(Self {
            vocabulary,
            seed,
            sizes: MIN_WORDS..=(2 * target).max(MIN_WORDS),
        })
    }
}

impl Draft for Fwe {
    fn sizes(&self) -> RangeInclusive<usize> {
        self.sizes.clone()
    }

    fn prompt(&self, words: usize) -> String {
        let mut text: Vec<&str> = Vec::with_capacity(words);
        for (rank, word) in self.vocabulary.iter().enumerate() {
            text.extend(std::iter::repeat_n(word.as_str(), count(words, rank + 1)));
        }
        shuffle_fixed(self.seed, &mut text);
        fill(FWE, &[("context", &text.join(" "))])
    }

    fn outputs(self) -> Vec<String> {
        self.vocabulary[1..4].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_zipf_like_numpy() {
        assert_eq!(
            (1..=5).map(|k| count(1000, k)).collect::<Vec<_>>(),
            [607, 151, 67, 37, 24]
        );
        assert!(count(MIN_WORDS, 4) > count(MIN_WORDS, 5));
        assert_eq!(
            count(MIN_WORDS - 32, 4),
            count(MIN_WORDS - 32, 5),
            "42 words tie"
        );
    }
}
