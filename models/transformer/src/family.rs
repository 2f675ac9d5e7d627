/// What distinguishes one model family from another: how its checkpoints name it and which
/// architectural options it fixes. The model crates (`momentkv-llama`, `momentkv-qwen`) each
/// define one; the configuration readers and the weight loader take it from there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Family {
    /// Short name, as reported to users (`"llama"`).
    pub name: &'static str,
    /// `architectures` entries of a Hugging Face `config.json` (`"LlamaForCausalLM"`).
    pub hf_architectures: &'static [&'static str],
    /// `model_type` of a Hugging Face `config.json`.
    pub hf_model_type: &'static str,
    /// `general.architecture` of a GGUF file, also the prefix of its hyper-parameter keys.
    pub gguf_architecture: &'static str,
    /// Whether llama.cpp's converter permuted the GGUF `attn_q`/`attn_k` rows.
    pub gguf_permuted_qk: bool,
    /// Attention biases: `Some(b)` fixes q/k/v biases for the architecture, with none on the
    /// output projection (Qwen2 always has them); `None` reads `attention_bias` (default false),
    /// which puts biases on all four projections (Llama, Qwen3).
    pub attention_bias: Option<bool>,
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3).
    pub qk_norm: bool,
}
