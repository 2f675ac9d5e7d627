//! Plain text packed into windows, as `transformers`' `run_clm.py` groups texts: the whole text
//! is tokenized once (with the tokenizer's special tokens, a BOS for models that want one) and cut
//! into consecutive windows of `seq_len` tokens; the remainder shorter than a window is dropped.

use std::path::Path;

use momentkv_tokenizer::Tokenizer;

use super::Example;
use crate::TrainError;

/// The windows of `content`, every token scored; an error when the text is shorter than one.
pub(super) fn windows(
    path: &Path,
    content: &str,
    tokenizer: &Tokenizer,
    seq_len: usize,
) -> Result<Vec<Example>, TrainError> {
    let ids = tokenizer
        .encode(content, true)
        .map_err(|e| TrainError::data(path, e))?;
    if ids.len() < seq_len {
        return Err(TrainError::data(
            path,
            format!(
                "holds {} tokens, shorter than one window of seq_len = {seq_len}",
                ids.len()
            ),
        ));
    }
    Ok(pack(&ids, seq_len))
}

/// `ids` cut into `⌊len / seq_len⌋` consecutive windows of `seq_len` tokens.
fn pack(ids: &[u32], seq_len: usize) -> Vec<Example> {
    ids.chunks_exact(seq_len)
        .map(|window| Example::all_scored(window.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{scratch_file, tokenizer};
    use super::super::{Dataset, Format};
    use super::*;

    #[test]
    fn windows_are_consecutive_and_the_remainder_is_dropped() {
        let ids: Vec<u32> = (0..10).collect();
        let windows = pack(&ids, 4);
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[1].tokens, [4, 5, 6, 7]);
        assert_eq!(windows[1].labels, [4, 5, 6, 7]);
        assert_eq!(windows[0].targets(), 3);
    }

    #[test]
    fn a_text_file_is_tokenized_once_and_packed() {
        let tokenizer = tokenizer();
        let content = "the quick brown fox jumps over the lazy dog ".repeat(4);
        let path = scratch_file("pack.txt", &content);
        let ids = tokenizer.encode(&content, true).unwrap();
        let data = Dataset::read(&path, &tokenizer, 16, 300).unwrap();
        assert_eq!(data.format, Format::Text);
        assert_eq!(data.examples.len(), ids.len() / 16);
        let packed: Vec<u32> = data
            .examples
            .iter()
            .flat_map(|e| e.tokens.clone())
            .collect();
        assert_eq!(packed, ids[..packed.len()]);

        let err = Dataset::read(&path, &tokenizer, ids.len() + 1, 300)
            .unwrap_err()
            .to_string();
        assert!(err.contains("shorter than one window"), "{err}");
    }
}
