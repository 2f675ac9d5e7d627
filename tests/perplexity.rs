//! Perplexity under compression (`momentkv_eval::perplexity`) on the tiny fixtures, against
//! transformers (`tests/fixtures/perplexity-reference.json`, written by
//! `scripts/perplexity_reference.py`): the full cache's NLL and StreamingLLM's, evicting at every
//! token, equal transformers' on the same ids; the stride does not change the full cache's; an
//! evicting cell scores exactly like the full cache until its first eviction; settings that would
//! measure nothing are refused.

use momentkv::kernels::KernelBackend;
use momentkv::load::load;
use momentkv_eval::perplexity::{tokenize, CellNll, Perplexity};
use momentkv_eval::sweep::Cell;
use serde_json::Value;

use crate::common::fixture;

/// Bytes the llama-tied fixture's cache holds per token: 2 layers × 2 KV heads × (keys and values
/// of 16 f32, plus 4 bytes of position and 1 of validity).
const SLOT_BYTES: usize = 2 * 2 * (2 * 16 * 4 + 5);

/// One fixture's reference: the ids scored, the prefix, and transformers' per-token NLL for the
/// full cache and for StreamingLLM.
struct Reference {
    text: String,
    ids: Vec<u32>,
    prefix: usize,
    nll: f64,
    per_token: Vec<f64>,
    streaming_budget: usize,
    streaming_sinks: usize,
    streaming_nll: f64,
    streaming_per_token: Vec<f64>,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn reference(model: &str) -> Reference {
    let path = fixture("perplexity-reference.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let m = &json["models"][model];
    let count = |v: &Value| v.as_u64().unwrap() as usize;
    Reference {
        text: json["text"].as_str().unwrap().into(),
        ids: m["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_u64().unwrap() as u32)
            .collect(),
        prefix: count(&m["prefix"]),
        nll: m["nll"].as_f64().unwrap(),
        per_token: floats(&m["per_token"]),
        streaming_budget: count(&m["streaming"]["budget"]),
        streaming_sinks: count(&m["streaming"]["sinks"]),
        streaming_nll: m["streaming"]["nll"].as_f64().unwrap(),
        streaming_per_token: floats(&m["streaming"]["per_token"]),
    }
}

impl Reference {
    /// The reference's ids, context and prefix, scoring `cells`.
    fn settings(&self, cells: Vec<Cell>) -> Perplexity {
        Perplexity {
            context: self.ids.len(),
            prefix: Some(self.prefix),
            ..Perplexity::new(self.ids.clone(), cells)
        }
    }

    fn streaming(&self) -> Cell {
        Cell {
            policy: format!("streaming:sinks={}", self.streaming_sinks),
            budget: Some(self.streaming_budget),
            compression: None,
        }
    }
}

/// The largest |difference| between two per-token NLL lists of the same length.
fn worst(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

fn run<B: KernelBackend>(
    model: &momentkv::Model<B>,
    settings: &Perplexity,
) -> (CellNll, Vec<CellNll>) {
    let mut seen = Vec::new();
    let report = settings
        .run(model, |cell| {
            seen.push(cell.clone());
            Ok(())
        })
        .unwrap();
    // Reported as they finish: the full cache first, then the cells in order.
    assert_eq!(seen[0], report.full);
    assert_eq!(seen[1..], report.cells[..]);
    (report.full, report.cells)
}

pub fn nll_matches_transformers<B: KernelBackend>(device: B::Device, tol: f32) {
    let tol = f64::from(tol);
    for name in ["llama-tied", "qwen2"] {
        let model = load::<B>(&fixture(name), &device).unwrap();
        let r = reference(name);
        // The ids are the text as our tokenizer encodes it (no BOS for these fixtures).
        let ids = tokenize(&model.tokenizer, &r.text).unwrap();
        assert_eq!(ids[..r.ids.len()], r.ids[..], "{name}: ids");

        let (full, cells) = run(&model, &r.settings(vec![r.streaming()]));
        assert_eq!(full.tokens, r.ids.len() - r.prefix);
        assert!(
            (full.nll - r.nll).abs() <= 1e-3,
            "{name}: full-cache NLL {} against transformers' {}",
            full.nll,
            r.nll
        );
        let w = worst(&full.per_token, &r.per_token);
        assert!(w <= 5.0 * tol, "{name}: a token's NLL is off by {w:e}");
        assert_eq!((full.delta_nll, full.ppl_ratio), (0.0, 1.0));

        // StreamingLLM, evicting at every token, is transformers under its attention mask.
        let stream = &cells[0];
        assert!(
            (stream.nll - r.streaming_nll).abs() <= 1e-3,
            "{name}: StreamingLLM NLL {} against transformers' {}",
            stream.nll,
            r.streaming_nll
        );
        let w = worst(&stream.per_token, &r.streaming_per_token);
        assert!(
            w <= 5.0 * tol,
            "{name}: a StreamingLLM token's NLL is off by {w:e}"
        );
        assert_eq!(stream.nll_full, full.nll);
        assert!((stream.delta_nll - (r.streaming_nll - r.nll)).abs() <= 2e-3);
        assert!((stream.ppl_ratio - stream.delta_nll.exp()).abs() < 1e-12);
    }
}

pub fn stride_does_not_change_the_full_cache<B: KernelBackend>(device: B::Device, tol: f32) {
    let tol = f64::from(tol);
    let model = load::<B>(&fixture("llama-tied"), &device).unwrap();
    let r = reference("llama-tied");
    let (one, _) = run(&model, &r.settings(vec![]));
    // 167 tokens are read after the prefix: neither stride divides them, so the last pass is
    // shorter.
    for stride in [4, 7] {
        let settings = Perplexity {
            stride,
            ..r.settings(vec![])
        };
        let (full, _) = run(&model, &settings);
        assert!(
            (full.nll - one.nll).abs() <= tol,
            "stride {stride}: NLL {} against {} at stride 1",
            full.nll,
            one.nll
        );
        let w = worst(&full.per_token, &one.per_token);
        assert!(
            w <= 5.0 * tol,
            "stride {stride}: a token's NLL is off by {w:e}"
        );
        assert_eq!(full.kv_cache_bytes, one.kv_cache_bytes);
    }
}

pub fn evicting_cells_match_the_full_cache_until_they_evict<B: KernelBackend>(
    device: B::Device,
    tol: f32,
) {
    let tol = f64::from(tol);
    let model = load::<B>(&fixture("llama-tied"), &device).unwrap();
    let r = reference("llama-tied");
    let budget = r.streaming_budget;
    let (full, cells) = run(&model, &r.settings(vec![r.streaming()]));
    let stream = &cells[0];
    assert!(stream.nll.is_finite());
    assert!(
        stream.delta_nll.abs() > 0.05,
        "eviction changed nothing: {stream:?}"
    );
    // Position t is predicted by the pass that reads x_{t−1}, which attends over all t tokens
    // until the cache first holds more than the budget: positions up to budget + 1 are exact.
    let exact = budget + 2 - r.prefix;
    let w = worst(&stream.per_token[..exact], &full.per_token[..exact]);
    assert!(
        w <= 5.0 * tol,
        "before the first eviction a token is off by {w:e}"
    );
    let after = worst(
        &stream.per_token[exact..exact + 1],
        &full.per_token[exact..exact + 1],
    );
    assert!(
        after > 1e-3,
        "the first token after eviction did not change"
    );
    // The cache read context − 1 tokens: the full cache holds them all, StreamingLLM its budget.
    assert_eq!(full.kv_cache_bytes, (r.ids.len() - 1) * SLOT_BYTES);
    assert_eq!(stream.kv_cache_bytes, budget * SLOT_BYTES);
    assert_eq!(full.evicted_tokens, 0);
    assert_eq!(
        stream.evicted_tokens,
        2 * 2 * (r.ids.len() - 1 - budget),
        "one token per layer and KV head at every step past the budget"
    );
    // Buckets: 8 equal ranges of the scored positions, the first one exact.
    assert_eq!(stream.buckets.len(), 8);
    assert_eq!(stream.buckets[0].start, r.prefix);
    assert_eq!(stream.buckets[7].end, r.ids.len());
    assert!(stream.buckets[0].delta_nll.abs() <= 5.0 * tol);
    let json = serde_json::to_value(stream).unwrap();
    assert_eq!(json["budget"], budget);
    assert_eq!(json["buckets"].as_array().unwrap().len(), 8);
    assert!(json["buckets"][7]["nll"].as_f64().unwrap().is_finite());

    // The largest budget accepted evicts after the last two tokens read: only the last
    // prediction reads a cache that has evicted.
    let edge = Cell {
        policy: "streaming".into(),
        budget: Some(r.ids.len() - 3),
        compression: None,
    };
    let (_, cells) = run(&model, &r.settings(vec![edge]));
    let edge = &cells[0];
    assert_eq!(edge.evicted_tokens, 2 * 2 * 2);
    let last = edge.per_token.len() - 1;
    let w = worst(&edge.per_token[..last], &full.per_token[..last]);
    assert!(
        w <= 5.0 * tol,
        "before the first eviction a token is off by {w:e}"
    );
    assert!(
        (edge.per_token[last] - full.per_token[last]).abs() > 1e-3,
        "the last prediction did not see the eviction"
    );
}

pub fn settings_that_measure_nothing_are_refused<B: KernelBackend>(device: B::Device, _tol: f32) {
    let model = load::<B>(&fixture("llama-tied"), &device).unwrap();
    let r = reference("llama-tied");
    let context = r.ids.len();
    let refused = |settings: Perplexity| settings.run(&model, |_| Ok(())).unwrap_err().to_string();
    let cell = |policy: &str, budget| Cell {
        policy: policy.into(),
        budget,
        compression: None,
    };

    // A budget the text never fills, or fills only after the last prediction: nothing would be
    // evicted.
    for budget in [1000, context, context - 1, context - 2] {
        let e = refused(r.settings(vec![cell("streaming", Some(budget))]));
        assert!(e.contains("nothing is evicted"), "{e}");
        assert!(e.contains(&format!("budget {budget}")), "{e}");
    }
    // ... counting the eviction interval.
    let e = refused(Perplexity {
        evict_every: 8,
        ..r.settings(vec![cell("streaming", Some(context - 9))])
    });
    assert!(e.contains("nothing is evicted"), "{e}");

    // Text shorter than the context: both numbers named.
    let short = Perplexity {
        tokens: r.ids[..150].to_vec(),
        ..r.settings(vec![])
    };
    let e = refused(short);
    assert!(
        e.contains("150 tokens") && e.contains(&context.to_string()),
        "{e}"
    );

    // Beyond the model's window (256 positions).
    let long = Perplexity {
        tokens: r.ids.repeat(2),
        context: 300,
        ..r.settings(vec![])
    };
    let e = refused(long);
    assert!(e.contains("max_position_embeddings"), "{e}");

    // The full cache is measured anyway; a cell needs an evicting policy and a budget.
    assert!(refused(r.settings(vec![cell("full", Some(64))])).contains("evicting policy"));
    assert!(refused(r.settings(vec![cell("streaming", None)])).contains("evicting policy"));
    assert!(refused(r.settings(vec![cell("nonesuch", Some(64))])).contains("nonesuch"));

    // A prefix that leaves nothing to score, and a zero stride.
    let e = refused(Perplexity {
        prefix: Some(context),
        ..r.settings(vec![])
    });
    assert!(e.contains("nothing to score"), "{e}");
    let e = refused(Perplexity {
        stride: 0,
        ..r.settings(vec![])
    });
    assert!(e.contains("stride"), "{e}");
}

backend_tests!(
    nll_matches_transformers,
    stride_does_not_change_the_full_cache,
    evicting_cells_match_the_full_cache_until_they_evict,
    settings_that_measure_nothing_are_refused,
);

/// Both real models' full-cache NLL on the first 256 tokens of Pride and Prejudice (64 prefilled,
/// 192 scored) equals transformers' on the same dequantized weights to 1e-3
/// (`tests/fixtures/perplexity-real-reference.jsonl`, from `scripts/perplexity_reference.py
/// --real-model FILE --text prideandprejudice.txt.gz --context 256 --prefix 64`). Flex only: the
/// Qwen model holds 2.5 GB of f32 weights.
#[cfg(feature = "flex")]
#[test]
fn real_models_nll_matches_transformers() {
    use momentkv::hub;
    use momentkv_eval::perplexity::read_text;
    type B = burn::backend::Flex;
    let lines = std::fs::read_to_string(fixture("perplexity-real-reference.jsonl")).unwrap();
    let references: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let Some(text) = hub::if_present(&hub::PRIDE_AND_PREJUDICE) else {
        return;
    };
    let text = read_text(text.to_str().unwrap()).unwrap();
    for file in [&hub::SMOLLM2_135M, &hub::QWEN25_CODER_05B] {
        let Some(path) = hub::if_present(file) else {
            continue;
        };
        let r = references
            .iter()
            .find(|r| r["model"] == file.file_name)
            .unwrap_or_else(|| panic!("no reference for {}", file.file_name));
        let model = load::<B>(&path, &Default::default()).unwrap();
        let tokens = tokenize(&model.tokenizer, &text).unwrap();
        let first: Vec<u32> = serde_json::from_value(r["first_ids"].clone()).unwrap();
        assert_eq!(tokens[..first.len()], first[..], "{}", file.name);
        let settings = Perplexity {
            context: r["context"].as_u64().unwrap() as usize,
            prefix: Some(r["prefix"].as_u64().unwrap() as usize),
            stride: 16,
            ..Perplexity::new(tokens, vec![])
        };
        let report = settings.run(&model, |_| Ok(())).unwrap();
        let want = r["nll"].as_f64().unwrap();
        assert!(
            (report.full.nll - want).abs() < 1e-3,
            "{}: {} against transformers' {want}",
            file.name,
            report.full.nll
        );
    }
}
