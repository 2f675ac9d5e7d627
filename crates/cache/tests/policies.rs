//! Each policy on hand-built tensors where the tokens it must keep are known, and the cache's
//! bookkeeping (budgets over decoding and chunks, per-head budgets, batches) on the same.

use burn::backend::NdArray;
use burn::tensor::{Tensor, TensorData, Tolerance};
use momentkv_cache::{
    Budget, EvictAt, EvictingCache, FullCache, Geometry, KvCache, ModelContext, Phase, PolicySpec,
};
use momentkv_kernels::attention_reference;

type B = NdArray;

const D: usize = 4;

/// One layer, `kv_heads` KV heads of `group` query heads each, head_dim 4, no rotation (θ = 0),
/// so pre- and post-RoPE queries coincide.
fn geometry(kv_heads: usize, group: usize) -> Geometry {
    Geometry {
        layers: 1,
        heads: kv_heads * group,
        kv_heads,
        head_dim: D,
        inv_freq: vec![0.0; D / 2],
    }
}

fn cache(policy: &str, budget: usize, at: &str, g: impl Into<ModelContext<B>>) -> EvictingCache<B> {
    let policy = policy.parse::<PolicySpec>().unwrap().build::<B>().unwrap();
    EvictingCache::new(
        g,
        policy,
        Budget::tokens(budget).unwrap(),
        at.parse().unwrap(),
    )
    .unwrap()
}

/// `[batch, heads, seq, 4]` from rows of 4 floats, heads-major.
fn tensor(rows: &[[f32; D]], shape: [usize; 3]) -> Tensor<B, 4> {
    let [b, h, s] = shape;
    assert_eq!(rows.len(), b * h * s);
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [b, h, s, D]), &Default::default())
}

fn e(i: usize, scale: f32) -> [f32; D] {
    let mut r = [0.01; D];
    r[i] = scale;
    r
}

/// Runs one prefill pass of `keys` (one per token, single head) with queries `queries`.
fn prefill(cache: &mut EvictingCache<B>, queries: &[[f32; D]], keys: &[[f32; D]]) -> Tensor<B, 4> {
    let s = keys.len();
    cache.prepare(s, Phase::Prefill).unwrap();
    let values: Vec<[f32; D]> = (0..s).map(|i| e(i % D, 1.0)).collect();
    cache
        .attend(
            0,
            tensor(queries, [1, 1, s]),
            tensor(keys, [1, 1, s]),
            tensor(&values, [1, 1, s]),
        )
        .unwrap()
}

fn kept(cache: &EvictingCache<B>) -> Vec<Vec<u32>> {
    cache.kept_positions(0).unwrap()
}

#[test]
fn knorm_keeps_the_smallest_keys() {
    let norms = [5.0, 1.0, 4.0, 2.0, 6.0, 3.0];
    let keys: Vec<[f32; D]> = norms.iter().map(|&n| e(0, n)).collect();
    let mut c = cache("knorm", 3, "prefill", geometry(1, 1));
    prefill(&mut c, &keys, &keys);
    assert_eq!(kept(&c), vec![vec![1, 3, 5]]);
    assert_eq!(c.evicted(), 3);
}

#[test]
fn streaming_keeps_sinks_and_the_most_recent() {
    let keys: Vec<[f32; D]> = (0..10).map(|i| e(i % D, 1.0)).collect();
    let mut c = cache("streaming", 6, "prefill", geometry(1, 1));
    prefill(&mut c, &keys, &keys);
    assert_eq!(kept(&c), vec![vec![0, 1, 2, 3, 8, 9]]);
}

#[test]
fn default_presets_keep_the_sinks_and_give_the_window_at_most_half_the_budget() {
    // 40 tokens whose keys all look alike, a budget of 12: the 4 sinks, then 4 recent tokens
    // ((12 − 4) / 2), whatever the window's length; kvpress's preset protects its whole window.
    let keys: Vec<[f32; D]> = (0..40).map(|i| e(i % 2, 1.0)).collect();
    for policy in ["snapkv", "momentkv", "snapkv:window=64", "adakv"] {
        let mut c = cache(policy, 12, "prefill", geometry(1, 1));
        prefill(&mut c, &keys, &keys);
        let kept = &kept(&c)[0];
        assert!(kept.len() <= 12, "{policy}: {kept:?}");
        assert_eq!(kept[..4], [0, 1, 2, 3], "{policy}: {kept:?}");
        assert_eq!(
            kept[kept.len() - 4..],
            [36, 37, 38, 39],
            "{policy}: {kept:?}"
        );
    }
    let mut c = cache("snapkv:preset=kvpress", 12, "prefill", geometry(1, 1));
    prefill(&mut c, &keys, &keys);
    assert_eq!(kept(&c), vec![(28..40).collect::<Vec<u32>>()]);
}

#[test]
fn snapkv_keeps_what_the_window_attends_to_plus_the_window() {
    // The last two queries look along e0; only token 2 has a large e0 key.
    let mut keys: Vec<[f32; D]> = (0..10).map(|i| e(1 + i % 3, 1.0)).collect();
    keys[2] = e(0, 8.0);
    let queries: Vec<[f32; D]> = (0..10).map(|_| e(0, 4.0)).collect();
    let mut c = cache(
        "snapkv:window=2,kernel=1,preset=kvpress",
        3,
        "prefill",
        geometry(1, 1),
    );
    prefill(&mut c, &queries, &keys);
    assert_eq!(kept(&c), vec![vec![2, 8, 9]]);
}

#[test]
fn tova_keeps_what_the_newest_query_attends_to() {
    let mut keys: Vec<[f32; D]> = (0..8).map(|i| e(1 + i % 3, 1.0)).collect();
    keys[4] = e(0, 8.0);
    let mut queries: Vec<[f32; D]> = (0..8).map(|i| e(1 + i % 3, 1.0)).collect();
    queries[7] = e(0, 4.0);
    let mut c = cache("tova", 2, "prefill", geometry(1, 1));
    prefill(&mut c, &queries, &keys);
    assert_eq!(kept(&c), vec![vec![4, 7]]);
}

#[test]
fn h2o_keeps_the_heavy_hitter_and_its_recent_window() {
    let mut keys: Vec<[f32; D]> = (0..10).map(|i| e(1 + i % 3, 1.0)).collect();
    keys[1] = e(0, 8.0);
    let queries: Vec<[f32; D]> = (0..10).map(|_| e(0, 2.0)).collect();
    let mut c = cache("h2o", 4, "prefill", geometry(1, 1));
    prefill(&mut c, &queries, &keys);
    // recent_share 0.5 protects 8 and 9; token 1 gathers most attention; token 0 is next (it
    // took all of the first query's).
    assert_eq!(kept(&c), vec![vec![0, 1, 8, 9]]);
}

#[test]
fn keydiff_keeps_the_key_pointing_elsewhere() {
    let mut keys: Vec<[f32; D]> = (0..6).map(|i| e(0, 1.0 + i as f32)).collect();
    keys[3] = e(2, 1.0);
    let mut c = cache("keydiff", 1, "prefill", geometry(1, 1));
    prefill(&mut c, &keys, &keys);
    assert_eq!(kept(&c), vec![vec![3]]);
}

#[test]
fn expected_attention_keeps_keys_aligned_with_the_mean_query() {
    let mut keys: Vec<[f32; D]> = (0..8).map(|i| e(1 + i % 3, 1.0)).collect();
    keys[5] = e(0, 6.0);
    keys[2] = e(0, 3.0);
    let queries: Vec<[f32; D]> = (0..8).map(|_| e(0, 2.0)).collect();
    let mut c = cache("expected:sinks=0", 2, "prefill", geometry(1, 1));
    prefill(&mut c, &queries, &keys);
    assert_eq!(kept(&c), vec![vec![2, 5]]);
}

#[test]
fn random_is_reproducible_and_follows_its_seed() {
    let keys: Vec<[f32; D]> = (0..40).map(|i| e(i % D, 1.0)).collect();
    let run = |policy: &str| {
        let mut c = cache(policy, 10, "prefill", geometry(1, 1));
        prefill(&mut c, &keys, &keys);
        kept(&c)
    };
    assert_eq!(run("random:seed=3"), run("random:seed=3"));
    assert_ne!(run("random:seed=3"), run("random:seed=4"));
    assert_eq!(run("random")[0].len(), 10);
}

#[test]
fn decode_eviction_holds_the_budget_at_every_step() {
    let keys: Vec<[f32; D]> = (0..6).map(|i| e(0, 1.0 + i as f32)).collect();
    let mut c = cache("knorm", 4, "prefill,decode", geometry(1, 1));
    prefill(&mut c, &keys, &keys);
    let bytes = c.bytes();
    for step in 0..5 {
        c.prepare(1, Phase::Decode).unwrap();
        let k = tensor(&[e(0, 0.5)], [1, 1, 1]);
        c.attend(0, k.clone(), k.clone(), k).unwrap();
        let held = kept(&c);
        assert_eq!(held[0].len(), 4, "step {step}");
        // The new key has the smallest norm, so it always stays.
        assert!(held[0].contains(&(6 + step as u32)));
        assert_eq!(c.bytes(), bytes, "bytes must not grow once at the budget");
    }
    assert_eq!(c.evicted(), 2 + 5);
}

#[test]
fn a_decode_interval_evicts_back_to_the_budget_every_interval_tokens() {
    let keys: Vec<[f32; D]> = (0..6).map(|i| e(0, 1.0 + i as f32)).collect();
    let mut c = cache("knorm", 4, "decode=3", geometry(1, 1));
    prefill(&mut c, &keys, &keys);
    let mut sizes = Vec::new();
    for _ in 0..7 {
        c.prepare(1, Phase::Decode).unwrap();
        let k = tensor(&[e(0, 0.5)], [1, 1, 1]);
        c.attend(0, k.clone(), k.clone(), k).unwrap();
        sizes.push(kept(&c)[0].len());
    }
    assert_eq!(sizes, vec![5, 6, 4, 5, 6, 4, 5]);
}

#[test]
fn without_decode_eviction_generated_tokens_accumulate() {
    let keys: Vec<[f32; D]> = (0..6).map(|i| e(0, 1.0 + i as f32)).collect();
    let mut c = cache("knorm", 4, "prefill", geometry(1, 1));
    prefill(&mut c, &keys, &keys);
    for _ in 0..3 {
        c.prepare(1, Phase::Decode).unwrap();
        let k = tensor(&[e(0, 0.5)], [1, 1, 1]);
        c.attend(0, k.clone(), k.clone(), k).unwrap();
    }
    assert_eq!(kept(&c)[0].len(), 7);
}

#[test]
fn chunked_prefill_evicts_after_every_chunk() {
    let mut c = cache("knorm", 4, "chunked=3", geometry(1, 1));
    assert_eq!(c.prefill_chunk(), Some(3));
    let keys: Vec<[f32; D]> = (0..9).map(|i| e(0, 9.0 - i as f32)).collect();
    for (n, chunk) in keys.chunks(3).enumerate() {
        prefill(&mut c, chunk, chunk);
        assert!(kept(&c)[0].len() <= 4, "chunk {n}");
    }
    // Norms fall with position: the last four tokens are the smallest.
    assert_eq!(kept(&c), vec![vec![5, 6, 7, 8]]);
    assert_eq!(c.seen(), 9);
}

#[test]
fn a_budget_covering_the_context_evicts_nothing() {
    let keys: Vec<[f32; D]> = (0..6).map(|i| e(0, 1.0 + i as f32)).collect();
    let mut c = cache("snapkv", 64, "prefill,decode", geometry(1, 1));
    prefill(&mut c, &keys, &keys);
    assert_eq!(c.evicted(), 0);
    assert_eq!(kept(&c), vec![(0..6).collect::<Vec<u32>>()]);
}

#[test]
fn batch_rows_keep_their_own_tokens() {
    // Row 0's norms rise with position, row 1's fall.
    let mut rows = Vec::new();
    for b in 0..2 {
        for i in 0..6 {
            let n = if b == 0 {
                1.0 + i as f32
            } else {
                6.0 - i as f32
            };
            rows.push(e(0, n));
        }
    }
    let mut c = cache("knorm", 2, "prefill", geometry(1, 1));
    c.prepare(6, Phase::Prefill).unwrap();
    let x = tensor(&rows, [2, 1, 6]);
    c.attend(0, x.clone(), x.clone(), x).unwrap();
    assert_eq!(kept(&c), vec![vec![0, 1], vec![4, 5]]);
}

#[test]
fn adakv_gives_heads_different_budgets_and_attends_over_exactly_what_each_kept() {
    // Two KV heads with two query heads each. Head 0's keys are all small (high KNorm scores),
    // head 1's large: the layer's 2·3 tokens go 5 to head 0 and the guaranteed 1 to head 1.
    let g = geometry(2, 2);
    let mut keys = Vec::new();
    for h in 0..2 {
        for i in 0..6 {
            let scale = if h == 0 {
                1.0 + 0.1 * i as f32
            } else {
                9.0 + i as f32
            };
            keys.push(e(i % D, scale));
        }
    }
    let values: Vec<[f32; D]> = (0..12).map(|i| e((i + 1) % D, 1.0 + i as f32)).collect();
    let queries: Vec<[f32; D]> = (0..24).map(|i| e(i % D, 0.5)).collect();
    let mut c = cache("adakv:scorer=knorm", 3, "prefill", g);
    c.prepare(6, Phase::Prefill).unwrap();
    c.attend(
        0,
        tensor(&queries, [1, 4, 6]),
        tensor(&keys, [1, 2, 6]),
        tensor(&values, [1, 2, 6]),
    )
    .unwrap();
    let held = kept(&c);
    assert_eq!(held, vec![vec![0, 1, 2, 3, 4], vec![0]]);
    // Storage is padded to the widest head: 5 slots per head, not the 6-token context.
    let per_slot = 2 * D * 4 + 5;
    assert_eq!(c.bytes(), 2 * 5 * per_slot + 2 * 5 * 4);

    // A decode step attends each head over its own kept tokens plus the new one.
    c.prepare(1, Phase::Decode).unwrap();
    let (q, k, v) = (
        tensor(&[e(0, 1.0), e(1, 1.0), e(2, 1.0), e(3, 1.0)], [1, 4, 1]),
        tensor(&[e(1, 2.0), e(2, 2.0)], [1, 2, 1]),
        tensor(&[e(3, 1.0), e(0, 1.0)], [1, 2, 1]),
    );
    let out = c.attend(0, q.clone(), k.clone(), v.clone()).unwrap();
    for (h, kept) in held.iter().enumerate() {
        let pick = |x: &[[f32; D]], new: [f32; D]| -> Tensor<B, 4> {
            let mut rows: Vec<[f32; D]> = kept.iter().map(|&p| x[h * 6 + p as usize]).collect();
            rows.push(new);
            let n = rows.len();
            tensor(&rows, [1, 1, n])
        };
        let kd = k
            .clone()
            .narrow(1, h, 1)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let vd = v
            .clone()
            .narrow(1, h, 1)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let want = attention_reference(
            q.clone().narrow(1, 2 * h, 2),
            pick(&keys, kd.try_into().unwrap()),
            pick(&values, vd.try_into().unwrap()),
        );
        out.clone()
            .narrow(1, 2 * h, 2)
            .into_data()
            .assert_approx_eq::<f32>(&want.into_data(), Tolerance::absolute(1e-5));
    }
}

#[test]
fn tova_refuses_per_head_budgets() {
    let policy = "adakv:scorer=tova"
        .parse::<PolicySpec>()
        .unwrap()
        .build::<B>()
        .unwrap();
    let err = EvictingCache::new(
        geometry(2, 1),
        policy,
        Budget::tokens(4).unwrap(),
        EvictAt::PREFILL,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("same in every head"), "{err}");
}

#[test]
fn moments_make_decoding_exact_when_the_evicted_keys_are_equal() {
    // Tokens 0..4 share one large key (KNorm evicts them), with different values; 4..8 are small.
    let mut keys: Vec<[f32; D]> = (0..8).map(|i| e(i % D, 0.5 + 0.1 * i as f32)).collect();
    keys[..4].fill([2.0, -1.0, 0.5, 3.0]);
    let values: Vec<[f32; D]> = (0..8).map(|i| e((i + 2) % D, 1.0 + i as f32)).collect();
    let step = (
        tensor(&[[0.3, -0.2, 0.8, 0.5]], [1, 1, 1]),
        tensor(&[[0.1, 0.4, -0.3, 0.2]], [1, 1, 1]),
        tensor(&[[1.0, 2.0, -1.0, 0.5]], [1, 1, 1]),
    );
    let decode = |cache: &mut dyn KvCache<B>| {
        cache.prepare(8, Phase::Prefill).unwrap();
        let (q, k, v) = (
            tensor(&keys, [1, 1, 8]),
            tensor(&keys, [1, 1, 8]),
            tensor(&values, [1, 1, 8]),
        );
        cache.attend(0, q, k, v).unwrap();
        cache.prepare(1, Phase::Decode).unwrap();
        cache
            .attend(0, step.0.clone(), step.1.clone(), step.2.clone())
            .unwrap()
    };
    let exact = decode(&mut FullCache::new(1));
    let mut corrected = cache("knorm+moments", 4, "prefill", geometry(1, 1));
    let out = decode(&mut corrected);
    assert_eq!(kept(&corrected), vec![vec![4, 5, 6, 7, 8]]);
    out.into_data()
        .assert_approx_eq::<f32>(&exact.clone().into_data(), Tolerance::absolute(1e-5));
    let mut plain = cache("knorm", 4, "prefill", geometry(1, 1));
    let dropped = decode(&mut plain);
    let gap: f32 = (dropped - exact).abs().max().into_scalar();
    assert!(
        gap > 0.1,
        "evicting without moments should change the output, changed by {gap}"
    );
    // The moments count against the memory: d² + 2d + 1 floats per head.
    assert_eq!(corrected.bytes() - plain.bytes(), (D * D + 2 * D + 1) * 4);
}

#[test]
fn momentkv_evicts_what_the_summary_captures_and_keeps_outliers_on_both_sides() {
    // The window's queries look along e0. Token 2's key sits far above the others along e0
    // (strongly attended), token 5's far below (ignored); the rest differ only off e0, where the
    // queries do not look, so the key mean captures them exactly.
    let mut keys: Vec<[f32; D]> = (0..10).map(|i| e(1 + i % 3, 1.0)).collect();
    keys[2][0] = 3.0;
    keys[5][0] = -3.0;
    let queries: Vec<[f32; D]> = (0..10).map(|_| e(0, 4.0)).collect();
    let mut snap = cache(
        "snapkv:window=2,kernel=1,preset=kvpress",
        4,
        "prefill",
        geometry(1, 1),
    );
    prefill(&mut snap, &queries, &keys);
    assert!(!kept(&snap)[0].contains(&5), "{:?}", kept(&snap));
    for spec in [
        "momentkv:window=2,kernel=1,preset=kvpress",
        "momentkv:window=2,kernel=1,correct=false,preset=kvpress",
    ] {
        let mut c = cache(spec, 4, "prefill", geometry(1, 1));
        prefill(&mut c, &queries, &keys);
        assert_eq!(kept(&c), vec![vec![2, 5, 8, 9]], "{spec}");
    }
}

/// Values for `prefill_with`: token `j` of the single head carries `values[j]`.
fn prefill_with(
    cache: &mut EvictingCache<B>,
    queries: Tensor<B, 4>,
    keys: &[[f32; D]],
    values: &[[f32; D]],
) {
    let s = keys.len();
    cache.prepare(s, Phase::Prefill).unwrap();
    cache
        .attend(
            0,
            queries,
            tensor(keys, [1, 1, s]),
            tensor(values, [1, 1, s]),
        )
        .unwrap();
}

/// One replay pass of 5 tokens over positions `4..seen` (values from a fixed formula starting
/// at `phase`) and the eviction after it, when `cache` awaits replays (KVzip); else nothing.
fn replay_if_due(cache: &mut EvictingCache<B>, kv: usize, group: usize, phase: f32) {
    if cache.replay_chunk().is_none() {
        return;
    }
    let wave = |heads: usize, shift: f32| {
        let rows: Vec<[f32; D]> = (0..heads * 5)
            .map(|i| std::array::from_fn(|c| ((i * 3 + c * 5) as f32 * 0.61 + shift).cos()))
            .collect();
        tensor(&rows, [1, heads, 5])
    };
    let to = cache.seen();
    cache.prepare(5, Phase::Replay { from: 4, to }).unwrap();
    cache
        .attend(
            0,
            wave(kv * group, phase),
            wave(kv, phase + 1.0),
            wave(kv, phase + 2.0),
        )
        .unwrap();
    assert_eq!(cache.seen(), to, "a replay pass takes no positions");
    cache.end_replay().unwrap();
}

/// A one-layer model context: `g` with `output` as the layer's output projection.
fn with_output(g: Geometry, output: &Tensor<B, 2>) -> ModelContext<B> {
    ModelContext {
        geometry: g,
        output_projections: vec![output.clone()],
    }
}

/// `[rows, cols]` from a row-major slice.
fn matrix(data: Vec<f32>, rows: usize, cols: usize) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), &Default::default())
}

#[test]
fn laprox_evicts_a_strongly_attended_token_the_output_projection_discards() {
    // Tokens 2 and 5 share the key the window's queries look along, so their attention ties.
    // The output projection drops channel 3, where token 5's value lies: SnapKV breaks the tie
    // for the more recent token 5, LaProx keeps token 2, whose value reaches the output.
    let mut keys: Vec<[f32; D]> = (0..10).map(|i| e(1 + i % 3, 1.0)).collect();
    keys[2] = e(0, 8.0);
    keys[5] = e(0, 8.0);
    let mut values: Vec<[f32; D]> = (0..10).map(|i| e(i % 3, 1.0)).collect();
    values[2] = [0.0, 1.0, 0.0, 0.0];
    values[5] = [0.0, 0.0, 0.0, 1.0];
    let queries: Vec<[f32; D]> = (0..10).map(|_| e(0, 4.0)).collect();
    let drop_channel_3 = matrix(
        (0..D * D)
            .map(|i| {
                if i % (D + 1) == 0 && i / D != 3 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect(),
        D,
        D,
    );
    let context = with_output(geometry(1, 1), &drop_channel_3);
    let mut snap = cache(
        "snapkv:window=2,kernel=1,preset=kvpress",
        3,
        "prefill",
        context.clone(),
    );
    let q = tensor(&queries, [1, 1, 10]);
    prefill_with(&mut snap, q.clone(), &keys, &values);
    assert_eq!(kept(&snap), vec![vec![5, 8, 9]]);
    let mut laprox = cache(
        "laprox:window=2,kernel=1,preset=kvpress",
        3,
        "prefill",
        context,
    );
    prefill_with(&mut laprox, q, &keys, &values);
    assert_eq!(kept(&laprox), vec![vec![2, 8, 9]]);
}

#[test]
fn laprox_counts_heads_that_cancel_in_the_output_as_nothing() {
    // One KV head read by two query heads with the same queries, so both attend tokens 2 and 5
    // alike. Head 1's projection flips channel 0: token 5's value (channel 0) reaches the output
    // as +x from head 0 and −x from head 1 and cancels; token 2's (channel 1) adds up. Scoring
    // heads one by one would tie them; the cross-head term keeps token 2.
    let mut keys: Vec<[f32; D]> = (0..10).map(|i| e(1 + i % 3, 1.0)).collect();
    keys[2] = e(0, 8.0);
    keys[5] = e(0, 8.0);
    let mut values: Vec<[f32; D]> = (0..10).map(|i| e(2 + i % 2, 1.0)).collect();
    values[2] = [0.0, 1.0, 0.0, 0.0];
    values[5] = [1.0, 0.0, 0.0, 0.0];
    let queries: Vec<[f32; D]> = (0..20).map(|_| e(0, 4.0)).collect();
    // [hidden = 4, heads · head_dim = 8]: head 0 the identity, head 1 the identity with channel 0
    // negated.
    let mut w = vec![0.0; D * 2 * D];
    for c in 0..D {
        w[c * 2 * D + c] = 1.0;
        w[c * 2 * D + D + c] = if c == 0 { -1.0 } else { 1.0 };
    }
    let output = matrix(w, D, 2 * D);
    let mut laprox = cache(
        "laprox:window=2,kernel=1,preset=kvpress",
        3,
        "prefill",
        with_output(geometry(1, 2), &output),
    );
    prefill_with(&mut laprox, tensor(&queries, [1, 2, 10]), &keys, &values);
    assert_eq!(kept(&laprox), vec![vec![2, 8, 9]]);
}

#[test]
fn laprox_scores_are_the_size_of_each_tokens_term_of_the_projected_output() {
    use momentkv_cache::policies::laprox::{output_gram, LaProx};
    use momentkv_cache::{Observation, Scorer};
    // 2 KV heads of 2 query heads, 10 tokens, a window of 3, hidden size 5; fixed pseudo-random
    // data.
    let (kv, g, t, w, hidden) = (2, 2, 10, 3, 5);
    let geo = geometry(kv, g);
    let wave = |n: usize, phase: f32| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7) as f32 * 0.41 + phase).sin() * 1.5)
            .collect()
    };
    let (q, k, v, wo) = (
        wave(kv * g * t * D, 0.0),
        wave(kv * t * D, 1.0),
        wave(kv * t * D, 2.0),
        wave(hidden * kv * g * D, 3.0),
    );
    let dev = Default::default();
    let at = |x: &[f32], shape: [usize; 4]| {
        Tensor::<B, 4>::from_data(TensorData::new(x.to_vec(), shape), &dev)
    };
    let weight = matrix(wo.clone(), hidden, kv * g * D);
    let gram = output_gram(0, &weight, &geo).unwrap();
    let positions: Vec<u32> = (0..kv).flat_map(|_| 0..t as u32).collect();
    let valid = vec![true; kv * t];
    let obs = Observation {
        layer: 0,
        geometry: &geo,
        keys: at(&k, [1, kv, t, D]),
        values: at(&v, [1, kv, t, D]),
        positions: &positions,
        valid: &valid,
        queries: Some(at(&q, [1, kv * g, t, D])),
        first_query: 0,
        mass: None,
        seen: t,
        keep: 4,
        moments: None,
        state: Some(&gram),
        replay: None,
    };
    let scores = LaProx {
        window: w,
        kernel: 1,
    }
    .score(&obs);
    // By hand: C_j = Σ_h A_h[:, j] (W_O^h v_j)ᵀ over the window's queries, ‖C_j‖_F.
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for head in 0..kv {
        let key = |j: usize| &k[(head * t + j) * D..(head * t + j + 1) * D];
        let value = |j: usize| &v[(head * t + j) * D..(head * t + j + 1) * D];
        for j in 0..t {
            let mut c = vec![0.0f32; w * hidden];
            for h in head * g..(head + 1) * g {
                for (row, i) in (t - w..t).enumerate() {
                    let query = &q[(h * t + i) * D..(h * t + i + 1) * D];
                    let logits: Vec<f32> = (0..=i)
                        .map(|m| dot(query, key(m)) / (D as f32).sqrt())
                        .collect();
                    let top = logits.iter().copied().fold(f32::MIN, f32::max);
                    let z: f32 = logits.iter().map(|l| (l - top).exp()).sum();
                    let a = if j <= i {
                        (logits[j] - top).exp() / z
                    } else {
                        0.0
                    };
                    for (o, out) in c[row * hidden..(row + 1) * hidden].iter_mut().enumerate() {
                        let column = |ch: usize| wo[o * kv * g * D + h * D + ch];
                        *out += a * (0..D).map(|ch| column(ch) * value(j)[ch]).sum::<f32>();
                    }
                }
            }
            let want = if j < t - w { dot(&c, &c).sqrt() } else { 0.0 };
            let got = scores[head * t + j];
            assert!(
                (got - want).abs() <= 1e-5 + 1e-4 * want,
                "head {head} token {j}: {got} against {want}"
            );
        }
    }
    assert!(scores.iter().any(|&s| s > 0.1), "{scores:?}");
}

#[test]
fn laprox_without_the_output_projection_is_an_error_naming_it() {
    let build = |context: ModelContext<B>| {
        let policy = "laprox:window=2"
            .parse::<PolicySpec>()
            .unwrap()
            .build::<B>()
            .unwrap();
        EvictingCache::new(
            context,
            policy,
            Budget::tokens(3).unwrap(),
            EvictAt::PREFILL,
        )
        .err()
        .unwrap()
        .to_string()
    };
    let err = build(geometry(1, 1).into());
    assert!(
        err.contains("output projection") && err.contains("laprox"),
        "{err}"
    );
    let wrong = matrix(vec![0.0; 12], 4, 3);
    let err = build(with_output(geometry(1, 1), &wrong));
    assert!(
        err.contains("output projection") && err.contains("[4, 3]"),
        "{err}"
    );
}

#[test]
fn analysis_measures_the_evicted_part_of_attention() {
    use momentkv_cache::analysis::AnalyzingCache;
    // As above: KNorm evicts tokens 0..4, which share one key; one token is then decoded.
    let mut keys: Vec<[f32; D]> = (0..8).map(|i| e(i % D, 0.5 + 0.1 * i as f32)).collect();
    keys[..4].fill([2.0, -1.0, 0.5, 3.0]);
    let values: Vec<[f32; D]> = (0..8).map(|i| e((i + 2) % D, 1.0 + i as f32)).collect();
    let (q, k, v) = (
        [0.3, -0.2, 0.8, 0.5],
        [0.1, 0.4, -0.3, 0.2],
        [1.0, 2.0, -1.0, 0.5],
    );
    let analyse = |policy: &str| {
        let mut a = AnalyzingCache::new(cache(policy, 4, "prefill", geometry(1, 1)), 1);
        a.prepare(8, Phase::Prefill).unwrap();
        let (pq, pk, pv) = (
            tensor(&keys, [1, 1, 8]),
            tensor(&keys, [1, 1, 8]),
            tensor(&values, [1, 1, 8]),
        );
        a.attend(0, pq, pk, pv).unwrap();
        a.prepare(1, Phase::Decode).unwrap();
        let (dq, dk, dv) = (
            tensor(&[q], [1, 1, 1]),
            tensor(&[k], [1, 1, 1]),
            tensor(&[v], [1, 1, 1]),
        );
        a.attend(0, dq, dk, dv).unwrap();
        a.report().remove(0)
    };
    // Brute force: weights of the decoded query over the 9 tokens.
    let all_keys: Vec<[f32; D]> = keys.iter().copied().chain([k]).collect();
    let all_values: Vec<[f32; D]> = values.iter().copied().chain([v]).collect();
    let logits: Vec<f32> = all_keys
        .iter()
        .map(|key| key.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>() / 2.0)
        .collect();
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let w: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = w.iter().sum();
    let mass: f32 = w[..4].iter().sum::<f32>() / total;
    let mix = |range: std::ops::Range<usize>| {
        let z: f32 = w[range.clone()].iter().sum();
        let mut o = [0f32; D];
        for i in range {
            for (c, x) in o.iter_mut().zip(all_values[i]) {
                *c += w[i] * x / z;
            }
        }
        o
    };
    let (f_e, o_r, o) = (mix(0..4), mix(4..9), mix(0..9));
    let dot = |a: [f32; D], b: [f32; D]| a.iter().zip(&b).map(|(x, y)| x * y).sum::<f32>();
    let cos = |a, b| dot(a, b) / (dot(a, a) * dot(b, b)).sqrt();
    let diff: [f32; D] = std::array::from_fn(|c| o_r[c] - o[c]);
    let dropped = (dot(diff, diff) / dot(o, o)).sqrt();

    let corrected = analyse("knorm+moments");
    assert_eq!((corrected.rows, corrected.rows_evicted), (1, 1));
    assert!(corrected.rel_error < 1e-5, "{corrected:?}");
    assert!(
        (corrected.estimate_cosine - 1.0).abs() < 1e-5,
        "{corrected:?}"
    );
    assert!(
        (corrected.evicted_mass - mass as f64).abs() < 1e-5,
        "{corrected:?} vs {mass}"
    );
    let plain = analyse("knorm");
    assert!(
        (plain.rel_error - dropped as f64).abs() < 1e-4,
        "{plain:?} vs {dropped}"
    );
    assert!(dropped > 0.1);
    assert!(
        (plain.mismatch_cosine - cos(o_r, f_e) as f64).abs() < 1e-4,
        "{plain:?}"
    );
    assert!((plain.estimate_cosine - 1.0).abs() < 1e-5);
}

#[test]
fn a_fork_of_a_prefill_record_evicts_exactly_as_the_cache_would() {
    use momentkv_cache::{Inputs, PrefillRecord, POLICIES};
    // 2 KV heads of 2 query heads, 96 prompt tokens (a budget of 80), then 3 decoded; values from
    // a fixed formula.
    let g = geometry(2, 2);
    let wave = |shape: [usize; 3], phase: f32| {
        let rows: Vec<[f32; D]> = (0..shape.iter().product::<usize>())
            .map(|i| std::array::from_fn(|c| ((i * 7 + c * 3) as f32 * 0.37 + phase).sin() * 2.0))
            .collect();
        tensor(&rows, shape)
    };
    let prompt = (
        wave([1, 4, 96], 0.0),
        wave([1, 2, 96], 1.0),
        wave([1, 2, 96], 2.0),
    );
    let steps: Vec<_> = (0..3)
        .map(|i| {
            let p = 3.0 + i as f32;
            (
                wave([1, 4, 1], p),
                wave([1, 2, 1], p + 0.5),
                wave([1, 2, 1], p + 0.7),
            )
        })
        .collect();
    let decode = |cache: &mut EvictingCache<B>| -> Vec<Tensor<B, 4>> {
        steps
            .iter()
            .map(|(q, k, v)| {
                cache.prepare(1, Phase::Decode).unwrap();
                cache.attend(0, q.clone(), k.clone(), v.clone()).unwrap()
            })
            .collect()
    };
    let output = matrix(
        (0..6 * 4 * D).map(|i| (i as f32 * 0.53).cos()).collect(),
        6,
        4 * D,
    );
    // Every registered policy, with its defaults and with the moments, and a few settings with a
    // window shorter than the budget.
    let mut specs: Vec<String> = POLICIES
        .iter()
        .filter(|e| e.name != "full")
        .flat_map(|e| [e.name.to_string(), format!("{}+moments", e.name)])
        .collect();
    specs.extend(
        [
            "snapkv:window=4,kernel=3",
            "expected:n_future=8,sinks=1",
            "adakv:window=4",
            "momentkv:window=4,kernel=3",
            "pyramidkv:window=2",
            "laprox:window=4,kernel=3",
        ]
        .map(String::from),
    );
    let built: Vec<_> = specs
        .iter()
        .map(|s| s.parse::<PolicySpec>().unwrap().build::<B>().unwrap())
        .collect();
    let inputs = built
        .iter()
        .fold(Inputs::NONE, |all, p| all.union(p.inputs()));
    let mut record = PrefillRecord::new(1, inputs);
    record.prepare(96, Phase::Prefill).unwrap();
    record
        .attend(0, prompt.0.clone(), prompt.1.clone(), prompt.2.clone())
        .unwrap();
    let context = with_output(g.clone(), &output);
    for (policy, spec) in specs.iter().zip(built) {
        // A replaying policy (KVzip) evicts once, after a replay pass, and not while decoding.
        let at = if spec.replays() {
            "prefill"
        } else {
            "prefill,decode=2"
        };
        let mut direct = cache(policy, 80, at, context.clone());
        direct.prepare(96, Phase::Prefill).unwrap();
        direct
            .attend(0, prompt.0.clone(), prompt.1.clone(), prompt.2.clone())
            .unwrap();
        let mut fork = EvictingCache::fork(
            &record,
            context.clone(),
            spec,
            Budget::tokens(80).unwrap(),
            at.parse().unwrap(),
        )
        .unwrap();
        replay_if_due(&mut direct, 2, 2, 8.0);
        replay_if_due(&mut fork, 2, 2, 8.0);
        assert_eq!(kept(&fork), kept(&direct), "{policy} after prefill");
        assert!(direct.evicted() > 0, "{policy} evicted nothing");
        assert_eq!(fork.bytes(), direct.bytes(), "{policy}");
        for (a, b) in decode(&mut fork).into_iter().zip(decode(&mut direct)) {
            a.into_data()
                .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(1e-5));
        }
        assert_eq!(kept(&fork), kept(&direct), "{policy} after decoding");
    }
    // The record is one pass: a second one, and chunked eviction on a fork, are refused.
    assert!(record.prepare(1, Phase::Prefill).is_err());
    let snap = "snapkv"
        .parse::<PolicySpec>()
        .unwrap()
        .build::<B>()
        .unwrap();
    let err = EvictingCache::fork(
        &record,
        g,
        snap,
        Budget::tokens(8).unwrap(),
        "chunked".parse().unwrap(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("one piece"), "{err}");
}

#[test]
fn a_summary_per_segment_is_exact_when_each_segments_keys_are_equal() {
    // Positions 0..16 share key A, 16..32 key B (both large: KNorm evicts them), 32..48 are small.
    let mut keys: Vec<[f32; D]> = (0..48).map(|i| e(i % D, 0.2 + 0.01 * i as f32)).collect();
    keys[..16].fill([2.0, -1.0, 0.5, 3.0]);
    keys[16..32].fill([-1.5, 2.5, 1.0, -2.0]);
    let values: Vec<[f32; D]> = (0..48)
        .map(|i| e((i + 1) % D, 1.0 + 0.25 * i as f32))
        .collect();
    let decode = |cache: &mut dyn KvCache<B>| {
        cache.prepare(48, Phase::Prefill).unwrap();
        let (q, k, v) = (
            tensor(&keys, [1, 1, 48]),
            tensor(&keys, [1, 1, 48]),
            tensor(&values, [1, 1, 48]),
        );
        cache.attend(0, q, k, v).unwrap();
        cache.prepare(1, Phase::Decode).unwrap();
        cache
            .attend(
                0,
                tensor(&[[0.4, 0.3, -0.6, 0.2]], [1, 1, 1]),
                tensor(&[[0.1, -0.2, 0.3, 0.1]], [1, 1, 1]),
                tensor(&[[0.5, -1.0, 2.0, 1.0]], [1, 1, 1]),
            )
            .unwrap()
    };
    let exact = decode(&mut FullCache::new(1));
    let mut segmented = cache("knorm+moments:segment=16", 16, "prefill", geometry(1, 1));
    let out = decode(&mut segmented);
    assert_eq!(kept(&segmented), vec![(32..49).collect::<Vec<_>>()]);
    out.into_data()
        .assert_approx_eq::<f32>(&exact.clone().into_data(), Tolerance::absolute(1e-5));
    let mut single = cache("knorm+moments", 16, "prefill", geometry(1, 1));
    let gap: f32 = (decode(&mut single) - exact).abs().max().into_scalar();
    assert!(
        gap > 1e-3,
        "one summary of two key clusters should not be exact: {gap}"
    );
    // Two summaries: twice the d² + 2d + 1 floats of one.
    assert_eq!(segmented.bytes() - single.bytes(), (D * D + 2 * D + 1) * 4);
}

#[test]
fn summaries_per_head_are_capped_however_long_the_context() {
    use momentkv_cache::MAX_SUMMARIES;
    // `blocks` blocks of 16 positions; the last block has small keys (KNorm keeps it), so the
    // evicted positions fill blocks 0..blocks-1, one summary each up to the cap.
    let bytes = |blocks: usize| {
        let n = 16 * blocks;
        let rows: Vec<[f32; D]> = (0..n)
            .map(|i| {
                e(
                    i % D,
                    if i < n - 16 {
                        2.0 + (i % 5) as f32
                    } else {
                        0.1
                    },
                )
            })
            .collect();
        let mut c = cache("knorm+moments:segment=16", 16, "prefill", geometry(1, 1));
        c.prepare(n, Phase::Prefill).unwrap();
        let t = || tensor(&rows, [1, 1, n]);
        c.attend(0, t(), t(), t()).unwrap();
        assert_eq!(
            kept(&c),
            vec![((n - 16) as u32..n as u32).collect::<Vec<_>>()]
        );
        c.bytes()
    };
    let summary = (D * D + 2 * D + 1) * 4;
    assert_eq!(MAX_SUMMARIES, 64);
    assert_eq!(bytes(80) - bytes(40), (MAX_SUMMARIES - 39) * summary);
    assert_eq!(bytes(100), bytes(80));
}

#[test]
fn every_policy_reports_the_bytes_of_every_tensor_it_holds() {
    use momentkv_cache::{QueryNeed, POLICIES};
    // 2 KV heads of 2 query heads, 96 prompt tokens at a budget of 40, one layer; values from a
    // fixed formula. The expected size is added up here from the shapes each held tensor must
    // have, independently of the cache's own accounting.
    let (kv, group, seen, budget) = (2, 2, 96, 40);
    let g = geometry(kv, group);
    let wave = |shape: [usize; 3], phase: f32| {
        let rows: Vec<[f32; D]> = (0..shape.iter().product::<usize>())
            .map(|i| std::array::from_fn(|c| ((i * 5 + c * 3) as f32 * 0.29 + phase).sin() * 2.0))
            .collect();
        tensor(&rows, shape)
    };
    let output = matrix(
        (0..6 * 4 * D).map(|i| (i as f32 * 0.71).sin()).collect(),
        6,
        4 * D,
    );
    let context = with_output(g, &output);
    let f32s = |n: usize| n * 4;
    for entry in POLICIES.iter().filter(|e| e.name != "full") {
        for spec in [entry.name.to_string(), format!("{}+moments", entry.name)] {
            let policy = spec.parse::<PolicySpec>().unwrap().build::<B>().unwrap();
            let inputs = policy.inputs();
            let mut c = cache(&spec, budget, "prefill", context.clone());
            c.prepare(seen, Phase::Prefill).unwrap();
            c.attend(
                0,
                wave([1, kv * group, seen], 0.0),
                wave([1, kv, seen], 1.0),
                wave([1, kv, seen], 2.0),
            )
            .unwrap();
            replay_if_due(&mut c, kv, group, 4.0);
            let held: Vec<usize> = c.kept_positions(0).unwrap().iter().map(Vec::len).collect();
            let slots = held.iter().copied().max().unwrap();
            let padded = held.iter().any(|&h| h != slots);
            let queries = match inputs.queries {
                QueryNeed::None => 0,
                QueryNeed::Recent(w) => w.min(seen),
                QueryNeed::All => seen,
            };
            let want = f32s(2 * kv * slots * D) // keys and values
                + kv * slots * 5 // positions and validity
                + if padded { f32s(kv * slots) } else { 0 } // the padding bias
                + if inputs.mass { f32s(kv * slots) } else { 0 }
                + f32s(kv * group * queries * D)
                + if inputs.moments { f32s(kv * (D * D + 2 * D + 1)) } else { 0 }
                // LaProx's head-group Gram of the output projection.
                + if entry.name == "laprox" { f32s(kv * group * D * group * D) } else { 0 };
            assert_eq!(c.bytes(), want, "{spec}: held {held:?}");
            assert!(c.evicted() > 0, "{spec}");
        }
    }
}

#[test]
fn kvzip_keeps_what_the_replay_attends_to_under_one_budget_for_all_layers() {
    use momentkv_cache::{PrefillRecord, POLICIES};
    // 2 layers of one head, 12 prompt tokens, a budget of 6 per head: 12 of the 24 entries stay.
    // Layer 0: token 9's key is aligned with every replay query, so it takes nearly all their
    // attention (≈ 0.997); layer 1: equal keys, so every replayed token gets ≈ 1/13. The replay
    // reconstructs 6..12, so 4 and 5 (template head past the 4 sinks) score 0 and go first.
    let g = Geometry {
        layers: 2,
        ..geometry(1, 1)
    };
    let keys: [Vec<[f32; D]>; 2] = [
        (0..12)
            .map(|i| if i == 9 { e(2, 6.0) } else { e(i % D, 1.0) })
            .collect(),
        vec![e(0, 0.5); 12],
    ];
    let values: Vec<[f32; D]> = (0..12).map(|i| e(i % D, 1.0)).collect();
    let queries: [[f32; D]; 2] = [e(2, 3.0), e(3, 1.0)];
    let prefill = |c: &mut dyn KvCache<B>| {
        c.prepare(12, Phase::Prefill).unwrap();
        for (layer, keys) in keys.iter().enumerate() {
            let q = vec![e(1, 0.2); 12];
            c.attend(
                layer,
                tensor(&q, [1, 1, 12]),
                tensor(keys, [1, 1, 12]),
                tensor(&values, [1, 1, 12]),
            )
            .unwrap();
        }
    };
    let replay = |c: &mut EvictingCache<B>| {
        assert_eq!(c.replay_chunk(), Some(2048));
        c.prepare(3, Phase::Replay { from: 6, to: 12 }).unwrap();
        for (layer, q) in queries.iter().enumerate() {
            let own = vec![e(1, 0.1); 3];
            c.attend(
                layer,
                tensor(&[*q; 3], [1, 1, 3]),
                tensor(&own, [1, 1, 3]),
                tensor(&own, [1, 1, 3]),
            )
            .unwrap();
        }
        c.end_replay().unwrap();
        assert_eq!(c.replay_chunk(), None, "one replay round");
    };
    let mut direct = cache("kvzip", 6, "prefill", g.clone());
    prefill(&mut direct);
    assert_eq!(direct.evicted(), 0, "nothing is evicted before the replay");
    let err = direct.prepare(1, Phase::Decode).unwrap_err().to_string();
    assert!(err.contains("replay"), "{err}");
    replay(&mut direct);
    let layer = |l: usize| direct.kept_positions(l).unwrap();
    assert_eq!(layer(0), vec![vec![0, 1, 2, 3, 9]]);
    assert_eq!(layer(1), vec![vec![0, 1, 2, 3, 9, 10, 11]]);
    assert_eq!(direct.evicted(), 12);
    // A fork of a recorded prefill replays and keeps the same.
    let mut record = PrefillRecord::new(2, momentkv_cache::Inputs::NONE);
    prefill(&mut record);
    let spec = "kvzip".parse::<PolicySpec>().unwrap().build::<B>().unwrap();
    let mut fork = EvictingCache::fork(
        &record,
        g.clone(),
        spec,
        Budget::tokens(6).unwrap(),
        EvictAt::PREFILL,
    )
    .unwrap();
    replay(&mut fork);
    for l in 0..2 {
        assert_eq!(fork.kept_positions(l), direct.kept_positions(l));
    }
    // layerwise: each layer keeps 6 of its own 12.
    let mut each = cache("kvzip:layerwise=true", 6, "prefill", g.clone());
    prefill(&mut each);
    replay(&mut each);
    assert_eq!(each.kept_positions(0).unwrap()[0].len(), 6);
    assert_eq!(each.kept_positions(1).unwrap()[0].len(), 6);
    // Refused: eviction while decoding, replays a cache does not await, a span past the prompt.
    let kvzip = || "kvzip".parse::<PolicySpec>().unwrap().build::<B>().unwrap();
    let err = EvictingCache::new(
        g.clone(),
        kvzip(),
        Budget::tokens(6).unwrap(),
        "decode".parse().unwrap(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("evict at prefill only"), "{err}");
    let mut knorm = cache("knorm", 6, "prefill", g.clone());
    prefill(&mut knorm);
    assert!(knorm.prepare(3, Phase::Replay { from: 4, to: 12 }).is_err());
    let mut past = cache("kvzip", 6, "prefill", g);
    prefill(&mut past);
    let err = past
        .prepare(3, Phase::Replay { from: 4, to: 13 })
        .unwrap_err()
        .to_string();
    assert!(err.contains("past the 12 prompt tokens"), "{err}");
    assert!(POLICIES.iter().any(|e| e.name == "kvzip"));
}
