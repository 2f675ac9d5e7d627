//! The fuzz targets: each reads one input the way momentkv reads a file a user hands it, and
//! checks what the parser promises (a result for everything, never a panic; invariants of what it
//! accepts). Each returns a coarse signature of how far the input got and how it failed, which the
//! runner uses as its only feedback: an input reaching a new signature joins the corpus.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::mem::discriminant;
use std::sync::Arc;

use burn::backend::NdArray;
use burn::tensor::TensorData;
use momentkv::cache::PolicySpec;
use momentkv::gguf::{dequantize, GgmlType, GgufFile};
use momentkv::load::FAMILIES;
use momentkv::tokenizer::{ChatMessage, Tokenizer};
use momentkv::transformer::{gguf_config, gguf_tensors, HfConfig, TokenIds, TransformerConfig};
use momentkv_ruler::{kvpress_parts, parse_jsonl, write_jsonl, Essays, QaSet, Task, WordLists};

use crate::seeds::{self, SeedPool};

/// One parser under test.
pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    /// Text input: mutated also by number and token replacement.
    pub text: bool,
    pub seeds: fn(&SeedPool) -> Vec<Vec<u8>>,
    /// Runs one input; returns its outcome signature. A panic is a finding.
    pub run: fn(&[u8]) -> u64,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "gguf",
        about: "GGUF header, metadata and tensor table (GgufFile::from_bytes), then every tensor dequantized",
        text: false,
        seeds: |pool| pool.gguf.clone(),
        run: gguf,
    },
    Target {
        name: "dequant",
        about: "the dequantizer on raw blocks: a type id byte, then data",
        text: false,
        seeds: seeds::dequant_seeds,
        run: dequant,
    },
    Target {
        name: "gguf-config",
        about: "a parsed GGUF file as a model of each family: gguf_config (validated), gguf_tensors and their loads",
        text: false,
        seeds: |pool| pool.gguf.clone(),
        run: gguf_model,
    },
    Target {
        name: "tokenizer-gguf",
        about: "Tokenizer::from_gguf on a parsed GGUF file, then encode, decode, stream and chat template",
        text: false,
        seeds: |pool| pool.gguf.clone(),
        run: tokenizer_gguf,
    },
    Target {
        name: "hf-config",
        about: "config.json as HfConfig, then to_transformer and validate for each family",
        text: true,
        seeds: |pool| pool.hf_config.clone(),
        run: hf_config,
    },
    Target {
        name: "ruler-jsonl",
        about: "RULER JSONL (parse_jsonl, which read_jsonl calls), scoring, and a write/read round trip",
        text: true,
        seeds: seeds::jsonl_seeds,
        run: ruler_jsonl,
    },
    Target {
        name: "ruler-data",
        about: "RULER's data files: essays JSON and text, SQuAD and HotpotQA JSON, word lists",
        text: true,
        seeds: |_| seeds::ruler_data_seeds(),
        run: ruler_data,
    },
    Target {
        name: "policy-spec",
        about: "policy specs: PolicySpec::from_str, a Display round trip, build::<NdArray>",
        text: true,
        seeds: |_| seeds::policy_seeds(),
        run: policy_spec,
    },
];

pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn outcome(stage: u32, detail: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    stage.hash(&mut h);
    detail.hash(&mut h);
    h.finish()
}

/// What a GGUF input is called in errors.
const NAME: &str = "fuzz.gguf";

/// Larger tensor tables are walked only this far by the per-tensor steps whose lookups by name
/// are linear (the loaders' too): a table of 100k tensors would otherwise cost 10^10 compares.
const MAX_TENSORS_WALKED: usize = 1024;

fn gguf(input: &[u8]) -> u64 {
    let file = match GgufFile::from_bytes(NAME, input) {
        Ok(file) => file,
        Err(e) => return outcome(0, discriminant(&e)),
    };
    let meta = file.metadata();
    let mut typed = 0usize;
    for key in meta.keys() {
        if let Some(v) = meta.get(key) {
            let _ = (v.type_name(), v.as_u64(), v.as_f64());
        }
        // The typed accessors the loaders call, each on every key.
        typed += usize::from(meta.str(key).is_ok())
            + usize::from(meta.u64(key).is_ok())
            + usize::from(meta.f64(key).is_ok())
            + usize::from(meta.bool(key).is_ok())
            + usize::from(meta.strings(key).is_ok())
            + usize::from(meta.integers(key).is_ok());
    }
    let _ = (file.version(), file.path());
    let mut dequantized = 0usize;
    for (i, t) in file.tensors().iter().enumerate() {
        let _ = t.shape();
        let n = t
            .n_elements()
            .expect("an accepted tensor's element count fits in a u64");
        let bytes = file
            .bytes_of(t)
            .expect("an accepted tensor's bytes lie inside the file");
        if !t.ty.can_dequantize() {
            assert!(
                dequantize(t.ty, bytes, &t.name).is_err(),
                "{} dequantizes a type it says it cannot",
                t.ty
            );
            continue;
        }
        let values = dequantize(t.ty, bytes, &t.name).expect("a dequantizable type dequantizes");
        assert_eq!(
            values.len() as u64,
            n,
            "tensor {} ({} {:?}) dequantizes to the wrong number of values",
            t.name,
            t.ty,
            t.ne
        );
        if i < MAX_TENSORS_WALKED {
            // By name, as the loaders ask (names are unique: the reader refuses repeats).
            let first = file
                .tensor(&t.name)
                .expect("a listed tensor is found by name");
            match file.dequantize(&t.name) {
                Ok((shape, values)) => {
                    assert_eq!(shape, first.shape());
                    assert_eq!(values.len() as u64, first.n_elements().unwrap_or(0));
                }
                Err(e) => assert!(!first.ty.can_dequantize(), "{}: {e}", t.name),
            }
        }
        dequantized += 1;
    }
    outcome(
        1,
        (
            file.tensors().len().min(4),
            dequantized.min(4),
            typed.min(8),
        ),
    )
}

fn dequant(input: &[u8]) -> u64 {
    let Some((&id, data)) = input.split_first() else {
        return outcome(0, ());
    };
    let ty = GgmlType(id.into());
    match dequantize(ty, data, "fuzz") {
        Ok(values) => {
            assert!(ty.can_dequantize(), "{ty} dequantizes but says it cannot");
            let expected = data.len() / ty.block_bytes() * ty.block_len();
            assert_eq!(values.len(), expected, "{ty}: {} bytes", data.len());
            outcome(1, id)
        }
        Err(e) => {
            assert!(!ty.can_dequantize(), "{ty} fails to dequantize: {e}");
            outcome(2, ty.is_known())
        }
    }
}

/// As `momentkv::load` reads a GGUF file, short of building the model: the configuration for
/// every family (validated by `gguf_config`), then each weight produced the way the loader asks
/// for it.
fn gguf_model(input: &[u8]) -> u64 {
    let file = match GgufFile::from_bytes(NAME, input) {
        Ok(file) => Arc::new(file),
        Err(e) => return outcome(0, discriminant(&e)),
    };
    let meta = file.metadata();
    let architecture = meta.str("general.architecture").ok().map(str::to_string);
    let stop_tokens: Vec<_> = [
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
    ]
    .iter()
    .filter(|k| meta.get(k).is_some())
    .map(|k| meta.u64(k).map(|id| id as u32).is_ok())
    .collect();
    let mut reached = Vec::new();
    for family in FAMILIES {
        let chosen = architecture.as_deref() == Some(family.gguf_architecture);
        let config = match gguf_config(&file, family) {
            Ok(config) => config,
            Err(e) => {
                reached.push((chosen, 0u8, Some(discriminant(&e))));
                continue;
            }
        };
        let tensors = gguf_tensors(&file, &config, family);
        let mut loaded = 0usize;
        for t in tensors.iter().take(MAX_TENSORS_WALKED) {
            if !loaded_by_model(&t.name, &t.shape, &config) {
                continue;
            }
            if let Ok(values) = (t.load)() {
                // What `Transformer::load_tensors` makes of it (a shape whose element count
                // overflows never gets there: the tensor table is checked first).
                if t.shape
                    .iter()
                    .try_fold(1usize, |n, &d| n.checked_mul(d))
                    .is_some()
                {
                    let _ = TensorData::new(values, t.shape.clone());
                }
                loaded += 1;
            }
        }
        reached.push((chosen, 2 + u8::from(loaded > 0), None));
    }
    outcome(1, (reached, stop_tokens))
}

/// Whether `Transformer::from_tensors` would load this tensor's data: it compares every tensor's
/// shape with the one the configuration gives it before loading any. Of the loads, only the q/k
/// projections' do more than dequantize (they unpermute rows by head, relying on that shape), so
/// those are held to it here; every other tensor is loaded whatever its shape.
fn loaded_by_model(name: &str, shape: &[usize], config: &TransformerConfig) -> bool {
    let heads = if name.contains("self_attn.q_proj.") {
        config.num_attention_heads
    } else if name.contains("self_attn.k_proj.") {
        config.num_key_value_heads
    } else {
        return true;
    };
    let Some(rows) = heads.checked_mul(config.head_dim) else {
        return false;
    };
    if name.ends_with(".weight") {
        shape == &[rows, config.hidden_size][..]
    } else {
        shape == &[rows][..]
    }
}

/// Text a tokenizer is asked to encode: spaces, digits, accents, CJK, an emoji, control and
/// special-token-looking characters.
const TEXT: &str =
    "Hello  world\t123 4567 caf\u{e9} \u{65e5}\u{672c} \u{1f600}\n<|end|>ab\u{0}\r\n";

fn tokenizer_gguf(input: &[u8]) -> u64 {
    let file = match GgufFile::from_bytes(NAME, input) {
        Ok(file) => file,
        Err(e) => return outcome(0, discriminant(&e)),
    };
    let tokenizer = match Tokenizer::from_gguf(&file) {
        Ok(t) => t,
        Err(e) => return outcome(1, discriminant(&e)),
    };
    let vocab = tokenizer.vocab_size();
    let ids = tokenizer.encode(TEXT, true);
    if let Ok(ids) = &ids {
        let _ = tokenizer.decode(ids);
        let mut stream = tokenizer.stream();
        for &id in ids.iter().take(64) {
            let _ = stream.step(id);
        }
    }
    let _ = tokenizer.encode("", false);
    let last = u32::try_from(vocab).unwrap_or(u32::MAX);
    let _ = tokenizer.decode(&[0, 1, last.saturating_sub(1), last, u32::MAX]);
    let _ = tokenizer.bos_token().map(|t| tokenizer.token_id(t));
    let _ = tokenizer.eos_token().map(|t| tokenizer.token_id(t));
    let chat = tokenizer.chat_template().map(|_| {
        tokenizer
            .apply_chat_template(
                &[
                    ChatMessage::new("system", "Be brief."),
                    ChatMessage::new("user", TEXT),
                ],
                true,
            )
            .is_ok()
    });
    outcome(2, (ids.is_ok(), chat))
}

fn hf_config(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    let hf: HfConfig = match serde_json::from_str(&text) {
        Ok(hf) => hf,
        Err(e) => return outcome(0, format!("{:?}", e.classify())),
    };
    let _ = hf.eos_token_id.as_ref().map(TokenIds::to_vec);
    let mut reached = Vec::new();
    for family in FAMILIES {
        let is = hf.is(family);
        let result = hf
            .to_transformer(family)
            .and_then(|config| config.validate().map(|()| config));
        reached.push((is, result.err().map(|e| discriminant(&e))));
    }
    outcome(1, reached)
}

fn ruler_jsonl(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    let task = Task::ALL[input.len() % Task::ALL.len()];
    let count = |text: &str| text.split_whitespace().count();
    let samples = match parse_jsonl(&text, task, &count) {
        Ok(samples) => samples,
        Err(e) => return outcome(0, discriminant(&e)),
    };
    for sample in &samples {
        if let Ok(parts) = kvpress_parts(task, &sample.input) {
            let whole = [parts.context, parts.question, parts.answer_prefix].concat();
            assert!(
                whole == sample.input,
                "kvpress's cut of a prompt loses text"
            );
        }
        let first = sample.outputs.first().map_or("", String::as_str);
        let all = sample.outputs.join(" ");
        for answer in ["", first, all.as_str()] {
            let score = sample.score(answer);
            assert!(
                (0.0..=100.0).contains(&score),
                "score {score} outside 0..=100"
            );
        }
    }
    let mut written = Vec::new();
    write_jsonl(&samples, &mut written).expect("writing to memory");
    let again = parse_jsonl(
        std::str::from_utf8(&written).expect("JSON is UTF-8"),
        task,
        &count,
    )
    .expect("written samples read back");
    assert!(again == samples, "samples change through a write and read");
    outcome(1, (samples.len().min(3), task))
}

fn ruler_data(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    let essays = Essays::from_json(&text).map(|e| e.words());
    let plain = Essays::from_text(&text).map(|e| e.words());
    if let Ok(words) = &plain {
        assert!(*words > 0, "essays without words were accepted");
    }
    let check = |set: &QaSet| {
        let documents = set.documents().len();
        assert!(!set.questions().is_empty());
        for q in set.questions() {
            assert!(!q.documents.is_empty());
            for &d in q.documents.iter().chain(&q.related) {
                assert!(d < documents, "document {d} of {documents}");
            }
        }
    };
    let squad = QaSet::squad(&text).map(|set| check(&set));
    let hotpot = QaSet::hotpotqa(&text).map(|set| check(&set));
    let words =
        WordLists::from_lines(&text, &text, &text).map(|w| (w.keys() > 0, w.pool().is_empty()));
    outcome(
        1,
        (
            essays.is_ok(),
            plain.is_ok(),
            squad.is_ok(),
            hotpot.is_ok(),
            words.ok(),
        ),
    )
}

fn policy_spec(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    let spec = match text.parse::<PolicySpec>() {
        Ok(spec) => spec,
        Err(e) => return outcome(0, discriminant(&e)),
    };
    let written = spec.to_string();
    match written.parse::<PolicySpec>() {
        Ok(again) => assert!(
            again == spec,
            "{text:?} → {written:?} reads back as {again:?}"
        ),
        Err(e) => panic!("{text:?} → {written:?} does not read back: {e}"),
    }
    match spec.build::<NdArray>() {
        Ok(policy) => outcome(1, (spec.name, policy.evicts(), policy.moments)),
        Err(e) => outcome(2, (spec.name, discriminant(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_are_unique() {
        for (i, t) in TARGETS.iter().enumerate() {
            assert!(TARGETS[..i].iter().all(|u| u.name != t.name), "{}", t.name);
            assert!(find(t.name).is_some());
        }
    }
}
