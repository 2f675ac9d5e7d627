//! RULER's prompt templates (`data/synthetic/constants.py`), each followed by its answer prefix
//! as the `base` model template makes them: the prompt ends with the answer prefix.

/// The needle tasks. `{type_needle_v}` is `numbers` or `uuids`.
pub(crate) const NIAH: &str = "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} mentioned in the provided text? The special magic {type_needle_v} for {query} mentioned in the provided text are";

/// One needle; the value type stays plural whatever the template says.
pub(crate) const NIAH_NEEDLE: &str =
    "One of the special magic {type_needle_v} for {key} is: {value}.";

/// Variable tracking (`assgined` is RULER's spelling).
pub(crate) const VT: &str = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: Find all variables that are assigned the value {query} in the text above. Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are assgined the value {query}, they are: ";

/// Common words extraction.
pub(crate) const CWE: &str = "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list? Answer: The top 10 words that appear most often in the list are:";

/// Frequent words extraction.
pub(crate) const FWE: &str = "Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text? Answer: According to the coded text above, the three most frequently appeared words are:";

/// Question answering over documents.
pub(crate) const QA: &str = "Answer the question based on the given documents. Only give me the answer and do not output any other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given documents. Only give me the answer and do not output any other words.\n\nQuestion: {query} Answer:";

/// Python's `template.format(**values)` for plain `{name}` fields: one pass over the template,
/// so braces inside the values are left alone. A field with no value stays as it is.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let extra: usize = values.iter().map(|(_, v)| v.len()).sum();
    let mut out = String::with_capacity(template.len() + extra);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let field = &rest[open + 1..];
        let value = field.find('}').and_then(|close| {
            let name = &field[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &field[close + 1..];
            }
            None => {
                out.push('{');
                rest = field;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_substitutes_every_field_once_and_leaves_values_alone() {
        assert_eq!(
            fill("{a} and {b}, {a}! {unknown}", &[("a", "x{b}"), ("b", "y")]),
            "x{b} and y, x{b}! {unknown}"
        );
        assert_eq!(fill("no fields", &[("a", "x")]), "no fields");
        assert_eq!(fill("{open", &[("open", "x")]), "{open");
    }
}
