//! Sizing a prompt: RULER's rule is the largest haystack whose prompt tokens plus the tokens to
//! generate stay within the target. RULER walks up in fixed steps; this searches instead.
//!
//! A prompt's tokens grow almost linearly with its haystack, so each probe aims where the line
//! through the two nearest measurements crosses the budget (regula falsi). Two probes in a row
//! on the same side switch to bisection (or, with no upper bound yet, to doubling the step), so
//! the search needs O(log n) token counts at worst and a handful in practice. The result fits,
//! and the next size up is known not to (or is past the largest size).

use std::ops::RangeInclusive;

/// A prompt of the chosen size.
#[derive(Debug)]
pub(crate) struct Fitted {
    pub size: usize,
    pub prompt: String,
    pub tokens: usize,
}

/// A measured size.
#[derive(Debug, Clone, Copy)]
struct Point {
    size: usize,
    tokens: usize,
}

/// The largest size in `sizes` whose prompt is at most `budget` tokens, or, when even the
/// smallest is over, `Err` with the smallest prompt's tokens.
pub(crate) fn fit(
    sizes: RangeInclusive<usize>,
    budget: usize,
    mut prompt: impl FnMut(usize) -> String,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Result<Fitted, usize> {
    let (min, max) = (*sizes.start(), *sizes.end().max(sizes.start()));
    let mut measure = |size| {
        let prompt = prompt(size);
        let tokens = count_tokens(&prompt);
        Fitted {
            size,
            prompt,
            tokens,
        }
    };
    let mut best = measure(min);
    if best.tokens > budget {
        return Err(best.tokens);
    }
    // The smallest size known to be over, the fitting size measured before `best`, and how
    // many probes in a row fell on the same side (positive: fitting, negative: over).
    let mut over: Option<Point> = None;
    let mut previous: Option<Point> = None;
    let mut streak: i32 = 0;
    loop {
        let limit = over.map_or(max, |o| o.size - 1);
        if best.size >= limit {
            return Ok(best);
        }
        let low = Point {
            size: best.size,
            tokens: best.tokens,
        };
        let slope = match (over, previous) {
            (Some(o), _) => (o.tokens - low.tokens) as f64 / (o.size - low.size) as f64,
            (None, Some(p)) if low.tokens > p.tokens => {
                (low.tokens - p.tokens) as f64 / (low.size - p.size) as f64
            }
            _ => low.tokens.max(1) as f64 / low.size.max(1) as f64,
        };
        let step = ((budget - low.tokens) as f64 / slope).floor() as usize;
        let guess = match (over, previous) {
            (Some(o), _) if streak.abs() >= 2 => low.size + (o.size - low.size) / 2,
            (None, Some(p)) if streak >= 2 && step >= 1 => {
                low.size.saturating_add(step.max(2 * (low.size - p.size)))
            }
            _ => low.size.saturating_add(step),
        };
        let probe = measure(guess.clamp(low.size + 1, limit));
        if probe.tokens <= budget {
            streak = streak.max(0) + 1;
            previous = Some(low);
            best = probe;
        } else {
            streak = streak.min(0) - 1;
            over = Some(Point {
                size: probe.size,
                tokens: probe.tokens,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// The cost in words of unit `i`: uneven, one to three.
    fn cost(i: usize) -> usize {
        [1, 2, 3][(i * 7 + i / 3) % 3]
    }

    /// A fixed three-word header, then `n` units.
    fn prompt(n: usize) -> String {
        let mut text = String::from("header header header ");
        for i in 0..n {
            text.push_str(["a ", "b c ", "d e f "][cost(i) - 1]);
        }
        text
    }

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    /// The size found and how many token counts it took.
    fn run(
        sizes: RangeInclusive<usize>,
        budget: usize,
        count: &dyn Fn(&str) -> usize,
    ) -> (Result<usize, usize>, usize) {
        let calls = Cell::new(0);
        let counted = |text: &str| {
            calls.set(calls.get() + 1);
            count(text)
        };
        let result = fit(sizes, budget, prompt, &counted);
        (result.map(|f| f.size), calls.get())
    }

    /// The answer by walking up one size at a time.
    fn linear(sizes: RangeInclusive<usize>, budget: usize) -> usize {
        let (min, max) = (*sizes.start(), *sizes.end());
        let mut tokens = 3 + (0..min).map(cost).sum::<usize>();
        let mut n = min;
        while n < max && tokens + cost(n) <= budget {
            tokens += cost(n);
            n += 1;
        }
        n
    }

    #[test]
    fn finds_the_largest_fitting_size_with_few_counts() {
        for budget in [10, 100, 1_000, 10_000, 100_000, 1_000_000] {
            let (found, calls) = run(1..=10_000_000, budget, &words);
            assert_eq!(found, Ok(linear(1..=10_000_000, budget)), "budget {budget}");
            assert!(calls <= 12, "{calls} token counts for a budget of {budget}");
        }
    }

    #[test]
    fn stops_at_the_largest_size_and_fails_below_the_smallest() {
        assert_eq!(run(5..=50, 1_000_000, &words).0, Ok(50));
        assert_eq!(run(5..=50, 30, &words).0, Ok(linear(5..=50, 30)));
        assert_eq!(
            run(5..=50, 5, &words).0,
            Err(3 + (0..5).map(cost).sum::<usize>())
        );
        assert_eq!(run(7..=7, 100, &words).0, Ok(7));
    }

    #[test]
    fn stays_logarithmic_when_costs_are_far_from_linear() {
        // Tokens grow with the square root of the text, so straight-line guesses fall short.
        let sqrt = |text: &str| (words(text) as f64).sqrt() as usize * 100;
        let budget = 30_000;
        let (found, calls) = run(1..=10_000_000, budget, &sqrt);
        let found = found.unwrap();
        assert!(sqrt(&prompt(found)) <= budget && sqrt(&prompt(found + 1)) > budget);
        assert!(calls <= 2 * 24, "{calls} token counts");
    }
}
