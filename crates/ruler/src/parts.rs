//! A RULER prompt cut into context, question and answer prefix as kvpress's RULER dataset
//! (`simonjegou/ruler`, made by kvpress's `evaluation/benchmarks/ruler/create_huggingface_dataset.py`)
//! cuts the `input` of RULER's files: the context ends where the task's question pattern last
//! starts, and the answer prefix starts at the answer pattern's first match after that, so
//! `context + question + answer_prefix` is the input again.
//!
//! | task family | question starts at the last | answer prefix starts at the first |
//! |---|---|---|
//! | niah | `What is the special magic` or `What are all the special magic` | `The special magic` |
//! | vt | `Question: Find all variables that are assigned the value` | `Answer:` |
//! | cwe | `Question: What are the 10 most common words in the above list?` | `Answer:` |
//! | fwe | `Question: Do not provide any explanation.` | `Answer:` |
//! | qa | `Answer the question based on the given documents.` | `Answer:` |
//!
//! The last question match skips the one-shot examples of vt, cwe and fwe and the instruction
//! qa repeats before its documents. The white space before the answer prefix stays with the
//! question (`...in the provided text? ` then `The special magic number ... is`).

use crate::error::Error;
use crate::task::Task;

/// A prompt's three parts; their concatenation is the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    /// Everything before the question: compressed under kvpress's protocol.
    pub context: &'a str,
    /// The question, read after compression.
    pub question: &'a str,
    /// What the answer starts with, read after the chat template's assistant header.
    pub answer_prefix: &'a str,
}

/// Where `task`'s question may start (kvpress's `QUESTION_PATTERNS`, alternatives spelled out).
fn question_anchors(task: Task) -> &'static [&'static str] {
    match task {
        Task::Vt => &["Question: Find all variables that are assigned the value"],
        Task::Cwe => &["Question: What are the 10 most common words in the above list?"],
        Task::Fwe => &["Question: Do not provide any explanation."],
        Task::Qa1 | Task::Qa2 => &["Answer the question based on the given documents."],
        _ => &[
            "What is the special magic",
            "What are all the special magic",
        ],
    }
}

/// Where `task`'s answer prefix starts (kvpress's `ANSWER_PATTERNS`).
fn answer_anchor(task: Task) -> &'static str {
    match task {
        Task::Vt | Task::Cwe | Task::Fwe | Task::Qa1 | Task::Qa2 => "Answer:",
        _ => "The special magic",
    }
}

/// `input`, a prompt of `task` in RULER's layout, cut as kvpress's dataset cuts it; an error
/// when it lacks the task's question or answer pattern.
pub fn kvpress_parts(task: Task, input: &str) -> Result<Parts<'_>, Error> {
    let missing = |what: &str, anchor: &str| Error::Invalid {
        expected: "a RULER prompt that kvpress's dataset can split",
        reason: format!("the {task} prompt has no {what} (`{anchor}`)"),
    };
    let anchors = question_anchors(task);
    let question = anchors
        .iter()
        .filter_map(|a| input.rfind(a))
        .max()
        .ok_or_else(|| missing("question", anchors[0]))?;
    let (context, rest) = input.split_at(question);
    let anchor = answer_anchor(task);
    let answer = rest
        .find(anchor)
        .ok_or_else(|| missing("answer prefix", anchor))?;
    let (question, answer_prefix) = rest.split_at(answer);
    Ok(Parts {
        context,
        question,
        answer_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn niah_is_cut_before_the_last_question_and_at_the_answer_prefix() {
        let input = "A special magic number is hidden within the following text.\nOne of the \
                     special magic numbers for red-fox is: 4821.\nWhat is the special magic \
                     number for red-fox mentioned in the provided text? The special magic \
                     number for red-fox mentioned in the provided text is";
        let parts = kvpress_parts(Task::NiahSingle1, input).unwrap();
        assert!(parts.context.ends_with("is: 4821.\n"), "{parts:?}");
        assert_eq!(
            parts.question,
            "What is the special magic number for red-fox mentioned in the provided text? "
        );
        assert_eq!(
            parts.answer_prefix,
            "The special magic number for red-fox mentioned in the provided text is"
        );
        let many = input.replace("What is the", "What are all the");
        let parts = kvpress_parts(Task::NiahMultivalue, &many).unwrap();
        assert!(parts.question.starts_with("What are all the special magic"));
        assert_eq!(
            [parts.context, parts.question, parts.answer_prefix].concat(),
            many
        );
    }

    #[test]
    fn examples_before_the_question_stay_in_the_context() {
        let example = "Question: What are the 10 most common words in the above list? Answer: \
                       The top 10 words that appear most often in the list are: a b c\n";
        let input = format!(
            "Below is a numbered list of words.\n{example}1. x 2. y\nQuestion: What are the 10 \
             most common words in the above list? Answer: The top 10 words that appear most \
             often in the list are:"
        );
        let parts = kvpress_parts(Task::Cwe, &input).unwrap();
        assert!(parts.context.contains(example) && parts.context.ends_with("2. y\n"));
        assert_eq!(
            parts.question,
            "Question: What are the 10 most common words in the above list? "
        );
        assert_eq!(
            parts.answer_prefix,
            "Answer: The top 10 words that appear most often in the list are:"
        );
        let qa = "Answer the question based on the given documents. Only give me the answer.\n\n\
                  Document 1:\nParis.\n\nAnswer the question based on the given documents. \
                  Only give me the answer.\n\nQuestion: Capital of France? Answer:";
        let parts = kvpress_parts(Task::Qa1, qa).unwrap();
        assert!(parts.context.ends_with("Paris.\n\n"), "{parts:?}");
        assert!(parts.question.ends_with("Question: Capital of France? "));
        assert_eq!(parts.answer_prefix, "Answer:");
    }

    #[test]
    fn a_prompt_without_the_patterns_is_an_error_naming_them() {
        let err = kvpress_parts(Task::Vt, "no question here").unwrap_err();
        assert!(
            err.to_string()
                .contains("vt prompt has no question (`Question: Find all variables"),
            "{err}"
        );
        let err = kvpress_parts(Task::Fwe, "Question: Do not provide any explanation. What?")
            .unwrap_err();
        assert!(
            err.to_string().contains("no answer prefix (`Answer:`)"),
            "{err}"
        );
    }
}
