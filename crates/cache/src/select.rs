//! Choosing which slots each head keeps, given scores: top-k per head, or AdaKV's global top-k
//! across the heads of a layer with a guaranteed share per head.

use std::cmp::Ordering;

use crate::Allocation;

/// The slots each head keeps, per `[batch, kv_heads]` row, in increasing slot order.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub kept: Vec<Vec<usize>>,
}

impl Selection {
    /// The longest row: the slot count a padded layout needs.
    pub fn widest(&self) -> usize {
        self.kept.iter().map(Vec::len).max().unwrap_or(0)
    }
}

/// What selection needs to know besides the scores.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Tokens to keep per head (the layer's budget).
    pub keep: usize,
    /// Tokens at positions below this are always kept.
    pub sinks: usize,
    /// The most recent tokens always kept.
    pub recent: usize,
    pub allocation: Allocation,
    /// Under [`Allocation::Adaptive`], the tokens the pool of heads keeps in all, instead of
    /// `kv_heads · keep` (KVzip's `N − ⌊N·ratio⌋` over a pool of `N` entries).
    pub total: Option<usize>,
}

/// Selects, for each `[batch, kv_heads]` row of `t` slots, the slots to keep.
///
/// `scores`, `valid` and `positions` are `[batch, kv_heads, t]` row-major. Protected tokens (sinks,
/// recent) rank above every score; ties rank the more recent token higher; NaN ranks lowest.
/// Under [`Allocation::Uniform`] each head keeps `min(keep, held)` tokens; under
/// [`Allocation::Adaptive`] each head first keeps its top `max(1, ⌊α·keep⌋)` (none when `α = 0`)
/// and the rest of the pool's `kv_heads · keep` (or `total`) go to the best scores across its
/// heads (AdaKV, as kvpress does). A pool is `kv_heads` consecutive rows: one layer's heads, or
/// every layer's heads of a batch row for a model-wide budget.
pub fn select(
    scores: &[f32],
    valid: &[bool],
    positions: &[u32],
    kv_heads: usize,
    t: usize,
    rules: Rules,
) -> Selection {
    let rows = scores.len() / t;
    // Candidates per row: (effective score, position, slot), best first.
    let ranked: Vec<Vec<(f32, u32, usize)>> = (0..rows)
        .map(|row| {
            let slots = row * t..(row + 1) * t;
            let latest: Vec<u32> = {
                let mut p: Vec<u32> = slots
                    .clone()
                    .filter(|&i| valid[i])
                    .map(|i| positions[i])
                    .collect();
                p.sort_unstable_by(|a, b| b.cmp(a));
                p.truncate(rules.recent);
                p
            };
            let recent_from = latest.last().copied().unwrap_or(u32::MAX);
            let mut c: Vec<(f32, u32, usize)> = slots
                .filter(|&i| valid[i])
                .map(|i| {
                    let p = positions[i];
                    let protected =
                        (p as usize) < rules.sinks || (!latest.is_empty() && p >= recent_from);
                    let s = if protected {
                        f32::INFINITY
                    } else if scores[i].is_nan() {
                        f32::NEG_INFINITY
                    } else {
                        scores[i]
                    };
                    (s, p, i - row * t)
                })
                .collect();
            c.sort_unstable_by(rank);
            c
        })
        .collect();
    let kept = match rules.allocation {
        Allocation::Uniform => ranked
            .into_iter()
            .map(|c| sorted(c.into_iter().take(rules.keep).map(|(_, _, s)| s)))
            .collect(),
        Allocation::Adaptive { alpha } => {
            let safe = if alpha > 0.0 {
                ((rules.keep as f64 * alpha) as usize).max(1)
            } else {
                0
            };
            let mut kept = Vec::with_capacity(rows);
            for heads in ranked.chunks(kv_heads) {
                let mut pool: Vec<(f32, u32, usize, usize)> = Vec::new();
                for (h, c) in heads.iter().enumerate() {
                    pool.extend(c.iter().enumerate().map(|(r, &(s, p, slot))| {
                        (if r < safe { f32::INFINITY } else { s }, p, slot, h)
                    }));
                }
                pool.sort_unstable_by(|a, b| rank(&(a.0, a.1, a.2), &(b.0, b.1, b.2)));
                let mut per_head = vec![Vec::new(); heads.len()];
                let total = rules.total.unwrap_or(rules.keep * heads.len());
                for &(_, _, slot, h) in pool.iter().take(total) {
                    per_head[h].push(slot);
                }
                kept.extend(per_head.into_iter().map(|s| sorted(s.into_iter())));
            }
            kept
        }
    };
    Selection { kept }
}

/// Best first: higher score, then more recent position.
fn rank(a: &(f32, u32, usize), b: &(f32, u32, usize)) -> Ordering {
    b.0.partial_cmp(&a.0)
        .unwrap_or(Ordering::Equal)
        .then(b.1.cmp(&a.1))
}

fn sorted(slots: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut v: Vec<usize> = slots.collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(keep: usize) -> Rules {
        Rules {
            keep,
            sinks: 0,
            recent: 0,
            allocation: Allocation::Uniform,
            total: None,
        }
    }

    #[test]
    fn uniform_keeps_each_heads_top_scores_in_slot_order() {
        let scores = [0.1, 0.9, 0.5, 0.3, /* head 1 */ 0.8, 0.1, 0.2, 0.7];
        let pos = [0, 1, 2, 3, 0, 1, 2, 3];
        let s = select(&scores, &[true; 8], &pos, 2, 4, rules(2));
        assert_eq!(s.kept, vec![vec![1, 2], vec![0, 3]]);
    }

    #[test]
    fn sinks_and_recent_tokens_are_kept_whatever_their_score() {
        let scores = [0.0, 0.9, 0.8, 0.7, 0.0, 0.0];
        let pos = [0, 1, 2, 3, 4, 5];
        let r = Rules {
            keep: 3,
            sinks: 1,
            recent: 1,
            ..rules(3)
        };
        let s = select(&scores, &[true; 6], &pos, 1, 6, r);
        assert_eq!(s.kept, vec![vec![0, 1, 5]]);
    }

    #[test]
    fn padding_slots_are_never_kept_and_ties_prefer_recent() {
        let scores = [1.0, 1.0, 9.0, 1.0];
        let valid = [true, true, false, true];
        let pos = [0, 1, 0, 7];
        let s = select(&scores, &valid, &pos, 1, 4, rules(2));
        assert_eq!(s.kept, vec![vec![1, 3]]);
        let all = select(&scores, &valid, &pos, 1, 4, rules(10));
        assert_eq!(all.kept, vec![vec![0, 1, 3]]);
    }

    #[test]
    fn adaptive_allocation_moves_budget_to_the_head_with_higher_scores() {
        // Head 0 has all the high scores; each head is guaranteed max(1, ⌊0.5·2⌋) = 1 token.
        let scores = [0.9, 0.8, 0.7, 0.6, /* head 1 */ 0.1, 0.3, 0.2, 0.0];
        let pos = [0, 1, 2, 3, 0, 1, 2, 3];
        let r = Rules {
            allocation: Allocation::Adaptive { alpha: 0.5 },
            ..rules(2)
        };
        let s = select(&scores, &[true; 8], &pos, 2, 4, r);
        assert_eq!(s.kept, vec![vec![0, 1, 2], vec![1]]);
        assert_eq!(s.widest(), 3);
    }

    #[test]
    fn a_pooled_total_without_safeguard_goes_to_the_best_scores_of_any_head() {
        // Two pools of two heads; each keeps 3 in all, wherever its best scores are.
        let scores = [
            0.9, 0.8, 0.7, 0.6, /* */ 0.1, 0.3, 0.2, 0.0, /* pool 2 */ 0.0, 0.0, 0.0,
            0.0, /* */ 0.5, 0.4, 0.3, 0.2,
        ];
        let pos = [0, 1, 2, 3].repeat(4);
        let r = Rules {
            allocation: Allocation::Adaptive { alpha: 0.0 },
            total: Some(3),
            ..rules(99)
        };
        let s = select(&scores, &[true; 16], &pos, 2, 4, r);
        assert_eq!(s.kept, vec![vec![0, 1, 2], vec![], vec![], vec![0, 1, 2]]);
    }
}
