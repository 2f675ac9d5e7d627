//! Which tokens each head keeps, against kvpress on the same model and context.
//!
//! `tests/fixtures/kvpress_parity.py` ran kvpress 0.5.5 on the tiny random Llama fixture
//! (`llama-tied`, 2 layers, 2 KV heads) over a 240-token context at compression ratios 0.5 and
//! 0.75 and recorded the positions each (layer, KV head) keeps. Every registered policy that names
//! a kvpress press ([`momentkv::cache::Entry::kvpress`]), compressing once after prefill as
//! kvpress does, must keep the same positions, with two documented exceptions. KVzip's row covers
//! the first 128 tokens with a replay chunk of 32 (4 replay passes, run by
//! [`momentkv::transformer::replay`] with the prompts [`momentkv::repeat_prompts`] builds from the
//! fixture's chat template, checked id for id against kvpress's).
//!
//! The exceptions:
//!
//! - Ties (`ambiguous` in the fixture): at ratio 0.75 SnapKV, PyramidKV and AdaKV(SnapKV) keep 60
//!   tokens, fewer than the 64-token window, whose tokens all score max+1; `torch.topk` picks an
//!   unspecified subset of the window (AdaKV: of both heads' windows, so even the per-head counts
//!   are arbitrary), we keep its most recent tokens. There only the layer's total count and the
//!   tokens outside the window are compared.
//! - Near-ties (`boundary_rel_gap` below 5e-4): the last kept and first dropped scores differ by
//!   less than float32 reassociation can move them, so one swapped pair at the cut is allowed.

use std::collections::BTreeSet;

use momentkv::cache::policies::kvzip;
use momentkv::cache::{Budget, EvictAt, EvictingCache, KvCache, Phase, PolicySpec, POLICIES};
use momentkv::kernels::KernelBackend;
use momentkv::load::load;
use momentkv::transformer::replay;
use serde_json::Value;

use crate::common::fixture;

/// The window whose tokens tie at max+1 in SnapKV-based presses.
const WINDOW: u32 = 64;

fn positions(v: &Value) -> BTreeSet<u32> {
    v.as_array()
        .expect("array of positions")
        .iter()
        .map(|p| p.as_u64().unwrap() as u32)
        .collect()
}

fn kvpress_parity<B: KernelBackend>(device: B::Device, _tol: f32) {
    let text = std::fs::read_to_string(fixture("kvpress-parity.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let context: Vec<u32> = json["context"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_u64().unwrap() as u32)
        .collect();
    let model = load::<B>(&fixture("llama-tied"), &device).unwrap();
    let repeat = momentkv::repeat_prompts(&model.tokenizer).unwrap();
    let layers = model.transformer.config().num_hidden_layers;
    let mut exact = 0;
    let cases: Vec<(&str, &str)> = POLICIES
        .iter()
        .flat_map(|e| e.kvpress.iter().copied())
        .collect();
    let presses: BTreeSet<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(
        presses.len(),
        11,
        "every press of the fixture is reproduced"
    );
    for &(press, ours) in &cases {
        let config = &json["press_config"][press];
        let context = match config["context_length"].as_u64() {
            Some(n) => &context[..n as usize],
            None => &context[..],
        };
        let len = context.len() as u32;
        if let Some(spans) = config["spans"].as_array() {
            assert_eq!(
                repeat.prefix as u64,
                config["prefix_length"].as_u64().unwrap()
            );
            let chunk = config["chunk_size"].as_u64().unwrap() as usize;
            let replays = kvzip::replays(context, &repeat, chunk);
            let ours: Vec<Value> = replays
                .iter()
                .map(|(span, _)| serde_json::json!([span.start, span.end]))
                .collect();
            assert_eq!(&ours, spans, "{press}: replayed spans");
            let ids: Vec<Value> = replays
                .iter()
                .map(|(_, ids)| serde_json::json!(ids))
                .collect();
            assert_eq!(
                &ids,
                config["replay_ids"].as_array().unwrap(),
                "{press}: replay ids"
            );
        }
        for ratio in ["0.5", "0.75"] {
            let policy = ours.parse::<PolicySpec>().unwrap().build::<B>().unwrap();
            let budget = Budget::compression(ratio.parse().unwrap()).unwrap();
            let mut cache = EvictingCache::new(
                model.transformer.cache_context(),
                policy,
                budget,
                EvictAt::PREFILL,
            )
            .unwrap();
            model
                .transformer
                .forward(&[context.to_vec()], Phase::Prefill, &mut cache)
                .unwrap();
            replay(&model.transformer, &mut cache, context, Some(&repeat)).unwrap();
            assert_eq!(cache.seen(), context.len());
            for layer in 0..layers {
                let kept = cache.kept_positions(layer).unwrap();
                let ambiguous = json["ambiguous"][press][ratio][layer].as_bool().unwrap();
                let gap = json["boundary_rel_gap"][press][ratio][layer]
                    .as_f64()
                    .unwrap_or(f64::INFINITY);
                let total = |sets: Vec<usize>| sets.iter().sum::<usize>();
                assert_eq!(
                    total(kept.iter().map(Vec::len).collect()),
                    total(
                        (0..kept.len())
                            .map(|h| positions(&json["presses"][press][ratio][layer][h]).len())
                            .collect()
                    ),
                    "{press} → {ours}, ratio {ratio}, layer {layer}: tokens kept over the heads"
                );
                for (head, got) in kept.iter().enumerate() {
                    let got: BTreeSet<u32> = got.iter().copied().collect();
                    let want = positions(&json["presses"][press][ratio][layer][head]);
                    let what =
                        format!("{press} → {ours}, ratio {ratio}, layer {layer}, head {head}");
                    if ambiguous {
                        let outside = |s: &BTreeSet<u32>| -> BTreeSet<u32> {
                            s.iter().copied().filter(|&p| p < len - WINDOW).collect()
                        };
                        assert_eq!(
                            outside(&got),
                            outside(&want),
                            "{what}: outside the tied window"
                        );
                        continue;
                    }
                    assert_eq!(got.len(), want.len(), "{what}: kept counts differ");
                    let differ = got.symmetric_difference(&want).count();
                    if differ == 0 {
                        exact += 1;
                    } else {
                        assert!(
                            gap < 5e-4 && differ <= 2,
                            "{what}: {differ} positions differ (boundary gap {gap}): ours {:?} \
                             not kvpress's, kvpress's {:?} not ours",
                            got.difference(&want).collect::<Vec<_>>(),
                            want.difference(&got).collect::<Vec<_>>(),
                        );
                    }
                }
            }
        }
    }
    // 11 presses × 2 ratios × 2 layers × 2 heads, less the 12 tied heads: nearly all exact.
    assert!(exact >= 72, "only {exact} heads matched kvpress exactly");
    // The registry's test-only policy reproduces KnormPress from its own file alone.
    assert!(cases.contains(&("knorm", "probe")));
}

backend_tests!(kvpress_parity);
