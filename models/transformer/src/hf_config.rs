//! Hugging Face `config.json`, in both the transformers-4 form (`rope_theta` + `rope_scaling`, as
//! published checkpoints have it) and the transformers-5 form (`rope_parameters`).

use std::path::Path;

use serde::Deserialize;

use crate::{Family, ModelError, RopeScaling, TransformerConfig};

/// The fields of `config.json` that momentkv reads, under their Hugging Face names.
#[derive(Debug, Deserialize)]
pub struct HfConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub head_dim: Option<usize>,
    pub rms_norm_eps: Option<f64>,
    pub rope_theta: Option<f64>,
    pub rope_scaling: Option<RopeJson>,
    pub rope_parameters: Option<RopeJson>,
    pub max_position_embeddings: Option<usize>,
    pub tie_word_embeddings: Option<bool>,
    pub attention_bias: Option<bool>,
    pub mlp_bias: Option<bool>,
    pub hidden_act: Option<String>,
    pub eos_token_id: Option<TokenIds>,
    /// Qwen2's switch for sliding-window attention (`sliding_window`, `max_window_layers`); off
    /// in published checkpoints, and full attention is what momentkv runs.
    pub use_sliding_window: Option<bool>,
}

/// `rope_scaling` / `rope_parameters`.
#[derive(Debug, Deserialize)]
pub struct RopeJson {
    #[serde(alias = "type")]
    pub rope_type: Option<String>,
    pub rope_theta: Option<f64>,
    pub factor: Option<f64>,
    pub low_freq_factor: Option<f64>,
    pub high_freq_factor: Option<f64>,
    pub original_max_position_embeddings: Option<f64>,
}

/// One token id or a list of them (`eos_token_id` is either).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

fn config_error(field: &str, reason: impl Into<String>) -> ModelError {
    ModelError::Config {
        field: field.into(),
        reason: reason.into(),
    }
}

impl HfConfig {
    /// Reads `config.json`; a syntax error or a missing required field names the file and field.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::WeightFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        serde_json::from_str(&text)
            .map_err(|e| config_error(&path.display().to_string(), e.to_string()))
    }

    /// Whether this configuration names an architecture of `family`.
    pub fn is(&self, family: &Family) -> bool {
        self.architectures
            .iter()
            .any(|a| family.hf_architectures.contains(&a.as_str()))
            || self.model_type.as_deref() == Some(family.hf_model_type)
    }

    /// The architecture-neutral configuration, with `family`'s fixed options. Sizes beyond
    /// momentkv's limits (a layer count of 2^31, a hidden size of 2^40) are refused here, naming
    /// the field; the relations between fields are [`TransformerConfig::validate`]'s to check.
    pub fn to_transformer(&self, family: &Family) -> Result<TransformerConfig, ModelError> {
        if let Some(act) = &self.hidden_act {
            if act != "silu" {
                return Err(config_error(
                    "hidden_act",
                    format!("is {act:?}; only \"silu\" is supported"),
                ));
            }
        }
        if self.mlp_bias == Some(true) {
            return Err(config_error(
                "mlp_bias",
                "is true; MLP biases are not supported",
            ));
        }
        if self.use_sliding_window == Some(true) {
            return Err(config_error(
                "use_sliding_window",
                "is true; only full attention is supported",
            ));
        }
        let (attention_bias, output_bias) = match family.attention_bias {
            Some(qkv) => (qkv, false),
            None => {
                let all = self.attention_bias.unwrap_or(false);
                (all, all)
            }
        };
        let rope = self.rope_parameters.as_ref().or(self.rope_scaling.as_ref());
        let rope_theta = self
            .rope_theta
            .or_else(|| rope.and_then(|r| r.rope_theta))
            .unwrap_or(10000.0);
        let rope_scaling = match rope {
            None => RopeScaling::None,
            Some(r) => rope_scaling(r)?,
        };
        let config = TransformerConfig {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            head_dim: self
                .head_dim
                .unwrap_or(self.hidden_size / self.num_attention_heads.max(1)),
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings: self.max_position_embeddings.unwrap_or(2048),
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            attention_bias,
            output_bias,
            qk_norm: family.qk_norm,
        };
        config.check_sizes()?;
        Ok(config)
    }
}

fn rope_scaling(r: &RopeJson) -> Result<RopeScaling, ModelError> {
    let need = |value: Option<f64>, name: &str| {
        value.ok_or_else(|| config_error(&format!("rope_scaling.{name}"), "is missing"))
    };
    match r.rope_type.as_deref().unwrap_or("default") {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear {
            factor: need(r.factor, "factor")?,
        }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: need(r.factor, "factor")?,
            low_freq_factor: need(r.low_freq_factor, "low_freq_factor")?,
            high_freq_factor: need(r.high_freq_factor, "high_freq_factor")?,
            original_max_position_embeddings: need(
                r.original_max_position_embeddings,
                "original_max_position_embeddings",
            )?,
        }),
        other => Err(config_error(
            "rope_scaling.rope_type",
            format!("is {other:?}; supported: default, linear, llama3"),
        )),
    }
}
