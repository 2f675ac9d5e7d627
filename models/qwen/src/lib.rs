//! Qwen: Qwen2 and Qwen2.5 (`Qwen2ForCausalLM`, GGUF `qwen2`) and Qwen3 (`Qwen3ForCausalLM`,
//! GGUF `qwen3`).
//!
//! Both are the pre-norm decoder of `momentkv-transformer`. What is Qwen's own: Qwen2 always has
//! biases on the q/k/v projections (and none on the output projection); Qwen3 drops them and
//! normalises each query and key head with an RMSNorm over `head_dim` before RoPE, with a
//! `head_dim` that need not be `hidden_size / num_attention_heads`. llama.cpp writes both to GGUF
//! without permuting q/k rows.

use momentkv_transformer::Family;

pub const QWEN2: Family = Family {
    name: "qwen2",
    hf_architectures: &["Qwen2ForCausalLM"],
    hf_model_type: "qwen2",
    gguf_architecture: "qwen2",
    gguf_permuted_qk: false,
    attention_bias: Some(true),
    qk_norm: false,
};

pub const QWEN3: Family = Family {
    name: "qwen3",
    hf_architectures: &["Qwen3ForCausalLM"],
    hf_model_type: "qwen3",
    gguf_architecture: "qwen3",
    gguf_permuted_qk: false,
    attention_bias: None,
    qk_norm: true,
};

#[cfg(test)]
mod tests {
    use momentkv_transformer::{HfConfig, RopeScaling};

    use super::{QWEN2, QWEN3};

    /// Qwen2.5-7B-Instruct's published `config.json`.
    const QWEN25_7B: &str = r#"{
      "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
      "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 3584,
      "initializer_range": 0.02, "intermediate_size": 18944, "max_position_embeddings": 32768,
      "max_window_layers": 28, "model_type": "qwen2", "num_attention_heads": 28,
      "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
      "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": false,
      "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": true,
      "use_sliding_window": false, "vocab_size": 152064
    }"#;

    /// Qwen3-0.6B's published `config.json`: `head_dim` 128, not 1024 / 16.
    const QWEN3_06B: &str = r#"{
      "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
      "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
      "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
      "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
      "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
      "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
      "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
      "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false,
      "vocab_size": 151936
    }"#;

    #[test]
    fn reads_qwen25_config() {
        let hf: HfConfig = serde_json::from_str(QWEN25_7B).unwrap();
        assert!(hf.is(&QWEN2) && !hf.is(&QWEN3));
        let c = hf.to_transformer(&QWEN2).unwrap();
        c.validate().unwrap();
        assert_eq!(
            (c.num_attention_heads, c.num_key_value_heads, c.head_dim),
            (28, 4, 128)
        );
        assert_eq!(c.rope_theta, 1e6);
        assert_eq!(c.rope_scaling, RopeScaling::None);
        assert!(c.attention_bias && !c.output_bias && !c.qk_norm && !c.tie_word_embeddings);
    }

    #[test]
    fn reads_qwen3_config_with_explicit_head_dim() {
        let hf: HfConfig = serde_json::from_str(QWEN3_06B).unwrap();
        assert!(hf.is(&QWEN3) && !hf.is(&QWEN2));
        let c = hf.to_transformer(&QWEN3).unwrap();
        c.validate().unwrap();
        assert_eq!(
            (
                c.hidden_size,
                c.num_attention_heads,
                c.num_key_value_heads,
                c.head_dim
            ),
            (1024, 16, 8, 128)
        );
        assert!(c.qk_norm && !c.attention_bias && !c.output_bias && c.tie_word_embeddings);
    }

    #[test]
    fn qwen3_attention_bias_covers_all_four_projections() {
        let biased = QWEN3_06B.replace(r#""attention_bias": false"#, r#""attention_bias": true"#);
        let hf: HfConfig = serde_json::from_str(&biased).unwrap();
        let c = hf.to_transformer(&QWEN3).unwrap();
        assert!(c.attention_bias && c.output_bias);
    }

    #[test]
    fn sliding_window_attention_is_refused_by_name() {
        let sliding = QWEN25_7B.replace(
            r#""use_sliding_window": false"#,
            r#""use_sliding_window": true"#,
        );
        let hf: HfConfig = serde_json::from_str(&sliding).unwrap();
        let err = hf.to_transformer(&QWEN2).unwrap_err().to_string();
        assert!(err.contains("use_sliding_window"), "{err}");
    }

    #[test]
    fn mismatched_head_counts_name_the_field() {
        let bad = QWEN3_06B.replace(r#""num_key_value_heads": 8"#, r#""num_key_value_heads": 5"#);
        let hf: HfConfig = serde_json::from_str(&bad).unwrap();
        let err = hf
            .to_transformer(&QWEN3)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_key_value_heads"), "{err}");
    }
}
