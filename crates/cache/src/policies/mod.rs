//! The policy registry. A policy is one file here, exporting
//!
//! - `ENTRY`: its [`Entry`] (name, one-line summary, typed parameters with their defaults and
//!   ranges, written once), and
//! - `build`: its builder, reading those parameters through [`Args`] into a [`Policy`] (a
//!   [`crate::Scorer`] plus selection rules),
//!
//! plus one line in the `registry!` list below. `momentkv policies`, the parser's error for an
//! unknown policy and every test that loops over policies read [`POLICIES`].

use burn::tensor::backend::Backend;

use crate::params::{Args, Param};
use crate::{CacheError, Policy};

/// A policy as `momentkv policies` lists it and the parser finds it.
#[derive(Debug)]
pub struct Entry {
    /// The name a spec uses (`snapkv` in `snapkv:window=32`); also the policy's file name.
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// What it does, one line.
    pub summary: &'static str,
    /// Its own parameters; evicting policies also take [`crate::COMMON_PARAMS`].
    pub params: &'static [Param],
    /// Whether it is a scorer alone (no per-head allocation or per-layer budget of its own), whose
    /// scores `adakv` can share out across heads.
    pub plain_scorer: bool,
    /// kvpress presses it reproduces: `(the press's key in tests/fixtures/kvpress-parity.json,
    /// our spec that keeps the same tokens)`.
    pub kvpress: &'static [(&'static str, &'static str)],
}

/// Declares the policy modules: each line is one policy file.
macro_rules! registry {
    ($($(#[$cfg:meta])* $policy:ident),* $(,)?) => {
        $($(#[$cfg])* pub mod $policy;)*

        /// Every policy, in the order `momentkv policies` lists them.
        pub static POLICIES: &[&Entry] = &[$($(#[$cfg])* &$policy::ENTRY),*];

        /// Builds `entry`'s policy from its parameters.
        pub(crate) fn build<B: Backend>(
            entry: &Entry,
            args: &mut Args,
        ) -> Result<Policy<B>, CacheError> {
            $($(#[$cfg])* if entry.name == $policy::ENTRY.name {
                return $policy::build(args);
            })*
            unreachable!("'{}' is not registered", entry.name)
        }
    };
}

registry! {
    full,
    random,
    streaming,
    h2o,
    snapkv,
    pyramidkv,
    adakv,
    tova,
    knorm,
    keydiff,
    expected,
    kvzip,
    momentkv,
    laprox,
    #[cfg(feature = "testing")]
    probe,
}

/// Finds a policy by name or alias.
pub fn find(name: &str) -> Option<&'static Entry> {
    POLICIES
        .iter()
        .copied()
        .find(|e| e.name == name || e.aliases.contains(&name))
}

/// The window-scored policies' `window` and `kernel` (SnapKV and the scorers built on its
/// observation window), declared once; their defaults are [`Preset::Default`]'s.
pub(crate) const WINDOW: Param = Param::count(
    "window",
    Preset::Default.window(),
    1,
    crate::params::MAX_POSITIONS,
    "observation window: the last queries whose attention scores tokens (also protected); \
     preset=kvpress: 64",
);

/// See [`WINDOW`].
pub(crate) const KERNEL: Param = Param::odd(
    "kernel",
    Preset::Default.kernel(),
    1,
    255,
    "odd width of the average pooling over positions; preset=kvpress: 5",
);

/// See [`Preset`].
pub(crate) const PRESET: Param = Param::choice(
    "preset",
    "default",
    &["default", "kvpress"],
    "defaults: momentkv's (window 32, kernel 15, 4 sinks, the window at most half the budget) \
     or kvpress's (window 64, kernel 5, no sinks)",
);

/// Which defaults a window-scored policy takes (`preset=`).
///
/// kvpress's (window 64, pooling width 5, no sinks) fail on tokenizers that spell a number digit
/// by digit: a 5-wide pool cannot hold a 5-digit passkey in SmolLM2's tokens (0/4 passkeys found,
/// against 4/4 with window 32 and width 15), and at small budgets the 64-query window takes the
/// whole budget and the attention sinks are evicted. momentkv's defaults fix both; `kvpress`
/// keeps the reference values for parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preset {
    Default,
    Kvpress,
}

impl Preset {
    /// Attention sinks [`Preset::Default`] protects.
    const SINKS: usize = 4;
    /// The largest share of a budget (after the sinks) [`Preset::Default`]'s window protects.
    const WINDOW_SHARE: f64 = 0.5;

    pub(crate) fn read(args: &mut Args) -> Result<Self, CacheError> {
        Ok(match args.choice("preset")? {
            "kvpress" => Self::Kvpress,
            _ => Self::Default,
        })
    }

    pub(crate) const fn window(self) -> usize {
        match self {
            Self::Default => 32,
            Self::Kvpress => 64,
        }
    }

    pub(crate) const fn kernel(self) -> usize {
        match self {
            Self::Default => 15,
            Self::Kvpress => 5,
        }
    }

    /// `policy` protecting its observation window of `window` queries as this preset does:
    /// kvpress protects the whole window; momentkv's default also protects 4 sinks and gives the
    /// window at most half of what the budget leaves after them.
    pub(crate) fn protect<B: Backend>(self, window: usize, policy: Policy<B>) -> Policy<B> {
        match self {
            Self::Kvpress => Policy {
                recent: window,
                ..policy
            },
            Self::Default => Policy {
                recent: window,
                sinks: Self::SINKS,
                recent_cap: Self::WINDOW_SHARE,
                ..policy
            },
        }
    }
}
