//! Llama: Llama 2 and 3.x, SmolLM and every checkpoint with `LlamaForCausalLM` or GGUF
//! architecture `llama`.
//!
//! Llama is the plain pre-norm decoder of `momentkv-transformer`: RMSNorm, rotary embeddings
//! (with Llama 3's frequency scaling), grouped-query attention without biases, a SwiGLU MLP, and
//! an output head tied to the embeddings or not. What is Llama's own is how its checkpoints are
//! named and that llama.cpp permuted its q/k rows when writing GGUF.

use momentkv_transformer::Family;

pub const LLAMA: Family = Family {
    name: "llama",
    hf_architectures: &["LlamaForCausalLM"],
    hf_model_type: "llama",
    gguf_architecture: "llama",
    gguf_permuted_qk: true,
    attention_bias: None,
    qk_norm: false,
};

#[cfg(test)]
mod tests {
    use momentkv_transformer::{HfConfig, RopeScaling};

    use super::LLAMA;

    /// Llama-3.1-8B-Instruct's published `config.json`, in the transformers-4 form.
    const LLAMA_31_8B: &str = r#"{
      "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
      "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
      "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
      "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
      "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
      "pretraining_tp": 1, "rms_norm_eps": 1e-05,
      "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192, "rope_type": "llama3"},
      "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
      "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 128256
    }"#;

    #[test]
    fn reads_llama_31_config() {
        let hf: HfConfig = serde_json::from_str(LLAMA_31_8B).unwrap();
        assert!(hf.is(&LLAMA));
        let c = hf.to_transformer(&LLAMA).unwrap();
        c.validate().unwrap();
        assert_eq!(
            (c.num_attention_heads, c.num_key_value_heads, c.head_dim),
            (32, 8, 128)
        );
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(
            c.rope_scaling,
            RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192.0
            }
        );
        assert!(!c.tie_word_embeddings && !c.attention_bias && !c.qk_norm);
        assert_eq!(
            hf.eos_token_id.unwrap().to_vec(),
            vec![128001, 128008, 128009]
        );
    }

    #[test]
    fn unsupported_rope_type_and_activation_name_the_field() {
        let yarn = LLAMA_31_8B.replace("\"llama3\"", "\"yarn\"");
        let err = serde_json::from_str::<HfConfig>(&yarn)
            .unwrap()
            .to_transformer(&LLAMA)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rope_scaling.rope_type") && err.contains("yarn"),
            "{err}"
        );
        let gelu = LLAMA_31_8B.replace("\"silu\"", "\"gelu\"");
        let err = serde_json::from_str::<HfConfig>(&gelu)
            .unwrap()
            .to_transformer(&LLAMA)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hidden_act"), "{err}");
    }

    #[test]
    fn mismatched_head_counts_name_the_field() {
        let bad = LLAMA_31_8B.replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 7");
        let c = serde_json::from_str::<HfConfig>(&bad)
            .unwrap()
            .to_transformer(&LLAMA)
            .unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("num_key_value_heads"), "{err}");
    }
}
