//! The learning-rate schedule of Hugging Face `transformers`' `get_cosine_schedule_with_warmup`
//! (half a cosine cycle), as a burn [`LrScheduler`].
//!
//! burn 0.21 has no warmup-then-cosine schedule with these semantics: its cosine annealing
//! restarts after its period, and a composed linear × cosine schedule decays during the warmup.

use std::f64::consts::PI;

use burn::lr_scheduler::LrScheduler;
use burn::optim::LearningRate;
use burn::tensor::backend::Backend;

/// Linear warmup from 0 to the peak rate `η` over `w` steps, then a half cosine down to 0 at step
/// `T`. Optimizer step `t` (counted from 0) runs at
///
/// ```text
/// η(t) = η · t / w                                  t < w
/// η(t) = η · ½ (1 + cos(π (t − w) / (T − w)))       t ≥ w
/// ```
///
/// with `max(1, ·)` guarding both denominators, exactly as `transformers` computes it (so with a
/// warmup the first step runs at rate 0, as there). [`LrScheduler::step`] returns `η(t)` for the
/// step about to run and moves to `t + 1`; the record is `t`, so a resumed run continues the
/// schedule where it stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosine {
    peak: LearningRate,
    warmup: usize,
    total: usize,
    /// `t`: the steps already taken.
    taken: usize,
}

impl WarmupCosine {
    /// The schedule of peak rate `peak`, `warmup` steps of warmup and `total` steps in all,
    /// before its first step.
    pub fn new(peak: LearningRate, warmup: usize, total: usize) -> Self {
        Self {
            peak,
            warmup,
            total,
            taken: 0,
        }
    }

    /// `η(t)`, the rate of optimizer step `t` (from 0).
    pub fn at(&self, t: usize) -> LearningRate {
        if t < self.warmup {
            return self.peak * t as f64 / self.warmup.max(1) as f64;
        }
        let progress =
            (t - self.warmup) as f64 / self.total.saturating_sub(self.warmup).max(1) as f64;
        self.peak * (0.5 * (1.0 + (PI * progress).cos())).max(0.0)
    }

    /// The steps already taken, `t`.
    pub fn taken(&self) -> usize {
        self.taken
    }
}

impl LrScheduler for WarmupCosine {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        let rate = self.at(self.taken);
        self.taken += 1;
        rate
    }

    fn to_record<B: Backend>(&self) -> Self::Record<B> {
        self.taken
    }

    fn load_record<B: Backend>(mut self, record: Self::Record<B>) -> Self {
        self.taken = record;
        self
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;

    fn rates(mut schedule: WarmupCosine, steps: usize) -> Vec<f64> {
        (0..steps).map(|_| schedule.step()).collect()
    }

    fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() < 1e-15, "step {i}: {g} vs {w}");
        }
    }

    /// transformers' values: `get_cosine_schedule_with_warmup(opt, 2, 6)` with lr 1e-3 gives
    /// 0, 5e-4, 1e-3, 1e-3·(2 + √2)/4, 5e-4, 1e-3·(2 − √2)/4 for steps 0..6.
    #[test]
    fn warmup_then_half_cosine_as_transformers() {
        let s = std::f64::consts::SQRT_2;
        let want = [
            0.0,
            5e-4,
            1e-3,
            1e-3 * (2.0 + s) / 4.0,
            5e-4,
            1e-3 * (2.0 - s) / 4.0,
        ];
        assert_close(&rates(WarmupCosine::new(1e-3, 2, 6), 6), &want);
        assert!(WarmupCosine::new(1e-3, 2, 6).at(6).abs() < 1e-18);
    }

    #[test]
    fn without_warmup_the_first_step_runs_at_the_peak() {
        let want = [
            2e-4,
            1e-4 * (1.0 + (PI / 3.0).cos()),
            1e-4 * (1.0 + (PI * 2.0 / 3.0).cos()),
        ];
        assert_close(&rates(WarmupCosine::new(2e-4, 0, 3), 3), &want);
        // A one-step run: the guarded denominators keep it finite.
        assert_close(&rates(WarmupCosine::new(2e-4, 1, 1), 1), &[0.0]);
        assert_close(&rates(WarmupCosine::new(2e-4, 5, 3), 3), &[0.0, 4e-5, 8e-5]);
    }

    /// The record is the step count: a schedule saved after k steps and loaded into a fresh one
    /// continues with the uninterrupted schedule's rates.
    #[test]
    fn a_loaded_record_continues_the_schedule() {
        let fresh = WarmupCosine::new(1e-3, 3, 10);
        let mut first = fresh;
        for _ in 0..4 {
            first.step();
        }
        let record = first.to_record::<NdArray>();
        assert_eq!(record, 4);
        let resumed = fresh.load_record::<NdArray>(record);
        assert_eq!(resumed.taken(), 4);
        assert_close(&rates(resumed, 6), &rates(fresh, 10)[4..]);
    }
}
