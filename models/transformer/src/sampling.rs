use burn::tensor::{activation::softmax, backend::Backend, ElementConversion, Tensor};

/// Picks the next token from logits: greedy when `temperature` is 0, otherwise nucleus (top-p)
/// sampling at that temperature with a seeded generator, so a seed reproduces a run.
///
/// The work stays on the device: greedy moves one id per sequence to the host, top-p only the
/// probabilities inside the nucleus.
pub struct Sampler {
    temperature: f64,
    top_p: f64,
    rng: SplitMix64,
}

impl Sampler {
    pub fn new(temperature: f64, top_p: f64, seed: u64) -> Self {
        Self {
            temperature,
            top_p,
            rng: SplitMix64(seed),
        }
    }

    pub fn greedy() -> Self {
        Self::new(0.0, 1.0, 0)
    }

    /// `logits`: `[batch, vocab]` → one id per sequence.
    pub fn sample<B: Backend>(&mut self, logits: Tensor<B, 2>) -> Vec<u32> {
        if self.temperature <= 0.0 {
            return logits
                .argmax(1)
                .into_data()
                .iter::<i64>()
                .map(|id| id as u32)
                .collect();
        }
        let [batch, _] = logits.dims();
        let probs = softmax(logits.div_scalar(self.temperature), 1);
        let (sorted, ids) = probs.sort_descending_with_indices(1);
        (0..batch)
            .map(|b| {
                let row = sorted.clone().narrow(0, b, 1);
                // Keep tokens whose preceding mass is below top_p: at least the most likely one.
                let before = row.clone().cumsum(1) - row.clone();
                let keep: i64 = before
                    .lower_elem(self.top_p)
                    .int()
                    .sum()
                    .into_scalar()
                    .elem();
                let keep = keep.max(1) as usize;
                let p: Vec<f32> = row.narrow(1, 0, keep).into_data().iter::<f32>().collect();
                let id: Vec<i64> = ids
                    .clone()
                    .narrow(0, b, 1)
                    .narrow(1, 0, keep)
                    .into_data()
                    .iter::<i64>()
                    .collect();
                let total: f32 = p.iter().sum();
                let mut target = self.rng.next_f32() * total;
                let mut pick = keep - 1;
                for (i, &pi) in p.iter().enumerate() {
                    if target < pi {
                        pick = i;
                        break;
                    }
                    target -= pi;
                }
                id[pick] as u32
            })
            .collect()
    }
}

/// SplitMix64: a small, well-mixed, seedable generator, identical on every platform.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::{Tensor, TensorData};

    use super::Sampler;

    fn logits(rows: Vec<Vec<f32>>) -> Tensor<NdArray, 2> {
        let (b, v) = (rows.len(), rows[0].len());
        Tensor::from_data(TensorData::new(rows.concat(), [b, v]), &Default::default())
    }

    #[test]
    fn greedy_takes_the_argmax_of_each_row() {
        let l = logits(vec![vec![0.1, 3.0, -1.0, 2.9], vec![5.0, 0.0, 0.0, 0.0]]);
        assert_eq!(Sampler::greedy().sample(l), vec![1, 0]);
    }

    #[test]
    fn top_p_only_draws_from_the_nucleus_and_a_seed_reproduces_draws() {
        // Probabilities ≈ [0.64, 0.24, 0.09, 0.03]: top_p 0.8 keeps the first two.
        let row = vec![3.0, 2.0, 1.0, 0.0];
        let draws = |seed| {
            let mut s = Sampler::new(1.0, 0.8, seed);
            (0..200)
                .map(|_| s.sample(logits(vec![row.clone()]))[0])
                .collect::<Vec<_>>()
        };
        let a = draws(7);
        assert!(a.iter().all(|&id| id == 0 || id == 1));
        assert!(a.contains(&0) && a.contains(&1));
        assert_eq!(a, draws(7));
        assert_ne!(a, draws(8));
    }
}
