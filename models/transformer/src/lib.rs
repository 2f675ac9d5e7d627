//! The decoder-only transformer that Llama and Qwen share, generic over burn's `Backend`.
//!
//! A model file (`momentkv-llama`, `momentkv-qwen`) turns a checkpoint's configuration into a
//! [`TransformerConfig`] and says how its GGUF tensors are laid out; everything else (RMSNorm,
//! rotary embeddings, grouped-query attention through the [`momentkv_cache::KvCache`] trait, the
//! SwiGLU MLP, weight loading, sampling and the generation loop) lives here once.
//!
//! Training goes through the same layers: [`Transformer::forward_causal`] is the cache-free entry
//! point (causal attention over the sequence itself, the op the full cache attends with), and
//! [`Transformer::forward_train`] adds the masked next-token loss of a padded [`TrainBatch`].
//! LoRA adapters ([`LoraConfig`]) ride on the dense layers as side paths, with the base weights
//! frozen, and are saved and loaded in Hugging Face PEFT's layout.

mod adapter;
mod attention;
mod config;
mod dense;
mod error;
mod family;
mod generate;
mod gguf_config;
mod hf_config;
mod layer;
mod mlp;
mod model;
mod norm;
mod rope;
mod sampling;
mod tensor_table;
#[cfg(test)]
mod testing;
mod train;
mod weights;

pub use adapter::{
    AdapterError, AdapterTarget, LoraConfig, LoraPair, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE,
    MAX_ADAPTER_RANK,
};
pub use config::{RopeScaling, TransformerConfig};
pub use error::ModelError;
pub use family::Family;
pub use generate::{answer, generate, replay, GenerateOptions, Generation};
pub use gguf_config::gguf_config;
pub use hf_config::{HfConfig, RopeJson, TokenIds};
pub use model::Transformer;
pub use rope::Rope;
pub use sampling::Sampler;
pub use train::{CausalLmOutput, TrainBatch, IGNORE_INDEX};
pub use weights::{gguf_tensors, NamedTensor};
