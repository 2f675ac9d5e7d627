use std::fmt;
use std::str::FromStr;

use crate::CacheError;

/// How many tokens each KV head may keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// At most this many tokens per KV head (at least 1).
    Tokens(usize),
    /// Remove this fraction of the context, in `[0, 1)`: kvpress's `compression_ratio`, keeping
    /// `⌊context · (1 − ratio)⌋` tokens (at least 1).
    Compression(f64),
}

impl Budget {
    /// A token budget, refusing 0.
    pub fn tokens(n: usize) -> Result<Self, CacheError> {
        if n == 0 {
            return Err(CacheError::BadBudget(
                "a budget of 0 tokens keeps nothing to attend to; use at least 1".into(),
            ));
        }
        Ok(Self::Tokens(n))
    }

    /// A compression ratio, refusing values outside `[0, 1)`.
    pub fn compression(ratio: f64) -> Result<Self, CacheError> {
        if !(0.0..1.0).contains(&ratio) {
            return Err(CacheError::BadBudget(format!(
                "compression ratio {ratio} is outside [0, 1): it is the fraction of the context \
                 removed"
            )));
        }
        Ok(Self::Compression(ratio))
    }

    /// Tokens per KV head to keep out of a context of `context` tokens.
    pub fn keep(&self, context: usize) -> usize {
        match *self {
            Self::Tokens(n) => n.min(context),
            Self::Compression(r) => ((context as f64 * (1.0 - r)) as usize).clamp(1, context),
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tokens(n) => write!(f, "{n} tokens per KV head"),
            Self::Compression(r) => write!(f, "compression ratio {r}"),
        }
    }
}

/// When an [`crate::EvictingCache`] evicts.
///
/// Eviction always happens inside a layer's attention call, after that layer has attended the
/// new tokens over what it held (kvpress's protocol, so scores compare).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictAt {
    /// Prompt tokens pass in chunks of this many, and each chunk's pass ends with eviction, so a
    /// prompt longer than the budget is processed holding at most `budget + chunk` tokens.
    /// `None`: the whole prompt is one pass, compressed once at its end.
    pub chunk: Option<usize>,
    /// Keep the cache near the budget while generating: evict back to it whenever it holds this
    /// many tokens more (1: at every token; larger values amortise scoring over several tokens,
    /// like kvpress's `compression_interval`). `None`: generated tokens accumulate.
    pub decode: Option<usize>,
}

impl EvictAt {
    /// Compress once after prefill, then let generated tokens accumulate (kvpress's default).
    pub const PREFILL: Self = Self {
        chunk: None,
        decode: None,
    };
    /// The chunk size `chunked` means when no size is given.
    pub const DEFAULT_CHUNK: usize = 512;
}

impl Default for EvictAt {
    fn default() -> Self {
        Self::PREFILL
    }
}

impl FromStr for EvictAt {
    type Err = CacheError;

    /// A comma list of `prefill`, `chunked` (or `chunked=N`) and `decode` (or `decode=N`):
    /// `prefill,decode`, `chunked=256,decode=32`, ...; `prefill` alone is the default.
    fn from_str(s: &str) -> Result<Self, CacheError> {
        let mut at = Self::PREFILL;
        for item in s.split(',').map(str::trim) {
            let positive = |n: &str, what: &str| match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(CacheError::BadSchedule(format!(
                    "{what} '{n}' must be a positive number of tokens"
                ))),
            };
            match item.split_once('=') {
                _ if item == "prefill" => {}
                _ if item == "decode" => at.decode = Some(1),
                _ if item == "chunked" => at.chunk = Some(Self::DEFAULT_CHUNK),
                Some(("chunked", n)) => at.chunk = Some(positive(n, "chunk size")?),
                Some(("decode", n)) => at.decode = Some(positive(n, "decode interval")?),
                _ => {
                    return Err(CacheError::BadSchedule(format!(
                        "'{item}' is not one of prefill, chunked[=N], decode"
                    )))
                }
            }
        }
        Ok(at)
    }
}

impl fmt::Display for EvictAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.chunk {
            Some(n) => write!(f, "chunked={n}")?,
            None => write!(f, "prefill")?,
        }
        match self.decode {
            Some(1) => write!(f, ",decode")?,
            Some(n) => write!(f, ",decode={n}")?,
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_keep_what_they_say() {
        assert_eq!(Budget::tokens(64).unwrap().keep(1000), 64);
        assert_eq!(Budget::tokens(64).unwrap().keep(10), 10);
        assert_eq!(Budget::compression(0.5).unwrap().keep(240), 120);
        assert_eq!(Budget::compression(0.75).unwrap().keep(241), 60);
        assert_eq!(Budget::compression(0.0).unwrap().keep(7), 7);
        assert_eq!(Budget::compression(0.99).unwrap().keep(10), 1);
    }

    #[test]
    fn bad_budgets_are_refused_by_name() {
        let zero = Budget::tokens(0).unwrap_err().to_string();
        assert!(zero.contains("budget of 0"), "{zero}");
        for r in [1.0, -0.1, 1.5, f64::NAN] {
            let e = Budget::compression(r).unwrap_err().to_string();
            assert!(e.contains("outside [0, 1)"), "{e}");
        }
    }

    #[test]
    fn schedules_parse() {
        assert_eq!("prefill".parse::<EvictAt>().unwrap(), EvictAt::PREFILL);
        let at: EvictAt = "chunked=128,decode".parse().unwrap();
        assert_eq!(
            at,
            EvictAt {
                chunk: Some(128),
                decode: Some(1)
            }
        );
        assert_eq!(at.to_string(), "chunked=128,decode");
        let at: EvictAt = "decode=32".parse().unwrap();
        assert_eq!((at.chunk, at.decode), (None, Some(32)));
        assert_eq!(at.to_string(), "prefill,decode=32");
        assert!("decode=0".parse::<EvictAt>().is_err());
        assert_eq!(
            "chunked".parse::<EvictAt>().unwrap().chunk,
            Some(EvictAt::DEFAULT_CHUNK)
        );
        assert!("chunked=0".parse::<EvictAt>().is_err());
        let e = "later".parse::<EvictAt>().unwrap_err().to_string();
        assert!(e.contains("'later'"), "{e}");
    }
}
