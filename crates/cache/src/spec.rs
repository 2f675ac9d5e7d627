//! Policies by name: `snapkv`, `adakv:scorer=expected,alpha=0.2`, `h2o:recent_share=0.25`.

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::Backend;

use crate::params::{Args, COMMON_PARAMS};
use crate::policies::{self, Entry, POLICIES};
use crate::{CacheError, Order, Policy};

/// A policy as written: `name[+moments][:key=value,...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
    /// The registered name (an alias as written is resolved to it).
    pub name: String,
    /// `+moments`: correct attention with the moments of evicted tokens.
    pub moments: bool,
    pub params: Vec<(String, String)>,
}

impl FromStr for PolicySpec {
    type Err = CacheError;

    fn from_str(s: &str) -> Result<Self, CacheError> {
        let (name, rest) = s.split_once(':').unwrap_or((s, ""));
        let name = name.trim().to_ascii_lowercase();
        let (name, moments) = match name.strip_suffix("+moments") {
            Some(base) => (base.to_string(), true),
            None => (name, false),
        };
        let entry = entry(&name)?;
        let mut params: Vec<(String, String)> = Vec::new();
        for item in rest.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bad = |key: &str, value: &str, reason: &str| CacheError::BadParameter {
                policy: entry.name.into(),
                key: key.into(),
                value: value.into(),
                reason: reason.into(),
            };
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| bad(item, "", "parameters are written key=value"))?;
            let (k, v) = (k.trim(), v.trim());
            if params.iter().any(|(given, _)| given == k) {
                return Err(bad(k, v, "the parameter is given twice"));
            }
            params.push((k.to_string(), v.to_string()));
        }
        Ok(Self {
            name: entry.name.to_string(),
            moments,
            params,
        })
    }
}

/// The registry's entry for `name`, or an error listing the registry.
fn entry(name: &str) -> Result<&'static Entry, CacheError> {
    policies::find(name).ok_or_else(|| CacheError::UnknownPolicy {
        name: name.into(),
        known: POLICIES
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

impl fmt::Display for PolicySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.moments {
            f.write_str("+moments")?;
        }
        for (i, (k, v)) in self.params.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { ':' } else { ',' })?;
        }
        Ok(())
    }
}

/// With moments: the smallest block of positions one summary may cover, so the summaries stay
/// few next to the tokens held.
pub const MIN_SEGMENT: usize = 16;

/// With moments and `segment=L`: the most summaries a head keeps; positions from
/// `(MAX_SUMMARIES − 1)·L` on share the last one.
pub const MAX_SUMMARIES: usize = 64;

impl PolicySpec {
    /// The policy with its parameters applied; unknown, repeated, out-of-range or invalid
    /// parameters are errors naming them.
    pub fn build<B: Backend>(&self) -> Result<Policy<B>, CacheError> {
        let entry = entry(&self.name)?;
        let mut args = Args::new(&self.name, &self.params, entry);
        let mut policy = policies::build::<B>(entry, &mut args)?;
        policy.spec = self.to_string();
        if !policy.evicts() {
            args.finish()?;
            if self.moments {
                return Err(no_moments_for_full());
            }
            return Ok(policy);
        }
        args.declare(COMMON_PARAMS);
        policy.sinks = args.count_or("sinks", policy.sinks)?;
        policy.recent = args.count_or("recent", policy.recent)?;
        policy.moments |= self.moments;
        for key in ["order", "segment"] {
            if args.given(key) && !policy.keeps_moments() {
                let value = &self.params.iter().find(|(k, _)| k == key).expect("given").1;
                return Err(args.bad(
                    key,
                    value,
                    "the policy keeps no moments: add +moments to its name",
                ));
            }
        }
        policy.order = match args.count("order")? {
            1 => Order::First,
            _ => Order::Second,
        };
        policy.segment = args.count("segment")?;
        if (1..MIN_SEGMENT).contains(&policy.segment) {
            return Err(args.bad(
                "segment",
                &policy.segment.to_string(),
                format!("a summary covers at least {MIN_SEGMENT} positions (0: one per head)"),
            ));
        }
        args.finish()?;
        Ok(policy)
    }
}

fn no_moments_for_full() -> CacheError {
    CacheError::BadParameter {
        policy: "full".into(),
        key: "+moments".into(),
        value: String::new(),
        reason: "the full cache evicts nothing, so there are no moments to keep".into(),
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;
    use crate::{Allocation, LayerBudget, Order};

    fn build(s: &str) -> Result<Policy<NdArray>, CacheError> {
        s.parse::<PolicySpec>()?.build()
    }

    #[test]
    fn every_listed_policy_builds_with_its_defaults() {
        for info in POLICIES {
            let p = build(info.name).unwrap();
            assert_eq!(p.evicts(), info.name != "full", "{}", info.name);
            for alias in info.aliases {
                assert_eq!(alias.parse::<PolicySpec>().unwrap().name, info.name);
            }
        }
    }

    #[test]
    fn defaults_follow_the_reference_implementations() {
        let snap = build("snapkv").unwrap();
        assert_eq!((snap.recent, snap.sinks, snap.recent_cap), (32, 4, 0.5));
        // At budget 64 the window protects 30 tokens after the 4 sinks, not the whole budget.
        assert_eq!(snap.protected_recent(64), 30);
        assert_eq!(snap.protected_recent(1024), 32);
        let kvpress = build("snapkv:preset=kvpress").unwrap();
        assert_eq!((kvpress.recent, kvpress.sinks), (64, 0));
        assert_eq!(kvpress.protected_recent(64), 64);
        assert!(build("snapkv:preset=vllm").is_err());
        let stream = build("streaming").unwrap();
        assert_eq!(stream.sinks, 4);
        let pyramid = build("pyramidkv:preset=kvpress").unwrap();
        assert_eq!(
            pyramid.layer_budget,
            LayerBudget::Pyramid {
                window: 64,
                beta: 20.0
            }
        );
        assert_eq!(build("pyramidkv").unwrap().sinks, 4);
        let ada = build("adakv:scorer=expected,epsilon=0.01").unwrap();
        assert_eq!(ada.allocation, Allocation::Adaptive { alpha: 0.2 });
        assert_eq!(ada.sinks, 4);
        let corrected = build("snapkv+moments:window=32").unwrap();
        assert!(corrected.moments && !build("snapkv").unwrap().moments);
        assert_eq!(corrected.spec, "snapkv+moments:window=32");
        assert!(build("full+moments").is_err());
        let momentkv = build("momentkv").unwrap();
        assert!(momentkv.moments && momentkv.keeps_moments());
        assert_eq!((momentkv.recent, momentkv.sinks), (32, 4));
        assert_eq!(momentkv.order, Order::First);
        let second = build("snapkv+moments:order=2").unwrap();
        assert_eq!(second.order, Order::Second);
        assert!(build("snapkv:order=2").is_err());
        assert_eq!(build("snapkv+moments:segment=256").unwrap().segment, 256);
        assert!(build("snapkv:segment=256").is_err());
        assert!(build("momentkv:order=3").is_err());
        let informed = build("momentkv:correct=false").unwrap();
        assert!(!informed.moments && informed.keeps_moments());
        let tuned = build("snapkv:window=32,kernel=7,sinks=2").unwrap();
        assert_eq!((tuned.recent, tuned.sinks), (32, 2));
        assert_eq!(tuned.spec, "snapkv:window=32,kernel=7,sinks=2");
    }

    #[test]
    fn bad_specs_name_the_problem() {
        let e = build("lru").unwrap_err().to_string();
        assert!(
            e.contains("unknown policy 'lru'") && e.contains("snapkv"),
            "{e}"
        );
        let e = build("snapkv:windw=3").unwrap_err().to_string();
        assert!(
            e.contains("no parameter 'windw'") && e.contains("window"),
            "{e}"
        );
        let e = build("snapkv:kernel=4").unwrap_err().to_string();
        assert!(e.contains("must be odd"), "{e}");
        let e = build("h2o:recent_share=2").unwrap_err().to_string();
        assert!(e.contains("[0, 1]"), "{e}");
        let e = build("adakv:scorer=full").unwrap_err().to_string();
        assert!(e.contains("expected a scoring policy"), "{e}");
        let e = build("full:window=3").unwrap_err().to_string();
        assert!(e.contains("its parameters: none"), "{e}");
        let e = build("knorm:sinks").unwrap_err().to_string();
        assert!(e.contains("key=value"), "{e}");
    }

    #[test]
    fn parameters_are_bounded_and_given_once() {
        let e = build("snapkv:window=64,window=32").unwrap_err().to_string();
        assert!(e.contains("'window'") && e.contains("given twice"), "{e}");
        let e = build("snapkv:kernel=1000001").unwrap_err().to_string();
        assert!(e.contains("1..=255"), "{e}");
        let e = build("snapkv+moments:segment=1").unwrap_err().to_string();
        assert!(e.contains("at least 16"), "{e}");
        let e = build("pyramidkv:beta=0").unwrap_err().to_string();
        assert!(e.contains("[1, 1000000]") && e.len() < 120, "{e}");
        let e = build("streaming:sinks=99999999").unwrap_err().to_string();
        assert!(e.contains("sinks"), "{e}");
        let e = build("h2o:recent_share=nan").unwrap_err().to_string();
        assert!(e.contains("recent_share"), "{e}");
    }

    #[test]
    fn every_parameter_default_lies_in_its_range_and_builds() {
        use crate::params::Kind;
        for entry in POLICIES {
            for p in entry.params.iter().chain(COMMON_PARAMS) {
                let ok = match p.kind {
                    Kind::Count { default, min, max } => (min..=max).contains(&default),
                    Kind::Odd { default, min, max } => {
                        (min..=max).contains(&default) && default % 2 == 1
                    }
                    Kind::Real { default, min, max } => (min..=max).contains(&default),
                    Kind::Chosen { .. } | Kind::Flag { .. } => true,
                    Kind::Scorer { default } => policies::find(default).is_some(),
                    Kind::Choice { default, choices } => choices.contains(&default),
                };
                assert!(ok, "{}: {}", entry.name, p.key);
                // Every declared parameter is read: given at its default, it builds.
                if entry.name == "full" || matches!(p.kind, Kind::Chosen { .. }) {
                    continue;
                }
                let moments = if matches!(p.key, "order" | "segment") {
                    "+moments"
                } else {
                    ""
                };
                let spec = format!("{}{moments}:{}={}", entry.name, p.key, p.default_text());
                build(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            }
        }
    }
}
