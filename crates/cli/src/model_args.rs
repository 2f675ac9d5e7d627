//! The options every model-running command takes: `--model`, `--backend`, `--adapter`,
//! `--adapter-unmerged`.

use std::path::PathBuf;

use momentkv::backend::BackendKind;
use momentkv::kernels::KernelBackend;
use momentkv::load::{self, Adapter, LoadOptions};
use momentkv::{hub, Error, Model};

/// Options every model-running command takes.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// A known model name (see `momentkv fetch --list`), a Hugging Face directory or a .gguf file.
    #[arg(long, default_value = hub::SMOLLM2_135M.name)]
    pub model: String,
    /// Backend to run on, among those compiled in (default: the first of flex, ndarray, wgpu, cuda).
    #[arg(long)]
    pub backend: Option<String>,
    /// A LoRA adapter to apply, in Hugging Face PEFT's layout (a directory holding
    /// adapter_config.json and adapter_model.safetensors); merged into the weights at load.
    #[arg(long, value_name = "DIR")]
    pub adapter: Option<PathBuf>,
    /// Keep the --adapter as a side path on each projection instead of merging it (same results
    /// up to rounding, slower).
    #[arg(long, requires = "adapter")]
    pub adapter_unmerged: bool,
}

impl ModelArgs {
    pub fn backend(&self) -> Result<BackendKind, Error> {
        match &self.backend {
            Some(name) => name.parse(),
            None => Ok(BackendKind::default_compiled()),
        }
    }

    /// What `--adapter` and `--adapter-unmerged` ask of the load.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            adapter: self.adapter.clone().map(|dir| Adapter {
                dir,
                merged: !self.adapter_unmerged,
            }),
        }
    }

    /// The model `--model` names (a known one fetched on first use) on `device`, with the
    /// `--adapter` applied as asked.
    pub fn load<B: KernelBackend>(&self, device: &B::Device) -> Result<Model<B>, Error> {
        load::load_with(&hub::resolve(&self.model)?, &self.load_options(), device)
    }
}

/// The adapter a model was loaded with, as `--json` reports record it: `{"dir": DIR, "merged":
/// BOOL}`, or null without one.
pub fn adapter_json(adapter: Option<&Adapter>) -> serde_json::Value {
    match adapter {
        Some(adapter) => serde_json::json!({
            "dir": adapter.dir.display().to_string(),
            "merged": adapter.merged,
        }),
        None => serde_json::Value::Null,
    }
}
