//! Hyper-parameters from GGUF metadata (`<arch>.block_count`, `<arch>.attention.head_count`, ...),
//! named the way llama.cpp's converter writes them.

use momentkv_gguf::{GgufError, GgufFile};

use crate::{Family, ModelError, RopeScaling, TransformerConfig};

/// The GGUF key (after `<arch>.`) behind each configuration field, so that errors name what the
/// file says.
const GGUF_KEYS: &[(&str, &str)] = &[
    ("vocab_size", "vocab_size"),
    ("hidden_size", "embedding_length"),
    ("intermediate_size", "feed_forward_length"),
    ("num_hidden_layers", "block_count"),
    ("num_attention_heads", "attention.head_count"),
    ("num_key_value_heads", "attention.head_count_kv"),
    ("head_dim", "attention.key_length"),
    ("max_position_embeddings", "context_length"),
    ("rms_norm_eps", "attention.layer_norm_rms_epsilon"),
    ("rope_theta", "rope.freq_base"),
];

/// A configuration error with the field renamed to its GGUF key (`llama.block_count`).
fn gguf_named(error: ModelError, arch: &str) -> ModelError {
    match error {
        ModelError::Config { field, reason } => {
            let key = GGUF_KEYS.iter().find(|(hf, _)| *hf == field);
            let field = key.map_or(field, |(_, key)| format!("{arch}.{key}"));
            ModelError::Config { field, reason }
        }
        other => other,
    }
}

/// The architecture-neutral configuration of a GGUF file of `family`, validated
/// ([`TransformerConfig::validate`]: sizes within momentkv's limits, heads that divide), errors
/// naming the GGUF key.
///
/// The output head is tied when the file has no `output.weight` (llama.cpp then reuses the
/// embeddings); attention biases are read from the tensor table; Llama 3 rope scaling comes from a
/// `rope_freqs` tensor when there is one.
pub fn gguf_config(file: &GgufFile, family: &Family) -> Result<TransformerConfig, ModelError> {
    let meta = file.metadata();
    let arch = family.gguf_architecture;
    let key = |k: &str| format!("{arch}.{k}");
    let size = |k: &str| -> Result<usize, GgufError> { meta.u64(&key(k)).map(|v| v as usize) };
    let optional = |k: &str| meta.get(&key(k)).is_some();

    let heads = size("attention.head_count")?;
    let hidden = size("embedding_length")?;
    let kv_heads = if optional("attention.head_count_kv") {
        size("attention.head_count_kv")?
    } else {
        heads
    };
    let head_dim = if optional("attention.key_length") {
        size("attention.key_length")?
    } else {
        hidden / heads.max(1)
    };
    let vocab_size = if optional("vocab_size") {
        size("vocab_size")?
    } else {
        meta.array("tokenizer.ggml.tokens")?.len()
    };
    let rope_theta = if optional("rope.freq_base") {
        meta.f64(&key("rope.freq_base"))?
    } else {
        10000.0
    };
    let has = |name: &str| file.tensor(name).is_ok();
    let rope_scaling = if has("rope_freqs.weight") {
        let (_, factors) = file.dequantize("rope_freqs.weight")?;
        RopeScaling::Factors(factors.into_iter().map(f64::from).collect())
    } else if optional("rope.scaling.type") {
        match meta.str(&key("rope.scaling.type"))? {
            "none" => RopeScaling::None,
            "linear" => RopeScaling::Linear {
                factor: meta.f64(&key("rope.scaling.factor"))?,
            },
            other => {
                return Err(ModelError::Config {
                    field: key("rope.scaling.type"),
                    reason: format!("is {other:?}; supported: none, linear (and rope_freqs)"),
                })
            }
        }
    } else {
        RopeScaling::None
    };
    let config = TransformerConfig {
        vocab_size,
        hidden_size: hidden,
        intermediate_size: size("feed_forward_length")?,
        num_hidden_layers: size("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim,
        rms_norm_eps: meta.f64(&key("attention.layer_norm_rms_epsilon"))?,
        rope_theta,
        rope_scaling,
        max_position_embeddings: size("context_length")?,
        tie_word_embeddings: !has("output.weight"),
        attention_bias: family
            .attention_bias
            .unwrap_or_else(|| has("blk.0.attn_q.bias")),
        output_bias: has("blk.0.attn_output.bias"),
        qk_norm: family.qk_norm,
    };
    config.validate().map_err(|e| gguf_named(e, arch))?;
    Ok(config)
}
