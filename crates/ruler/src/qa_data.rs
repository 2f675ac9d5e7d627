//! The QA data sets behind qa_1 (SQuAD v2.0 dev, `squad.json`) and qa_2 (HotpotQA dev in the
//! distractor setting, `hotpotqa.json`), read as RULER's `read_squad` and `read_hotpotqa` read them.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::Error;

/// One question and where its answer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The question as asked in the prompt.
    pub question: String,
    /// The reference answers (SQuAD lists one per annotator, repeats included).
    pub answers: Vec<String>,
    /// The documents that come with the question: its paragraph (SQuAD), or its gold and
    /// distractor paragraphs (HotpotQA). Every prompt holds all of them.
    pub documents: Vec<usize>,
    /// The other paragraphs of the question's article (SQuAD; empty for HotpotQA): the first
    /// distractors a prompt draws.
    pub related: Vec<usize>,
}

/// A QA data set: its distinct documents, sorted, and its answerable questions in file order.
#[derive(Debug, Clone)]
pub struct QaSet {
    documents: Vec<String>,
    questions: Vec<Question>,
}

/// Distinct texts, sorted, and a lookup from text to index.
fn index(texts: impl Iterator<Item = String>) -> (Vec<String>, HashMap<String, usize>) {
    let mut documents: Vec<String> = texts.collect();
    documents.sort_unstable();
    documents.dedup();
    let lookup = documents
        .iter()
        .enumerate()
        .map(|(i, d)| (d.clone(), i))
        .collect();
    (documents, lookup)
}

const SQUAD: &str = "SQuAD v2.0 JSON ({\"data\": [{\"paragraphs\": ...}]})";
const HOTPOTQA: &str = "HotpotQA JSON ([{\"question\", \"answer\", \"context\"}, ...])";

impl QaSet {
    /// Reads `squad.json`.
    pub fn load_squad(path: &Path) -> Result<Self, Error> {
        Self::squad(&read(path)?).map_err(|e| e.at(path))
    }

    /// Reads `hotpotqa.json`.
    pub fn load_hotpotqa(path: &Path) -> Result<Self, Error> {
        Self::hotpotqa(&read(path)?).map_err(|e| e.at(path))
    }

    /// Parses SQuAD JSON: documents are the distinct paragraphs, questions the answerable ones.
    pub fn squad(json: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct File {
            data: Vec<Article>,
        }
        #[derive(Deserialize)]
        struct Article {
            paragraphs: Vec<Paragraph>,
        }
        #[derive(Deserialize)]
        struct Paragraph {
            context: String,
            qas: Vec<Qa>,
        }
        #[derive(Deserialize)]
        struct Qa {
            question: String,
            answers: Vec<Answer>,
            #[serde(default)]
            is_impossible: bool,
        }
        #[derive(Deserialize)]
        struct Answer {
            text: String,
        }
        let file: File = parse(json, SQUAD)?;
        let (documents, lookup) = index(
            file.data
                .iter()
                .flat_map(|a| a.paragraphs.iter().map(|p| p.context.clone())),
        );
        let mut questions = Vec::new();
        for article in file.data {
            let article_documents: Vec<usize> = article
                .paragraphs
                .iter()
                .map(|p| lookup[&p.context])
                .collect();
            for paragraph in article.paragraphs {
                let own = lookup[&paragraph.context];
                for qa in paragraph.qas.into_iter().filter(|qa| !qa.is_impossible) {
                    questions.push(Question {
                        question: qa.question,
                        answers: qa.answers.into_iter().map(|a| a.text).collect(),
                        documents: vec![own],
                        related: article_documents
                            .iter()
                            .copied()
                            .filter(|&d| d != own)
                            .collect(),
                    });
                }
            }
        }
        Self::new(documents, questions, SQUAD)
    }

    /// Parses HotpotQA JSON: documents are the distinct `title\nparagraph` texts.
    pub fn hotpotqa(json: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Item {
            question: String,
            answer: String,
            context: Vec<(String, Vec<String>)>,
        }
        let items: Vec<Item> = parse(json, HOTPOTQA)?;
        let document =
            |(title, sentences): &(String, Vec<String>)| format!("{title}\n{}", sentences.concat());
        let (documents, lookup) = index(items.iter().flat_map(|i| i.context.iter().map(document)));
        let questions = items
            .into_iter()
            .map(|item| Question {
                documents: item.context.iter().map(|c| lookup[&document(c)]).collect(),
                question: item.question,
                answers: vec![item.answer],
                related: Vec::new(),
            })
            .collect();
        Self::new(documents, questions, HOTPOTQA)
    }

    fn new(
        documents: Vec<String>,
        questions: Vec<Question>,
        expected: &'static str,
    ) -> Result<Self, Error> {
        if questions.is_empty() {
            return Err(Error::Invalid {
                expected,
                reason: "it has no answerable questions".into(),
            });
        }
        if let Some(q) = questions.iter().find(|q| q.documents.is_empty()) {
            return Err(Error::Invalid {
                expected,
                reason: format!("question {:?} comes with no documents", q.question),
            });
        }
        Ok(Self {
            documents,
            questions,
        })
    }

    /// The distinct documents, sorted.
    pub fn documents(&self) -> &[String] {
        &self.documents
    }

    /// The answerable questions, in file order: sample `i` asks question `i`.
    pub fn questions(&self) -> &[Question] {
        &self.questions
    }
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })
}

fn parse<T: for<'de> Deserialize<'de>>(json: &str, expected: &'static str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|e| Error::Invalid {
        expected,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squad_keeps_answerable_questions_with_their_article() {
        let json = r#"{"version": "v2.0", "data": [
            {"title": "A", "paragraphs": [
                {"context": "Zeta para.", "qas": [
                    {"question": "Q1?", "id": "1", "answers": [{"text": "Zeta", "answer_start": 0}, {"text": "Zeta", "answer_start": 0}], "is_impossible": false},
                    {"question": "Q2?", "id": "2", "answers": [], "plausible_answers": [], "is_impossible": true}]},
                {"context": "Alpha para.", "qas": [
                    {"question": "Q3?", "id": "3", "answers": [{"text": "Alpha", "answer_start": 0}], "is_impossible": false}]}]},
            {"title": "B", "paragraphs": [
                {"context": "Mid para.", "qas": []}]}]}"#;
        let set = QaSet::squad(json).unwrap();
        assert_eq!(set.documents(), ["Alpha para.", "Mid para.", "Zeta para."]);
        let q = set.questions();
        assert_eq!(q.len(), 2);
        assert_eq!(
            q[0],
            Question {
                question: "Q1?".into(),
                answers: vec!["Zeta".into(), "Zeta".into()],
                documents: vec![2],
                related: vec![0],
            }
        );
        assert_eq!(
            (q[1].documents.clone(), q[1].related.clone()),
            (vec![0], vec![2])
        );
    }

    #[test]
    fn hotpotqa_documents_are_title_and_joined_sentences() {
        let json = r#"[{"_id": "x", "question": "Who?", "answer": "Bo", "type": "bridge",
            "supporting_facts": [["T1", 0]],
            "context": [["T1", ["Bo is ", "here."]], ["T0", ["Nothing."]]]}]"#;
        let set = QaSet::hotpotqa(json).unwrap();
        assert_eq!(set.documents(), ["T0\nNothing.", "T1\nBo is here."]);
        assert_eq!(set.questions()[0].documents, [1, 0]);
        assert_eq!(set.questions()[0].answers, ["Bo"]);
    }

    #[test]
    fn malformed_files_are_errors_naming_the_format() {
        let err = QaSet::squad("[]").unwrap_err().to_string();
        assert!(err.contains("SQuAD"), "{err}");
        let err = QaSet::hotpotqa("[]").unwrap_err().to_string();
        assert!(err.contains("no answerable questions"), "{err}");
    }
}
