//! GGUF files as llama.cpp writes them: header, metadata, tensor table, and dequantization to f32.
//!
//! ```no_run
//! let file = momentkv_gguf::GgufFile::open("model.gguf")?;
//! let arch = file.metadata().str("general.architecture")?;
//! let (shape, values) = file.dequantize("token_embd.weight")?;
//! # Ok::<(), momentkv_gguf::GgufError>(())
//! ```
//!
//! Shapes are returned row-major with the slowest axis first, the reverse of GGUF's `ne[]` order, so
//! a weight stored by llama.cpp as `ne = [in, out]` comes back as `[out, in]`: the Hugging Face layout.

mod dequant;
mod error;
mod file;
mod metadata;
mod types;

pub use dequant::dequantize;
pub use error::GgufError;
pub use file::{GgufFile, TensorInfo};
pub use metadata::{Metadata, Value};
pub use types::GgmlType;
