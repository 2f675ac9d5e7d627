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
/// observation window), declared once.
pub(crate) const WINDOW: Param = Param::count(
    "window",
    64,
    1,
    crate::params::MAX_POSITIONS,
    "observation window: the last queries whose attention scores tokens (also protected)",
);

/// See [`WINDOW`].
pub(crate) const KERNEL: Param = Param::odd(
    "kernel",
    5,
    1,
    255,
    "odd width of the average pooling over positions",
);
