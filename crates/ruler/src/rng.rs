//! The random draws behind the samples: xoshiro256** seeded through SplitMix64. Deterministic
//! for a seed; it does not reproduce Python's Mersenne Twister, only the kinds of draws RULER makes.

use std::collections::HashMap;

/// SplitMix64's output function of `state + γ`: spreads any seed over all 64 bits.
fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A xoshiro256** generator (Blackman and Vigna).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The generator for `seed`, its state filled by SplitMix64 as xoshiro's authors advise.
    pub fn new(seed: u64) -> Self {
        let mut state = seed;
        let mut s = [0; 4];
        for word in &mut s {
            *word = splitmix(state);
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        }
        Self { s }
    }

    /// An independent generator for one use of `seed`, named by `stream` (a task, an index).
    pub fn derive(seed: u64, stream: &[u64]) -> Self {
        Self::new(stream.iter().fold(splitmix(seed), |state, &part| {
            splitmix(state ^ splitmix(part))
        }))
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// 128 random bits.
    pub fn next_u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// Uniform in `0..n` for `n > 0`, without modulo bias (Lemire's multiply-and-reject).
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as usize
    }

    /// Uniform in `low..=high` (`random.randint`).
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    /// Fisher–Yates: every order equally likely.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// `k` distinct indices below `n` (`k <= n`) in random order, like Python's
    /// `random.sample(range(n), k)`: a Fisher–Yates shuffle stopped after `k` steps, its swaps
    /// kept in a map so that it costs O(k) whatever `n` is.
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut swapped: HashMap<usize, usize> = HashMap::with_capacity(2 * k);
        (0..k.min(n))
            .map(|i| {
                let j = i + self.below(n - i);
                let picked = *swapped.get(&j).unwrap_or(&j);
                let displaced = *swapped.get(&i).unwrap_or(&i);
                swapped.insert(j, displaced);
                picked
            })
            .collect()
    }

    /// `k` characters drawn with replacement from the ASCII `alphabet` (`random.choices`).
    pub fn letters(&mut self, alphabet: &[u8], k: usize) -> String {
        (0..k)
            .map(|_| char::from(alphabet[self.below(alphabet.len())]))
            .collect()
    }
}

/// RULER's `random.Random(seed).shuffle(items)`: a generator made afresh for every shuffle, so the
/// permutation depends only on the seed and the length, and is the same for every sample of that
/// length. RULER shuffles needles, cwe's and fwe's word lists and qa's documents this way.
pub(crate) fn shuffle_fixed<T>(seed: u64, items: &mut [T]) {
    Rng::new(seed).shuffle(items);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_draws_and_streams_differ() {
        let draws = |mut rng: Rng| (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>();
        assert_eq!(draws(Rng::new(42)), draws(Rng::new(42)));
        assert_ne!(draws(Rng::new(42)), draws(Rng::new(43)));
        assert_eq!(
            draws(Rng::derive(42, &[1, 2])),
            draws(Rng::derive(42, &[1, 2]))
        );
        assert_ne!(
            draws(Rng::derive(42, &[1, 2])),
            draws(Rng::derive(42, &[2, 1]))
        );
        assert_ne!(
            draws(Rng::derive(42, &[1])),
            draws(Rng::derive(42, &[1, 0]))
        );
    }

    #[test]
    fn xoshiro_matches_the_reference_output() {
        // The reference C code's first outputs for the state {1, 2, 3, 4}.
        let mut rng = Rng { s: [1, 2, 3, 4] };
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(first, [11520, 0, 1509978240]);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut rng = Rng::new(7);
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            counts[rng.below(6)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_400..10_600).contains(&c)),
            "{counts:?}"
        );
        assert!((0..1000).all(|_| (5..=9).contains(&rng.between(5, 9))));
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn samples_are_distinct_in_range_and_cover_everything_when_k_is_n() {
        let mut rng = Rng::new(3);
        let picked = rng.sample(1_000_000, 50);
        let mut sorted = picked.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 50);
        assert!(picked.iter().all(|&i| i < 1_000_000));
        let mut all = rng.sample(40, 40);
        all.sort_unstable();
        assert_eq!(all, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn fixed_shuffles_repeat_and_permute() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        shuffle_fixed(42, &mut a);
        shuffle_fixed(42, &mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        a.sort_unstable();
        assert_eq!(a, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn letters_come_from_the_alphabet() {
        let word = Rng::new(1).letters(b"AB", 64);
        assert_eq!(word.len(), 64);
        assert!(word.contains('A') && word.contains('B'));
        assert!(word.chars().all(|c| c == 'A' || c == 'B'));
    }
}
