//! Question answering (RULER's `qa.py`): a question's paragraphs among distractor paragraphs
//! from the same data set, as numbered documents. Sample `i` asks question `i`.

use std::ops::RangeInclusive;

use crate::error::Error;
use crate::qa_data::{QaSet, Question};
use crate::rng::{shuffle_fixed, Rng};
use crate::sample::Draft;
use crate::task::Task;
use crate::templates::{fill, QA};

/// A qa sample with its distractors' order drawn.
pub(crate) struct Qa<'a> {
    set: &'a QaSet,
    question: &'a Question,
    /// The question's related paragraphs in random order.
    related: Vec<usize>,
    /// Every other document, in random order.
    others: Vec<usize>,
    seed: u64,
}

impl<'a> Qa<'a> {
    pub fn new(
        task: Task,
        set: &'a QaSet,
        index: usize,
        seed: u64,
        mut rng: Rng,
    ) -> Result<Self, Error> {
        let question = set.questions().get(index).ok_or(Error::IndexOutOfRange {
            task,
            index,
            available: set.questions().len(),
        })?;
        let mut related = question.related.clone();
        rng.shuffle(&mut related);
        let mut taken = vec![false; set.documents().len()];
        for &d in question.documents.iter().chain(&question.related) {
            taken[d] = true;
        }
        let mut others: Vec<usize> = (0..taken.len()).filter(|&d| !taken[d]).collect();
        rng.shuffle(&mut others);
        Ok(Self {
            set,
            question,
            related,
            others,
            seed,
        })
    }

    /// RULER's choice of `n` documents: the question's own, then (a random sample of) its
    /// related ones, then a random sample of the rest; all of them, sorted, when `n` reaches the
    /// data set's size.
    fn documents(&self, n: usize) -> Vec<usize> {
        let all = self.set.documents().len();
        if n >= all {
            return (0..all).collect();
        }
        let own = &self.question.documents;
        let extra = n.saturating_sub(own.len());
        let mut chosen = own.clone();
        if extra <= self.related.len() {
            chosen.extend_from_slice(&self.related[..extra]);
        } else {
            chosen.extend_from_slice(&self.question.related);
            let rest = (extra - self.question.related.len()).min(self.others.len());
            chosen.extend_from_slice(&self.others[..rest]);
        }
        chosen
    }
}

impl Draft for Qa<'_> {
    fn sizes(&self) -> RangeInclusive<usize> {
        let own = self.question.documents.len();
        own..=self.set.documents().len().max(own)
    }

    fn prompt(&self, n: usize) -> String {
        let mut documents = self.documents(n);
        shuffle_fixed(self.seed, &mut documents);
        let context = documents
            .iter()
            .enumerate()
            .map(|(i, &d)| format!("Document {}:\n{}", i + 1, self.set.documents()[d]))
            .collect::<Vec<_>>()
            .join("\n\n");
        fill(
            QA,
            &[("context", &context), ("query", &self.question.question)],
        )
    }

    fn outputs(self) -> Vec<String> {
        self.question.answers.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> QaSet {
        QaSet::squad(
            r#"{"data": [
                {"paragraphs": [
                    {"context": "P0", "qas": [{"question": "Q?", "answers": [{"text": "x"}]}]},
                    {"context": "P1", "qas": []}, {"context": "P2", "qas": []}]},
                {"paragraphs": [{"context": "P3", "qas": []}, {"context": "P4", "qas": []}]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn documents_come_own_first_then_related_then_others() {
        let set = set();
        let qa = Qa::new(Task::Qa1, &set, 0, 42, Rng::new(1)).unwrap();
        assert_eq!(qa.documents(1), [0]);
        let two = qa.documents(2);
        assert!(two[0] == 0 && [1, 2].contains(&two[1]), "{two:?}");
        let four = qa.documents(4);
        assert_eq!(
            four[..3],
            [0, 1, 2],
            "all related paragraphs, in the article's order"
        );
        assert!([3, 4].contains(&four[3]));
        assert_eq!(qa.documents(5), [0, 1, 2, 3, 4]);
        let prompt = qa.prompt(3);
        assert_eq!(prompt.matches("Document ").count(), 3);
        assert!(prompt.contains("\nP0") && prompt.contains("Document 3:\n"));
        assert!(prompt.ends_with("Question: Q? Answer:"));
    }

    #[test]
    fn a_question_past_the_end_is_an_error() {
        let set = set();
        let err = Qa::new(Task::Qa1, &set, 1, 42, Rng::new(1)).err().unwrap();
        assert!(err.to_string().contains("1 questions"), "{err}");
    }
}
