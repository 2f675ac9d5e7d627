//! Typed policy parameters: each is declared once, with its default and valid range, in its
//! policy's [`crate::policies::Entry`], and read back by the policy's builder through [`Args`].

use std::fmt;

use crate::policies::{self, Entry};
use crate::CacheError;

/// A parameter's type, default and valid range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A whole number in `min..=max`.
    Count {
        default: usize,
        min: usize,
        max: usize,
    },
    /// An odd whole number in `min..=max` (a pooling width).
    Odd {
        default: usize,
        min: usize,
        max: usize,
    },
    /// A whole number in `min..=max` whose default the policy chooses (shown as "policy's").
    Chosen { min: usize, max: usize },
    /// A real number in `[min, max]`.
    Real { default: f64, min: f64, max: f64 },
    /// `true` or `false`.
    Flag { default: bool },
    /// The name of a registered policy that [`Entry::plain_scorer`] marks as a plain scorer.
    Scorer { default: &'static str },
    /// One of a few names.
    Choice {
        default: &'static str,
        choices: &'static [&'static str],
    },
}

/// One parameter of a policy: `key=value` in a policy spec.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    pub key: &'static str,
    pub kind: Kind,
    /// What it does, one line.
    pub doc: &'static str,
}

/// The largest position count any parameter takes: far beyond any context a model here serves,
/// small enough that no parameter can ask for unbounded work or memory.
pub const MAX_POSITIONS: usize = 1 << 20;

impl Param {
    pub const fn count(
        key: &'static str,
        default: usize,
        min: usize,
        max: usize,
        doc: &'static str,
    ) -> Self {
        Self {
            key,
            kind: Kind::Count { default, min, max },
            doc,
        }
    }

    pub const fn odd(
        key: &'static str,
        default: usize,
        min: usize,
        max: usize,
        doc: &'static str,
    ) -> Self {
        Self {
            key,
            kind: Kind::Odd { default, min, max },
            doc,
        }
    }

    pub const fn real(
        key: &'static str,
        default: f64,
        min: f64,
        max: f64,
        doc: &'static str,
    ) -> Self {
        Self {
            key,
            kind: Kind::Real { default, min, max },
            doc,
        }
    }

    pub const fn flag(key: &'static str, default: bool, doc: &'static str) -> Self {
        Self {
            key,
            kind: Kind::Flag { default },
            doc,
        }
    }

    pub const fn choice(
        key: &'static str,
        default: &'static str,
        choices: &'static [&'static str],
        doc: &'static str,
    ) -> Self {
        Self {
            key,
            kind: Kind::Choice { default, choices },
            doc,
        }
    }

    /// The default as `momentkv policies` shows it.
    pub fn default_text(&self) -> String {
        match self.kind {
            Kind::Count { default, .. } | Kind::Odd { default, .. } => default.to_string(),
            Kind::Chosen { .. } => "policy's".into(),
            Kind::Real { default, .. } => default.to_string(),
            Kind::Flag { default } => default.to_string(),
            Kind::Scorer { default } | Kind::Choice { default, .. } => default.into(),
        }
    }

    /// The values accepted, as `momentkv policies` and errors show them.
    pub fn range_text(&self) -> String {
        match self.kind {
            Kind::Count { min, max, .. } | Kind::Chosen { min, max } => format!("{min}..={max}"),
            Kind::Odd { min, max, .. } => format!("odd, {min}..={max}"),
            Kind::Real { min, max, .. } => format!("[{min}, {}]", Bound(max)),
            Kind::Flag { .. } => "true or false".into(),
            Kind::Choice { choices, .. } => choices.join(" or "),
            Kind::Scorer { .. } => format!(
                "a scoring policy: {}",
                policies::POLICIES
                    .iter()
                    .filter(|e| e.plain_scorer)
                    .map(|e| e.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// An upper bound written short: `inf` for an unbounded real.
struct Bound(f64);

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == f64::INFINITY {
            f.write_str("inf")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Parameters every evicting policy takes, after its own (a policy may declare one of these
/// itself to give it a default of its own).
pub const COMMON_PARAMS: &[Param] = &[
    Param {
        key: "sinks",
        kind: Kind::Chosen {
            min: 0,
            max: MAX_POSITIONS,
        },
        doc: "tokens at the start that are never evicted",
    },
    Param {
        key: "recent",
        kind: Kind::Chosen {
            min: 0,
            max: MAX_POSITIONS,
        },
        doc: "most recent tokens that are never evicted",
    },
    Param::count(
        "order",
        1,
        1,
        2,
        "with moments: 2 adds the key variance to the correction's normaliser",
    ),
    Param::count(
        "segment",
        0,
        0,
        MAX_POSITIONS,
        "with moments: one summary per block of this many positions, at least 16, at most 64 \
         summaries (0: one per head)",
    ),
];

/// The parameters given to one policy, read once each by its builder; [`Args::finish`] reports
/// any that nobody read.
pub struct Args<'a> {
    policy: &'a str,
    given: &'a [(String, String)],
    used: Vec<bool>,
    /// Declared parameters, searched in order: the policy's own, then any added
    /// ([`Args::declare`]).
    tables: Vec<&'static [Param]>,
}

impl<'a> Args<'a> {
    pub(crate) fn new(policy: &'a str, given: &'a [(String, String)], entry: &Entry) -> Self {
        Self {
            policy,
            given,
            used: vec![false; given.len()],
            tables: vec![entry.params],
        }
    }

    /// Also accepts the parameters of `params` (those of a scorer a policy wraps, or the common
    /// ones).
    pub fn declare(&mut self, params: &'static [Param]) {
        self.tables.push(params);
    }

    fn param(&self, key: &str) -> &'static Param {
        self.tables
            .iter()
            .flat_map(|t| t.iter())
            .find(|p| p.key == key)
            .unwrap_or_else(|| {
                panic!(
                    "policy '{}' reads undeclared parameter '{key}'",
                    self.policy
                )
            })
    }

    fn raw(&mut self, key: &str) -> Option<&'a str> {
        let i = self.given.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        Some(&self.given[i].1)
    }

    /// An error naming this policy, parameter and value.
    pub fn bad(&self, key: &str, value: &str, reason: impl Into<String>) -> CacheError {
        CacheError::BadParameter {
            policy: self.policy.into(),
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    fn whole(&mut self, key: &str, min: usize, max: usize) -> Result<Option<usize>, CacheError> {
        let Some(raw) = self.raw(key) else {
            return Ok(None);
        };
        let n: usize = raw
            .parse()
            .map_err(|_| self.bad(key, raw, "expected a whole number"))?;
        if !(min..=max).contains(&n) {
            return Err(self.bad(key, raw, format!("must lie in {min}..={max}")));
        }
        Ok(Some(n))
    }

    /// A whole number ([`Kind::Count`] or [`Kind::Odd`]), its default when not given.
    pub fn count(&mut self, key: &str) -> Result<usize, CacheError> {
        let default = match self.param(key).kind {
            Kind::Count { default, .. } | Kind::Odd { default, .. } => default,
            _ => 0,
        };
        self.count_or(key, default)
    }

    /// A whole number, `chosen` when not given (the policy's default for a [`Kind::Chosen`], or
    /// a preset's in place of the declared one).
    pub fn count_or(&mut self, key: &str, chosen: usize) -> Result<usize, CacheError> {
        match self.param(key).kind {
            Kind::Chosen { min, max } | Kind::Count { min, max, .. } => {
                Ok(self.whole(key, min, max)?.unwrap_or(chosen))
            }
            Kind::Odd { min, max, .. } => {
                let n = self.whole(key, min, max)?.unwrap_or(chosen);
                if n.is_multiple_of(2) {
                    return Err(self.bad(key, &n.to_string(), "must be odd"));
                }
                Ok(n)
            }
            other => panic!("parameter '{key}' is {other:?}, not a whole number"),
        }
    }

    /// A real number, its default when not given.
    pub fn real(&mut self, key: &str) -> Result<f64, CacheError> {
        let Kind::Real { default, min, max } = self.param(key).kind else {
            panic!("parameter '{key}' is not a real number");
        };
        let Some(raw) = self.raw(key) else {
            return Ok(default);
        };
        let x: f64 = raw
            .parse()
            .map_err(|_| self.bad(key, raw, "expected a number"))?;
        if !(min..=max).contains(&x) {
            return Err(self.bad(key, raw, format!("must lie in [{min}, {}]", Bound(max))));
        }
        Ok(x)
    }

    /// `true` or `false`, its default when not given.
    pub fn flag(&mut self, key: &str) -> Result<bool, CacheError> {
        let Kind::Flag { default } = self.param(key).kind else {
            panic!("parameter '{key}' is not a flag");
        };
        match self.raw(key) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| self.bad(key, raw, "expected true or false")),
        }
    }

    /// One of a [`Kind::Choice`]'s names, its default when not given.
    pub fn choice(&mut self, key: &str) -> Result<&'static str, CacheError> {
        let Kind::Choice { default, choices } = self.param(key).kind else {
            panic!("parameter '{key}' is not a choice");
        };
        let Some(raw) = self.raw(key) else {
            return Ok(default);
        };
        choices
            .iter()
            .copied()
            .find(|c| *c == raw)
            .ok_or_else(|| self.bad(key, raw, format!("expected {}", choices.join(" or "))))
    }

    /// A plain-scorer policy's entry, its default when not given.
    pub fn scorer(&mut self, key: &str) -> Result<&'static Entry, CacheError> {
        let Kind::Scorer { default } = self.param(key).kind else {
            panic!("parameter '{key}' is not a policy name");
        };
        let raw = self.raw(key).unwrap_or(default);
        policies::find(raw)
            .filter(|e| e.plain_scorer)
            .ok_or_else(|| {
                self.bad(
                    key,
                    raw,
                    format!("expected {}", self.param(key).range_text()),
                )
            })
    }

    /// Whether `key` was given.
    pub fn given(&self, key: &str) -> bool {
        self.given.iter().any(|(k, _)| k == key)
    }

    /// Reports the first parameter nobody read, with the ones this policy takes.
    pub fn finish(self) -> Result<(), CacheError> {
        let Some(i) = self.used.iter().position(|u| !u) else {
            return Ok(());
        };
        let mut known: Vec<&str> = self
            .tables
            .iter()
            .flat_map(|t| t.iter().map(|p| p.key))
            .collect();
        known.sort_unstable();
        known.dedup();
        Err(CacheError::UnknownParameter {
            policy: self.policy.into(),
            key: self.given[i].0.clone(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        })
    }
}
