//! The token bookkeeping every cache shares: how many tokens it has seen, and how many the pass in
//! flight announced.

use crate::CacheError;

/// Tokens seen so far and the new tokens of the current pass ([`crate::KvCache::prepare`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pass {
    /// Tokens seen, evicted or not: the position the next token takes.
    pub seen: usize,
    /// New tokens announced for the pass in flight.
    pub pending: usize,
}

impl Pass {
    /// Announces `new` tokens and returns the position of the first.
    pub fn prepare(&mut self, new: usize) -> usize {
        let start = self.seen;
        self.seen += new;
        self.pending = new;
        start
    }

    /// Announces `new` tokens of a replay pass ([`crate::Phase::Replay`]): they take the
    /// positions from `seen` on but are not kept, so `seen` does not advance.
    pub fn prepare_replay(&mut self, new: usize) -> usize {
        self.pending = new;
        self.seen
    }

    /// Checks that `new` tokens reaching `layer` are the ones announced.
    pub fn check(&self, layer: usize, new: usize) -> Result<(), CacheError> {
        if new != self.pending || new == 0 {
            return Err(CacheError::NotPrepared { layer });
        }
        Ok(())
    }
}
