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
    /// Keep the cache at the budget while generating, evicting as tokens are added.
    pub decode: bool,
}

impl EvictAt {
    /// Compress once after prefill, then let generated tokens accumulate (kvpress's default).
    pub const PREFILL: Self = Self {
        chunk: None,
        decode: false,
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

    /// A comma list of `prefill`, `chunked` (or `chunked=N`) and `decode`: `prefill,decode`,
    /// `chunked=256,decode`, ...; `prefill` alone is the default.
    fn from_str(s: &str) -> Result<Self, CacheError> {
        let mut at = Self::PREFILL;
        for item in s.split(',').map(str::trim) {
            match item.split_once('=') {
                _ if item == "prefill" => {}
                _ if item == "decode" => at.decode = true,
                _ if item == "chunked" => at.chunk = Some(Self::DEFAULT_CHUNK),
                Some(("chunked", n)) => match n.parse::<usize>() {
                    Ok(n) if n > 0 => at.chunk = Some(n),
                    _ => {
                        return Err(CacheError::BadSchedule(format!(
                            "chunk size '{n}' must be a positive number of tokens"
                        )))
                    }
                },
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
        if self.decode {
            write!(f, ",decode")?;
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
                decode: true
            }
        );
        assert_eq!(at.to_string(), "chunked=128,decode");
        assert_eq!(
            "chunked".parse::<EvictAt>().unwrap().chunk,
            Some(EvictAt::DEFAULT_CHUNK)
        );
        assert!("chunked=0".parse::<EvictAt>().is_err());
        let e = "later".parse::<EvictAt>().unwrap_err().to_string();
        assert!(e.contains("'later'"), "{e}");
    }
}
