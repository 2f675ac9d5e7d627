//! momentkv: long-context LLM inference in burn with a KV cache that fits a fixed memory budget.
//!
//! This umbrella crate ties the layers together:
//! - [`hub`] resolves model names (`smollm2-135m`) to files, fetching known models;
//! - [`load`] opens a Hugging Face directory or a GGUF file as a ready [`Model`], with a LoRA
//!   adapter in PEFT's layout applied if asked ([`load::load_with`]);
//! - [`checksum`] names a checkpoint's exact bytes (SHA-256), for results that record it;
//! - [`backend`] picks, at run time, one of the burn backends compiled in by cargo features
//!   (`ndarray`, `flex`, `wgpu`, `cuda`).
//!
//! The layers below are re-exported: [`gguf`], [`tokenizer`], [`cache`], [`transformer`] and
//! the model families [`llama`] and [`qwen`].
//!
//! ```no_run
//! use momentkv::{backend::BackendKind, cache::FullCache, hub, load, transformer};
//!
//! struct Greet;
//! impl momentkv::backend::WithBackend for Greet {
//!     type Output = Result<String, momentkv::Error>;
//!     fn run<B: momentkv::kernels::KernelBackend>(self, device: B::Device) -> Self::Output {
//!         let path = hub::resolve("smollm2-135m")?;
//!         let model = load::load::<B>(&path, &device)?;
//!         let prompt = model.tokenizer.encode("The capital of France is", true)?;
//!         let mut cache = FullCache::new(model.transformer.config().num_hidden_layers);
//!         let options = model.options(12);
//!         let mut sampler = transformer::Sampler::greedy();
//!         let out = transformer::generate(&model.transformer, &mut cache, &prompt, &options, &mut sampler, |_| {})?;
//!         Ok(model.tokenizer.decode(&out.tokens)?)
//!     }
//! }
//! let text = momentkv::backend::dispatch(BackendKind::default_compiled(), Greet)??;
//! # Ok::<(), momentkv::Error>(())
//! ```

pub mod backend;
pub mod checksum;
mod error;
pub mod hub;
pub mod load;
mod repeat;

pub use error::Error;
pub use load::Model;
pub use momentkv_cache as cache;
pub use momentkv_gguf as gguf;
pub use momentkv_kernels as kernels;
pub use momentkv_llama as llama;
pub use momentkv_qwen as qwen;
pub use momentkv_tokenizer as tokenizer;
pub use momentkv_transformer as transformer;
pub use repeat::repeat_prompts;
