use std::fmt;
use std::str::FromStr;

use burn::config::Config;
use serde::{Deserialize, Serialize};

use super::AdapterError;

/// A projection of each decoder layer that an adapter can target, named as in Hugging Face
/// checkpoints and PEFT's `target_modules`. The order of the variants is the canonical order
/// momentkv lists targets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterTarget {
    QProj,
    KProj,
    VProj,
    OProj,
    GateProj,
    UpProj,
    DownProj,
}

impl AdapterTarget {
    /// Every target, in canonical order.
    pub const ALL: [AdapterTarget; 7] = [
        AdapterTarget::QProj,
        AdapterTarget::KProj,
        AdapterTarget::VProj,
        AdapterTarget::OProj,
        AdapterTarget::GateProj,
        AdapterTarget::UpProj,
        AdapterTarget::DownProj,
    ];

    /// The projection's name: `q_proj`, ..., `down_proj`.
    pub fn name(self) -> &'static str {
        match self {
            AdapterTarget::QProj => "q_proj",
            AdapterTarget::KProj => "k_proj",
            AdapterTarget::VProj => "v_proj",
            AdapterTarget::OProj => "o_proj",
            AdapterTarget::GateProj => "gate_proj",
            AdapterTarget::UpProj => "up_proj",
            AdapterTarget::DownProj => "down_proj",
        }
    }

    /// The projection's path inside a decoder layer: `self_attn.q_proj`, `mlp.gate_proj`, ...
    pub fn path(self) -> &'static str {
        match self {
            AdapterTarget::QProj => "self_attn.q_proj",
            AdapterTarget::KProj => "self_attn.k_proj",
            AdapterTarget::VProj => "self_attn.v_proj",
            AdapterTarget::OProj => "self_attn.o_proj",
            AdapterTarget::GateProj => "mlp.gate_proj",
            AdapterTarget::UpProj => "mlp.up_proj",
            AdapterTarget::DownProj => "mlp.down_proj",
        }
    }
}

impl fmt::Display for AdapterTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AdapterTarget {
    type Err = AdapterError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        AdapterTarget::ALL
            .into_iter()
            .find(|target| target.name() == name)
            .ok_or_else(|| AdapterError::UnknownTarget(name.to_string()))
    }
}

/// The largest rank an adapter may have: far above the ranks LoRA is used with (4 to 256), and
/// small enough that a configuration cannot make the factors' allocation absurd.
pub const MAX_ADAPTER_RANK: usize = 1 << 16;

/// A LoRA adapter's hyper-parameters, as PEFT's `LoraConfig` has them.
///
/// Each targeted projection `W` `[out, in]` of every decoder layer gets factors `A` `[rank, in]`
/// and `B` `[out, rank]` and computes `y = x·Wᵀ + b + s · dropout(x)·Aᵀ·Bᵀ`, with the scaling
/// `s = alpha / rank`, or `s = alpha / √rank` with rank-stabilised LoRA (`use_rslora`).
#[derive(Config, Debug, PartialEq)]
pub struct LoraConfig {
    /// The rank `r` of the update `B·A`.
    pub rank: usize,
    /// `alpha` of the scaling `s`.
    pub alpha: f64,
    /// The probability of zeroing an input of the side path, during training only.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// The projections of every decoder layer that get an adapter.
    #[config(default = "AdapterTarget::ALL.to_vec()")]
    pub targets: Vec<AdapterTarget>,
    /// Rank-stabilised LoRA's scaling `alpha / √rank` instead of `alpha / rank`.
    #[config(default = false)]
    pub use_rslora: bool,
}

impl LoraConfig {
    /// Checks the hyper-parameters, naming the field at fault: a rank in `1..=MAX_ADAPTER_RANK`, a finite
    /// alpha, a dropout probability in `[0, 1)`, at least one target and none twice.
    pub fn validate(&self) -> Result<(), AdapterError> {
        let bad = |field, reason| Err(AdapterError::Config { field, reason });
        if !(1..=MAX_ADAPTER_RANK).contains(&self.rank) {
            return bad(
                "rank",
                format!("({}) must be between 1 and {MAX_ADAPTER_RANK}", self.rank),
            );
        }
        if !self.alpha.is_finite() {
            return bad("alpha", format!("({}) must be finite", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", format!("({}) must be in [0, 1)", self.dropout));
        }
        if self.targets.is_empty() {
            return bad("targets", "must name at least one projection".into());
        }
        for (i, target) in self.targets.iter().enumerate() {
            if self.targets[..i].contains(target) {
                return bad("targets", format!("name {target} twice"));
            }
        }
        Ok(())
    }

    /// The scaling `s` of the update: `alpha / rank`, or `alpha / √rank` with `use_rslora`.
    pub fn scaling(&self) -> f64 {
        let rank = self.rank as f64;
        if self.use_rslora {
            self.alpha / rank.sqrt()
        } else {
            self.alpha / rank
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_by_name_in_canonical_order() {
        for target in AdapterTarget::ALL {
            assert_eq!(target.name().parse::<AdapterTarget>().unwrap(), target);
            assert!(target.path().ends_with(target.name()));
            assert_eq!(
                serde_json::to_string(&target).unwrap(),
                format!("\"{}\"", target.name())
            );
        }
        let err = "lm_head".parse::<AdapterTarget>().unwrap_err().to_string();
        assert!(
            err.contains("\"lm_head\"") && err.contains("down_proj"),
            "{err}"
        );
        let mut shuffled = vec![AdapterTarget::DownProj, AdapterTarget::QProj];
        shuffled.sort();
        assert_eq!(shuffled, [AdapterTarget::QProj, AdapterTarget::DownProj]);
    }

    #[test]
    fn scaling_is_alpha_over_rank_or_its_square_root() {
        let config = LoraConfig::new(4, 8.0);
        assert_eq!(config.targets, AdapterTarget::ALL);
        assert_eq!(config.scaling(), 2.0);
        assert_eq!(config.with_use_rslora(true).scaling(), 4.0);
    }

    #[test]
    fn bad_hyper_parameters_are_named() {
        let cases = [
            (LoraConfig::new(0, 8.0), "rank (0)"),
            (LoraConfig::new(MAX_ADAPTER_RANK + 1, 8.0), "rank (65537)"),
            (LoraConfig::new(4, f64::NAN), "alpha (NaN)"),
            (LoraConfig::new(4, 8.0).with_dropout(1.0), "dropout (1)"),
            (LoraConfig::new(4, 8.0).with_targets(vec![]), "targets must"),
            (
                LoraConfig::new(4, 8.0)
                    .with_targets(vec![AdapterTarget::VProj, AdapterTarget::VProj]),
                "targets name v_proj twice",
            ),
        ];
        for (config, want) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        LoraConfig::new(4, 8.0)
            .with_dropout(0.1)
            .validate()
            .unwrap();
    }
}
