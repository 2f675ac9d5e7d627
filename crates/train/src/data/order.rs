/// The order sequences are drawn in: epoch after epoch over `n` sequences, each epoch a
/// permutation drawn from `(seed, epoch)` alone (Fisher–Yates on a SplitMix64 stream). Position
/// `p` of the stream is sequence `π_e(p mod n)` of epoch `e = ⌊p / n⌋`, so the sequences of any
/// step follow from the step number and a resumed run reads what an uninterrupted one would.
#[derive(Debug, Clone)]
pub struct Order {
    len: usize,
    seed: u64,
    /// The epoch whose permutation `order` holds, if any yet.
    epoch: Option<u64>,
    order: Vec<usize>,
}

impl Order {
    /// The order of `len` sequences (at least one) under `seed`.
    pub fn new(len: usize, seed: u64) -> Self {
        Self {
            len: len.max(1),
            seed,
            epoch: None,
            order: Vec::new(),
        }
    }

    /// The sequence at stream position `position`.
    pub fn at(&mut self, position: u64) -> usize {
        let len = self.len as u64;
        let epoch = position / len;
        if self.epoch != Some(epoch) {
            self.order = permutation(self.len, self.seed, epoch);
            self.epoch = Some(epoch);
        }
        self.order[(position % len) as usize]
    }
}

/// A permutation of `0..len` drawn from `(seed, epoch)`.
fn permutation(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut state = seed ^ epoch.wrapping_mul(0xA076_1D64_78BD_642F);
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        let j = (split_mix(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// SplitMix64: the next value of the stream `state`.
fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every epoch visits each sequence once, epochs differ, and the order depends only on the
    /// seed and the position.
    #[test]
    fn epochs_are_seeded_permutations() {
        let mut order = Order::new(10, 7);
        let epochs: Vec<Vec<usize>> = (0..3)
            .map(|e| (0..10).map(|i| order.at(e * 10 + i)).collect())
            .collect();
        for epoch in &epochs {
            let mut sorted = epoch.clone();
            sorted.sort();
            assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(epochs[0], epochs[1]);
        let mut fresh = Order::new(10, 7);
        assert_eq!(fresh.at(25), epochs[2][5]);
        assert_eq!(fresh.at(3), epochs[0][3]);
        let other: Vec<usize> = (0..10).map(|i| Order::new(10, 8).at(i)).collect();
        assert_ne!(other, epochs[0]);
    }
}
