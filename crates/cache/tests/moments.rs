//! MomentKV's moments and normalisation-corrected attention against brute force.

use burn::backend::NdArray;
use burn::tensor::{Distribution, Tensor, TensorData, Tolerance};
use momentkv_cache::{corrected_attention, masked_attention, Moments};

type B = NdArray;

fn rand(shape: [usize; 4], std: f64) -> Tensor<B, 4> {
    Tensor::random(shape, Distribution::Normal(0.0, std), &Default::default())
}

fn ones(shape: [usize; 4]) -> Tensor<B, 4> {
    Tensor::ones(shape, &Default::default())
}

/// Exact attention of `q` (the last `s` slots) over evicted tokens (older than every retained
/// one) plus the retained slots.
fn exact(
    q: Tensor<B, 4>,
    (ke, ve): (Tensor<B, 4>, Tensor<B, 4>),
    (k, v): (Tensor<B, 4>, Tensor<B, 4>),
) -> Tensor<B, 4> {
    masked_attention(
        q,
        Tensor::cat(vec![ke, k], 2),
        Tensor::cat(vec![ve, v], 2),
        None,
    )
}

fn max_abs(x: Tensor<B, 4>) -> f32 {
    x.abs().max().into_scalar()
}

#[test]
fn with_nothing_evicted_it_is_plain_attention() {
    let (q, k, v) = (
        rand([2, 6, 3, 8], 1.0),
        rand([2, 3, 10, 8], 1.0),
        rand([2, 3, 10, 8], 1.0),
    );
    let none = Moments::<B>::empty(2, 3, 8, &Default::default());
    corrected_attention(q.clone(), k.clone(), v.clone(), None, &none)
        .into_data()
        .assert_approx_eq::<f32>(
            &masked_attention(q, k, v, None).into_data(),
            Tolerance::absolute(1e-6),
        );
}

#[test]
fn the_correction_is_exact_when_every_evicted_key_is_equal() {
    let (q, k, v) = (
        rand([1, 4, 2, 8], 1.0),
        rand([1, 2, 6, 8], 1.0),
        rand([1, 2, 6, 8], 1.0),
    );
    let k0 = rand([1, 2, 1, 8], 1.0);
    let ke = k0.repeat_dim(2, 40);
    let ve = rand([1, 2, 40, 8], 2.0);
    let m = Moments::of(ke.clone(), ve.clone(), ones([1, 2, 40, 1]));
    let want = exact(q.clone(), (ke, ve), (k.clone(), v.clone()));
    corrected_attention(q, k, v, None, &m)
        .into_data()
        .assert_approx_eq::<f32>(&want.into_data(), Tolerance::absolute(1e-5));
}

#[test]
fn the_error_is_second_order_in_the_key_spread() {
    let (q, k, v) = (
        rand([1, 2, 1, 16], 1.0),
        rand([1, 1, 8, 16], 1.0),
        rand([1, 1, 8, 16], 1.0),
    );
    let centre = rand([1, 1, 1, 16], 1.0).repeat_dim(2, 64);
    let noise = rand([1, 1, 64, 16], 1.0);
    let ve = rand([1, 1, 64, 16], 1.0);
    let error = |spread: f64| {
        let ke = centre.clone() + noise.clone().mul_scalar(spread);
        let m = Moments::of(ke.clone(), ve.clone(), ones([1, 1, 64, 1]));
        let want = exact(q.clone(), (ke, ve.clone()), (k.clone(), v.clone()));
        let dropped = masked_attention(q.clone(), k.clone(), v.clone(), None);
        (
            max_abs(corrected_attention(q.clone(), k.clone(), v.clone(), None, &m) - want.clone()),
            max_abs(dropped - want),
        )
    };
    let (e1, dropped) = error(0.08);
    let (e2, _) = error(0.04);
    assert!(
        e1 < dropped / 20.0,
        "corrected {e1} vs evicted-and-ignored {dropped}"
    );
    let ratio = e1 / e2;
    assert!(
        (3.0..5.0).contains(&ratio),
        "halving the spread cut the error by {ratio}, not ~4"
    );
}

#[test]
fn moments_of_a_stream_equal_moments_of_the_concatenation() {
    let (k, v) = (
        rand([2, 3, 100, 8], 1.0).add_scalar(3.0),
        rand([2, 3, 100, 8], 1.0),
    );
    let all = Moments::of(k.clone(), v.clone(), ones([2, 3, 100, 1]));
    let mut start = 0;
    let mut stream = Moments::empty(2, 3, 8, &Default::default());
    for len in [7, 30, 1, 62] {
        let part = Moments::of(
            k.clone().narrow(2, start, len),
            v.clone().narrow(2, start, len),
            ones([2, 3, len, 1]),
        );
        stream = stream.merge(part);
        start += len;
    }
    let tol = Tolerance::absolute(1e-3);
    stream
        .count
        .into_data()
        .assert_approx_eq::<f32>(&all.count.into_data(), tol);
    stream
        .key_mean
        .into_data()
        .assert_approx_eq::<f32>(&all.key_mean.into_data(), tol);
    stream
        .value_mean
        .into_data()
        .assert_approx_eq::<f32>(&all.value_mean.into_data(), tol);
    stream
        .cross
        .into_data()
        .assert_approx_eq::<f32>(&all.cross.into_data(), tol);
}

#[test]
fn padding_weights_leave_tokens_out() {
    let (k, v) = (rand([1, 1, 5, 4], 1.0), rand([1, 1, 5, 4], 1.0));
    let w = Tensor::<B, 4>::from_data(
        TensorData::new(vec![1f32, 1., 0., 1., 0.], [1, 1, 5, 1]),
        &Default::default(),
    );
    let some = Moments::of(k.clone(), v.clone(), w);
    let pick = |x: Tensor<B, 4>| Tensor::cat(vec![x.clone().narrow(2, 0, 2), x.narrow(2, 3, 1)], 2);
    let want = Moments::of(pick(k), pick(v), ones([1, 1, 3, 1]));
    let tol = Tolerance::absolute(1e-5);
    some.cross
        .into_data()
        .assert_approx_eq::<f32>(&want.cross.into_data(), tol);
    some.key_mean
        .into_data()
        .assert_approx_eq::<f32>(&want.key_mean.into_data(), tol);
    assert_eq!(some.count.into_scalar(), 3.0);
}

#[test]
fn thirty_two_thousand_evicted_tokens_match_an_f64_reference() {
    // Keys far from the origin (mean 20) make raw sums cancel badly; merging 64-token batches
    // 512 times must still match the f64 centred moment.
    let (n, d, batch) = (32_768, 8, 64);
    let mut state = 12_345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    let k: Vec<f64> = (0..n * d).map(|i| 20.0 + (i % d) as f64 + next()).collect();
    let v: Vec<f64> = (0..n * d).map(|_| -7.0 + next()).collect();
    let mean = |x: &[f64], c: usize| (0..n).map(|i| x[i * d + c]).sum::<f64>() / n as f64;
    let (mk, mv): (Vec<f64>, Vec<f64>) = (
        (0..d).map(|c| mean(&k, c)).collect(),
        (0..d).map(|c| mean(&v, c)).collect(),
    );
    let mut cross = vec![0f64; d * d];
    for i in 0..n {
        for r in 0..d {
            for c in 0..d {
                cross[r * d + c] += (v[i * d + r] - mv[r]) * (k[i * d + c] - mk[c]);
            }
        }
    }
    let tensor = |x: &[f64], from: usize| {
        let rows: Vec<f32> = x[from * d..(from + batch) * d]
            .iter()
            .map(|&y| y as f32)
            .collect();
        Tensor::<B, 4>::from_data(TensorData::new(rows, [1, 1, batch, d]), &Default::default())
    };
    let mut m = Moments::<B>::empty(1, 1, d, &Default::default());
    for from in (0..n).step_by(batch) {
        m = m.merge(Moments::of(
            tensor(&k, from),
            tensor(&v, from),
            ones([1, 1, batch, 1]),
        ));
    }
    assert_eq!(m.count.clone().into_scalar(), n as f32);
    let got = m.cross.into_data().to_vec::<f32>().unwrap();
    assert!(got.iter().all(|x| x.is_finite()));
    let scale = cross.iter().map(|x| x.abs()).fold(0.0, f64::max);
    let worst = got
        .iter()
        .zip(&cross)
        .map(|(&g, &w)| (g as f64 - w).abs())
        .fold(0.0, f64::max);
    assert!(
        worst / scale < 1e-4,
        "centred moment off by {worst} of {scale}"
    );
    let km = m.key_mean.into_data().to_vec::<f32>().unwrap();
    for c in 0..d {
        assert!(
            (km[c] as f64 - mk[c]).abs() < 1e-4,
            "key mean {c}: {} vs {}",
            km[c],
            mk[c]
        );
    }
}
