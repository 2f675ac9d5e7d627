//! Policies by name: `snapkv`, `adakv:scorer=expected,alpha=0.2`, `h2o:recent_share=0.25`.

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::Backend;

use crate::scorer::{
    ExpectedAttention, KNorm, KeyDiff, MomentInformed, ObservedAttention, OutputAware, Random,
    SnapKv, StreamingLlm, Tova,
};
use crate::{Allocation, CacheError, LayerBudget, Policy};

/// A policy's name, what it does and its parameters `(key, default, meaning)`.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInfo {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub summary: &'static str,
    pub params: &'static [(&'static str, &'static str, &'static str)],
}

/// Parameters every evicting policy takes (defaults depend on the policy).
pub const COMMON_PARAMS: &[(&str, &str, &str)] = &[
    (
        "sinks",
        "policy's",
        "tokens at the start that are never evicted",
    ),
    (
        "recent",
        "policy's",
        "most recent tokens that are never evicted",
    ),
    (
        "order",
        "1",
        "with moments: 2 adds the key variance to the correction's normaliser",
    ),
    (
        "segment",
        "0",
        "with moments: one summary per block of this many positions (0: one per head)",
    ),
];

const SNAPKV_PARAMS: &[(&str, &str, &str)] = &[
    (
        "window",
        "64",
        "observation window: the last queries whose attention scores tokens (also protected)",
    ),
    (
        "kernel",
        "5",
        "odd width of the average pooling over positions",
    ),
];

const EXPECTED_PARAMS: &[(&str, &str, &str)] = &[
    (
        "n_future",
        "512",
        "future positions the query statistics are rotated over",
    ),
    (
        "sinks",
        "4",
        "first tokens excluded from statistics and softmax, and protected",
    ),
    (
        "covariance",
        "true",
        "add the query covariance term ½ kᵀΣk/d",
    ),
    ("vnorm", "true", "multiply by the value norm ‖v‖"),
    (
        "epsilon",
        "0",
        "added to the probability before the value norm",
    ),
];

const MOMENTKV_PARAMS: &[(&str, &str, &str)] = &[
    (
        "window",
        "64",
        "observation window: the last queries the score is measured on (also protected)",
    ),
    (
        "kernel",
        "5",
        "odd width of the average pooling over positions",
    ),
    (
        "refine",
        "1",
        "re-estimates of the summary mean from the eviction the scores imply",
    ),
    (
        "correct",
        "true",
        "correct attention with the moments (false: moment-informed eviction alone)",
    ),
];

const LAPROX_PARAMS: &[(&str, &str, &str)] = &[
    (
        "window",
        "64",
        "observation window: the last queries whose attention scores tokens (also protected)",
    ),
    (
        "kernel",
        "5",
        "odd width of the average pooling over positions",
    ),
    (
        "alpha",
        "0.2",
        "each head keeps at least this share of the uniform budget; the rest goes to the \
         layer's best scores across heads",
    ),
];

/// Every policy, in the order `momentkv policies` lists them.
pub const POLICIES: &[PolicyInfo] = &[
    PolicyInfo {
        name: "full",
        aliases: &["none"],
        summary: "keep every token (exact attention; the budget is ignored)",
        params: &[],
    },
    PolicyInfo {
        name: "random",
        aliases: &[],
        summary: "random scores: the floor any policy must beat",
        params: &[("seed", "0", "seed of the scores")],
    },
    PolicyInfo {
        name: "streaming",
        aliases: &["streamingllm", "streaming_llm"],
        summary: "StreamingLLM: attention sinks plus the most recent tokens (sinks=4)",
        params: &[],
    },
    PolicyInfo {
        name: "h2o",
        aliases: &["observed", "observed_attention"],
        summary: "H2O heavy hitters: accumulated attention received, plus a recent window",
        params: &[
            (
                "recent_share",
                "0.5",
                "share of the budget protected as recent tokens",
            ),
            (
                "normalize",
                "false",
                "divide by the number of queries that saw the token (kvpress ObservedAttention)",
            ),
        ],
    },
    PolicyInfo {
        name: "snapkv",
        aliases: &[],
        summary:
            "SnapKV: pooled attention of the last window of queries, mean over the query group",
        params: SNAPKV_PARAMS,
    },
    PolicyInfo {
        name: "pyramidkv",
        aliases: &["pyramid"],
        summary: "PyramidKV: SnapKV scores with per-layer budgets falling linearly with depth",
        params: &[
            (
                "window",
                "64",
                "as snapkv; also bounds the smallest layer budget",
            ),
            ("kernel", "5", "as snapkv"),
            (
                "beta",
                "20",
                "the last layer keeps 1/beta of the mean budget",
            ),
        ],
    },
    PolicyInfo {
        name: "adakv",
        aliases: &[],
        summary:
            "AdaKV: any scorer, with per-head budgets from a global top-k across the layer's heads",
        params: &[
            (
                "scorer",
                "snapkv",
                "the policy whose scores are shared out (its parameters may follow)",
            ),
            (
                "alpha",
                "0.2",
                "each head keeps at least this share of the uniform budget",
            ),
        ],
    },
    PolicyInfo {
        name: "tova",
        aliases: &[],
        summary: "TOVA: attention of the newest query, averaged over all heads",
        params: &[],
    },
    PolicyInfo {
        name: "knorm",
        aliases: &[],
        summary: "KNorm: keep keys with small L2 norm",
        params: &[],
    },
    PolicyInfo {
        name: "keydiff",
        aliases: &[],
        summary: "KeyDiff: keep keys least similar to the mean key direction",
        params: &[],
    },
    PolicyInfo {
        name: "expected",
        aliases: &["expected_attention", "ea"],
        summary:
            "Expected Attention: softmax of keys against statistics of future queries, times ‖v‖",
        params: EXPECTED_PARAMS,
    },
    PolicyInfo {
        name: "momentkv",
        aliases: &["moment", "mi"],
        summary: "MomentKV: evict tokens the moments of the evicted set already capture \
                  (each token's first-order error on the window's queries), and correct \
                  attention with those moments",
        params: MOMENTKV_PARAMS,
    },
    PolicyInfo {
        name: "laprox",
        aliases: &["output_aware"],
        summary: "LaProx-style output-aware scoring: each token's contribution to the layer's \
                  projected output over the window, cross-head terms included, with the \
                  layer's budget shared among heads by score",
        params: LAPROX_PARAMS,
    },
];

/// Finds a policy by name or alias.
pub fn policy_info(name: &str) -> Option<&'static PolicyInfo> {
    POLICIES
        .iter()
        .find(|p| p.name == name || p.aliases.contains(&name))
}

/// A policy as written: `name[+moments][:key=value,...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
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
        let info = policy_info(&name).ok_or_else(|| CacheError::UnknownPolicy {
            name: name.clone(),
            known: POLICIES
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let mut params = Vec::new();
        for item in rest.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| CacheError::BadParameter {
                    policy: info.name.into(),
                    key: item.into(),
                    value: String::new(),
                    reason: "parameters are written key=value".into(),
                })?;
            params.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(Self {
            name: info.name.to_string(),
            moments,
            params,
        })
    }
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

/// Reads parameters once each and reports the ones nobody read.
struct Params<'a> {
    policy: &'a str,
    given: &'a [(String, String)],
    used: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'a> Params<'a> {
    fn raw(&mut self, key: &'static str) -> Option<&'a str> {
        self.known.push(key);
        let i = self.given.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        Some(&self.given[i].1)
    }

    fn bad(&self, key: &str, value: &str, reason: &str) -> CacheError {
        CacheError::BadParameter {
            policy: self.policy.into(),
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    fn parse<T: FromStr>(
        &mut self,
        key: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, CacheError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| self.bad(key, v, what)),
        }
    }

    fn usize(&mut self, key: &'static str, default: usize) -> Result<usize, CacheError> {
        self.parse(key, default, "expected a whole number")
    }

    fn f64_in(
        &mut self,
        key: &'static str,
        default: f64,
        lo: f64,
        hi: f64,
    ) -> Result<f64, CacheError> {
        let v = self.parse(key, default, "expected a number")?;
        if !(lo..=hi).contains(&v) {
            return Err(self.bad(key, &v.to_string(), &format!("must lie in [{lo}, {hi}]")));
        }
        Ok(v)
    }

    fn bool(&mut self, key: &'static str, default: bool) -> Result<bool, CacheError> {
        self.parse(key, default, "expected true or false")
    }

    fn finish(self) -> Result<(), CacheError> {
        let mut known = self.known.clone();
        known.sort_unstable();
        known.dedup();
        match self.used.iter().position(|u| !u) {
            None => Ok(()),
            Some(i) => Err(CacheError::UnknownParameter {
                policy: self.policy.into(),
                key: self.given[i].0.clone(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            }),
        }
    }
}

impl PolicySpec {
    /// The policy with its parameters applied; unknown or invalid parameters are errors.
    pub fn build<B: Backend>(&self) -> Result<Policy<B>, CacheError> {
        let spec = self.to_string();
        let mut p = Params {
            policy: &self.name,
            given: &self.params,
            used: vec![false; self.params.len()],
            known: Vec::new(),
        };
        if self.name == "full" {
            p.finish()?;
            if self.moments {
                return Err(no_moments_for_full());
            }
            return Ok(Policy::full());
        }
        let mut policy = if self.name == "adakv" {
            let inner = p.raw("scorer").unwrap_or("snapkv");
            let inner = policy_info(inner)
                .filter(|i| !matches!(i.name, "full" | "adakv" | "pyramidkv"))
                .ok_or_else(|| {
                    p.bad(
                        "scorer",
                        inner,
                        "expected a scoring policy: random, streaming, h2o, \
                           snapkv, tova, knorm, keydiff, expected, momentkv or laprox",
                    )
                })?;
            let alpha = p.f64_in("alpha", 0.2, 0.0, 1.0)?;
            let mut policy = scored(inner.name, &spec, &mut p)?;
            policy.allocation = Allocation::Adaptive { alpha };
            policy
        } else {
            scored(&self.name, &spec, &mut p)?
        };
        policy.sinks = p.usize("sinks", policy.sinks)?;
        policy.recent = p.usize("recent", policy.recent)?;
        policy.moments |= self.moments;
        if let Some(order) = p.raw("order") {
            policy.order = order
                .parse()
                .map_err(|e: String| p.bad("order", order, &e))?;
            if !policy.keeps_moments() {
                return Err(p.bad(
                    "order",
                    order,
                    "the policy keeps no moments: add +moments to its name",
                ));
            }
        }
        if let Some(segment) = p.raw("segment") {
            policy.segment = segment
                .parse()
                .map_err(|_| p.bad("segment", segment, "expected a whole number of positions"))?;
            if !policy.keeps_moments() {
                return Err(p.bad(
                    "segment",
                    segment,
                    "the policy keeps no moments: add +moments to its name",
                ));
            }
        }
        p.finish()?;
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

/// A scoring policy `name` with its own parameters read from `p`.
fn scored<B: Backend>(name: &str, spec: &str, p: &mut Params) -> Result<Policy<B>, CacheError> {
    let snapkv = |p: &mut Params| -> Result<SnapKv, CacheError> {
        let window = p.usize("window", 64)?;
        let kernel = p.usize("kernel", 5)?;
        if kernel.is_multiple_of(2) {
            return Err(p.bad(
                "kernel",
                &kernel.to_string(),
                "the pooling width must be odd",
            ));
        }
        if window == 0 {
            return Err(p.bad(
                "window",
                "0",
                "the observation window needs at least one query",
            ));
        }
        Ok(SnapKv { window, kernel })
    };
    Ok(match name {
        "random" => Policy::scored(
            spec,
            Random {
                seed: p.usize("seed", 0)? as u64,
            },
        ),
        "streaming" => Policy {
            sinks: 4,
            ..Policy::scored(spec, StreamingLlm)
        },
        "h2o" => {
            let share = p.f64_in("recent_share", 0.5, 0.0, 1.0)?;
            let normalize = p.bool("normalize", false)?;
            Policy {
                recent_share: share,
                ..Policy::scored(spec, ObservedAttention { normalize })
            }
        }
        "snapkv" => {
            let s = snapkv(p)?;
            Policy {
                recent: s.window,
                ..Policy::scored(spec, s)
            }
        }
        "pyramidkv" => {
            let s = snapkv(p)?;
            let beta = p.f64_in("beta", 20.0, 1.0, f64::MAX)?;
            Policy {
                recent: s.window,
                layer_budget: LayerBudget::Pyramid {
                    window: s.window,
                    beta,
                },
                ..Policy::scored(spec, s)
            }
        }
        "tova" => Policy {
            recent: 1,
            ..Policy::scored(spec, Tova)
        },
        "knorm" => Policy::scored(spec, KNorm),
        "keydiff" => Policy::scored(spec, KeyDiff),
        "expected" => {
            let sinks = p.usize("sinks", 4)?;
            let scorer = ExpectedAttention {
                n_future: p.usize("n_future", 512)?,
                sinks,
                covariance: p.bool("covariance", true)?,
                vnorm: p.bool("vnorm", true)?,
                epsilon: p.f64_in("epsilon", 0.0, 0.0, f64::MAX)?,
            };
            Policy {
                sinks,
                ..Policy::scored(spec, scorer)
            }
        }
        "momentkv" => {
            let s = snapkv(p)?;
            let correct = p.bool("correct", true)?;
            let refine = p.usize("refine", 1)?;
            Policy {
                recent: s.window,
                moments: correct,
                ..Policy::scored(
                    spec,
                    MomentInformed {
                        window: s.window,
                        kernel: s.kernel,
                        refine,
                    },
                )
            }
        }
        "laprox" => {
            let s = snapkv(p)?;
            let alpha = p.f64_in("alpha", 0.2, 0.0, 1.0)?;
            Policy {
                recent: s.window,
                allocation: Allocation::Adaptive { alpha },
                ..Policy::scored(
                    spec,
                    OutputAware {
                        window: s.window,
                        kernel: s.kernel,
                    },
                )
            }
        }
        other => unreachable!("policy_info knows '{other}' but no scorer does"),
    })
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;
    use crate::Order;

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
        assert_eq!((snap.recent, snap.sinks), (64, 0));
        let stream = build("streaming").unwrap();
        assert_eq!(stream.sinks, 4);
        let pyramid = build("pyramidkv").unwrap();
        assert_eq!(
            pyramid.layer_budget,
            LayerBudget::Pyramid {
                window: 64,
                beta: 20.0
            }
        );
        let ada = build("adakv:scorer=expected,epsilon=0.01").unwrap();
        assert_eq!(ada.allocation, Allocation::Adaptive { alpha: 0.2 });
        assert_eq!(ada.sinks, 4);
        let corrected = build("snapkv+moments:window=32").unwrap();
        assert!(corrected.moments && !build("snapkv").unwrap().moments);
        assert_eq!(corrected.spec, "snapkv+moments:window=32");
        assert!(build("full+moments").is_err());
        let momentkv = build("momentkv").unwrap();
        assert!(momentkv.moments && momentkv.keeps_moments());
        assert_eq!((momentkv.recent, momentkv.sinks), (64, 0));
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
}
