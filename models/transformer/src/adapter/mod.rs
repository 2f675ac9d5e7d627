//! LoRA adapters: low-rank updates of the attention and MLP projections, trained with the base
//! weights frozen, and saved and loaded in Hugging Face PEFT's layout.
//!
//! An adapter of rank `r` gives each targeted projection `W` `[out, in]` (`q_proj`, `k_proj`,
//! `v_proj`, `o_proj`, `gate_proj`, `up_proj`, `down_proj`, see [`AdapterTarget`]) factors
//! `A` `[r, in]` and `B` `[out, r]`, and the layer computes
//!
//! ```text
//! y = x·Wᵀ + b + s · dropout(x)·Aᵀ·Bᵀ        s = alpha / r   (alpha / √r with rslora)
//! ```
//!
//! as PEFT's `lora.Linear` does. The model stays one type: [`crate::Transformer`]'s dense layers
//! hold an optional [`LoraPair`], attached fresh by [`crate::Transformer::with_adapter`] (PEFT's
//! initialisation, the base weights frozen) or from a PEFT directory by
//! [`crate::Transformer::load_adapter`], used as a side path as they are, or folded into the
//! weights (`W ← W + s·B·A`) by [`crate::Transformer::merge_adapter`].

mod attach;
mod config;
mod error;
mod lora;
mod peft;
mod peft_config;

pub use config::{AdapterTarget, LoraConfig, MAX_ADAPTER_RANK};
pub use error::AdapterError;
pub use lora::LoraPair;
pub use peft::ADAPTER_WEIGHTS_FILE;
pub use peft_config::ADAPTER_CONFIG_FILE;
