use crate::ModelError;

/// How rotary frequencies are rescaled for long contexts.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RopeScaling {
    #[default]
    None,
    /// Position interpolation: every inverse frequency divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.1's rule: low frequencies divided by `factor`, high ones kept, a smooth blend in
    /// between, with wavelength bounds `original_max_position_embeddings / {low,high}_freq_factor`.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
    /// One divisor per frequency, as llama.cpp stores Llama 3 scaling in a `rope_freqs` tensor.
    Factors(Vec<f64>),
}

/// Architecture-neutral hyper-parameters of a decoder-only transformer, with Hugging Face's names.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Biases on the q/k/v projections (Qwen2 always; Llama and Qwen3 with `attention_bias`).
    pub attention_bias: bool,
    /// A bias on the output projection (Llama and Qwen3 with `attention_bias`; never Qwen2).
    pub output_bias: bool,
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3).
    pub qk_norm: bool,
}

// The largest size each field may take. Far above every published checkpoint (Llama 3.1 405B: 126
// layers, hidden size 16384, intermediate size 53248, 128 heads of 128; vocabularies up to 256k),
// and small enough that what the model builds from them before reading a weight (its layers, the
// rotary frequencies, the list of tensors it expects) stays small.
const MAX_LAYERS: usize = 1024;
const MAX_HIDDEN: usize = 1 << 16;
const MAX_INTERMEDIATE: usize = 1 << 18;
const MAX_HEADS: usize = 1024;
const MAX_HEAD_DIM: usize = 1024;
const MAX_VOCAB: usize = 1 << 22;

fn config_error(field: &str, reason: String) -> ModelError {
    ModelError::Config {
        field: field.into(),
        reason,
    }
}

impl TransformerConfig {
    /// Checks every size against momentkv's limits, naming the field at fault: the configuration
    /// readers call it before anything is built from the sizes.
    pub(crate) fn check_sizes(&self) -> Result<(), ModelError> {
        for (field, value, limit) in [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_HIDDEN),
            (
                "intermediate_size",
                self.intermediate_size,
                MAX_INTERMEDIATE,
            ),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_HEADS),
            ("num_key_value_heads", self.num_key_value_heads, MAX_HEADS),
            ("head_dim", self.head_dim, MAX_HEAD_DIM),
            // Only compared with positions: nothing is allocated from it.
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                usize::MAX,
            ),
        ] {
            if value == 0 {
                return Err(config_error(field, "must be positive".into()));
            }
            if value > limit {
                return Err(config_error(
                    field,
                    format!("({value}) exceeds the limit of {limit}"),
                ));
            }
        }
        Ok(())
    }

    /// Checks every size against momentkv's limits (positive; at most 1024 layers, heads and
    /// head_dim, hidden size 65536, intermediate size 262144, vocabulary 4M) and the relations the
    /// model relies on, naming the field at fault.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.check_sizes()?;
        let bad = |field: &str, reason: String| Err(config_error(field, reason));
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return bad(
                "num_key_value_heads",
                format!(
                    "({}) must divide num_attention_heads ({})",
                    self.num_key_value_heads, self.num_attention_heads
                ),
            );
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(
                "head_dim",
                format!("({}) must be even for RoPE", self.head_dim),
            );
        }
        if self.rope_theta.is_nan() || self.rope_theta <= 0.0 {
            return bad(
                "rope_theta",
                format!("({}) must be positive", self.rope_theta),
            );
        }
        if self.rms_norm_eps.is_nan() || self.rms_norm_eps < 0.0 {
            return bad(
                "rms_norm_eps",
                format!("({}) must be non-negative", self.rms_norm_eps),
            );
        }
        if let RopeScaling::Factors(f) = &self.rope_scaling {
            if f.len() != self.head_dim / 2 {
                return bad(
                    "rope_freqs",
                    format!(
                        "has {} factors, expected head_dim / 2 = {}",
                        f.len(),
                        self.head_dim / 2
                    ),
                );
            }
        }
        Ok(())
    }
}
