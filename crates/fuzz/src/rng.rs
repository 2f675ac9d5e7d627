//! A small seeded generator (xorshift64*), so that a run is reproducible from its `--seed`.

pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` and `stream` (one stream per target, so that running a subset of
    /// the targets gives each the inputs it gets in a full run).
    pub fn new(seed: u64, stream: u64) -> Self {
        // splitmix64 of the two, so that nearby seeds give unrelated sequences; never 0.
        let mut z = seed
            .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// A length in `1..=max`, small lengths far more likely than long ones (power-law), the way
    /// most interesting edits are a few bytes wide.
    pub fn len_up_to(&mut self, max: usize) -> usize {
        if max <= 1 {
            return max;
        }
        let bits = usize::BITS - max.leading_zeros();
        let scale = 1usize << self.below(bits as usize);
        1 + self.below(scale.min(max))
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_bounded() {
        let (mut a, mut b) = (Rng::new(7, 1), Rng::new(7, 1));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let n = a.len_up_to(300);
            assert!((1..=300).contains(&n));
            b.len_up_to(300);
        }
        assert_ne!(Rng::new(7, 1).next_u64(), Rng::new(7, 2).next_u64());
        assert_eq!(Rng::new(0, 0).below(0), 0);
    }
}
