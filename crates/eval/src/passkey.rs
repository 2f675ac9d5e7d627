//! Passkey retrieval: can the model still read back a five-digit key hidden in essay text once the
//! KV cache has been compressed?

use momentkv::cache::KvCache;
use momentkv::kernels::KernelBackend;
use momentkv::tokenizer::Tokenizer;
use momentkv::transformer::{answer, Sampler};
use momentkv::{Error, Model};

use crate::haystack::{sentence_boundary, Essays};

/// The committed prompt template (`templates/passkey.json`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Template {
    /// With `{haystack_before}`, `{needle}` and `{haystack_after}`.
    pub context: String,
    /// With `{key}`.
    pub needle: String,
    /// Read after the context has been compressed.
    pub question: String,
}

impl Template {
    pub fn builtin() -> Self {
        serde_json::from_str(include_str!("../templates/passkey.json"))
            .expect("templates/passkey.json is valid")
    }

    fn context(&self, before: &str, key: u32, after: &str) -> String {
        self.context
            .replace("{haystack_before}", before)
            .replace("{needle}", &self.needle.replace("{key}", &key.to_string()))
            .replace("{haystack_after}", after)
    }
}

/// One passkey prompt, tokenized.
#[derive(Debug, Clone)]
pub struct Sample {
    pub key: u32,
    /// Where the needle sits, as a fraction of the haystack's characters.
    pub depth: f64,
    /// Context ids (with the tokenizer's special tokens), compressed by the cache's policy.
    pub context: Vec<u32>,
    /// Question ids, read after compression.
    pub question: Vec<u32>,
}

/// SplitMix64: a five-digit key per sample from a seed.
fn key(seed: u64, i: usize) -> u32 {
    let mut z = seed.wrapping_add((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    10_000 + ((z ^ (z >> 31)) % 90_000) as u32
}

/// `count` samples whose contexts are about `length` tokens, needles at depths
/// `(i + ½) / count`, each at the sentence boundary before that depth.
pub fn samples(
    essays: &Essays,
    tokenizer: &Tokenizer,
    template: &Template,
    length: usize,
    count: usize,
    seed: u64,
) -> Result<Vec<Sample>, Error> {
    let overhead = tokenizer
        .encode(&template.context(" ", 12_345, " "), true)?
        .len();
    if length <= overhead {
        return Err(Error::Unsupported(format!(
            "a passkey prompt of {length} tokens leaves no room for text: the template alone \
             takes {overhead}"
        )));
    }
    let haystack = essays.cut(tokenizer, length - overhead)?;
    let question = tokenizer.encode(&template.question, false)?;
    (0..count)
        .map(|i| {
            let depth = (i as f64 + 0.5) / count as f64;
            let at = sentence_boundary(&haystack, (haystack.len() as f64 * depth) as usize);
            let key = key(seed, i);
            let text = template.context(&haystack[..at], key, &haystack[at..]);
            Ok(Sample {
                key,
                depth,
                context: tokenizer.encode(&text, true)?,
                question: question.clone(),
            })
        })
        .collect()
}

/// What the model answered for one sample.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub found: bool,
    pub answer: String,
}

/// Tokens generated for an answer: the key and a little room.
const ANSWER_TOKENS: usize = 8;

/// How the question meets the compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The context is compressed, then the question read (kvpress's default): the cache cannot
    /// know what will be asked.
    QueryAgnostic,
    /// The question is part of the compressed prompt (SnapKV's original setting, kvpress's
    /// `query_aware`): window-based scorers see the question's attention.
    QueryAware,
}

/// Compresses the sample's context into `cache`, asks the question and checks the answer for
/// the key (greedy decoding).
pub fn ask<B: KernelBackend>(
    model: &Model<B>,
    cache: &mut impl KvCache<B>,
    sample: &Sample,
    protocol: Protocol,
) -> Result<Outcome, Error> {
    let options = model.options(ANSWER_TOKENS);
    let (context, question) = match protocol {
        Protocol::QueryAgnostic => (sample.context.clone(), sample.question.clone()),
        Protocol::QueryAware => ([&sample.context[..], &sample.question[..]].concat(), vec![]),
    };
    let out = answer(
        &model.transformer,
        cache,
        &context,
        &question,
        &options,
        &mut Sampler::greedy(),
        |_| {},
    )?;
    let text = model.tokenizer.decode(&out.tokens)?;
    Ok(Outcome {
        found: text.contains(&sample.key.to_string()),
        answer: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_five_digits_deterministic_and_distinct() {
        let keys: Vec<u32> = (0..20).map(|i| key(7, i)).collect();
        assert!(keys.iter().all(|k| (10_000..100_000).contains(k)));
        assert_eq!(keys, (0..20).map(|i| key(7, i)).collect::<Vec<_>>());
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
        assert_ne!(key(7, 0), key(8, 0));
    }

    #[test]
    fn the_template_places_one_needle_between_the_halves() {
        let t = Template::builtin();
        let text = t.context("Before. ", 54_321, "After.");
        assert_eq!(
            text.matches("54321").count(),
            2,
            "the needle states the key twice"
        );
        let needle = text.find("The pass key is 54321").unwrap();
        assert!(text.find("Before.").unwrap() < needle && needle < text.find("After.").unwrap());
        assert!(t.question.ends_with("The pass key is"));
    }
}
