//! Opening a checkpoint (a Hugging Face directory or a GGUF file) as a ready model, its family
//! detected from `config.json` or GGUF metadata.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use momentkv_gguf::GgufFile;
use momentkv_kernels::KernelBackend;
use momentkv_tokenizer::Tokenizer;
use momentkv_transformer::{gguf_config, gguf_tensors, Family, HfConfig, TokenIds, Transformer};
use serde::Deserialize;

use crate::Error;

/// Every model family momentkv runs.
pub const FAMILIES: &[Family] = &[
    momentkv_llama::LLAMA,
    momentkv_qwen::QWEN2,
    momentkv_qwen::QWEN3,
];

/// A loaded model: weights on the device, tokenizer, and the ids that end a generation.
pub struct Model<B: KernelBackend> {
    pub transformer: Transformer<B>,
    pub tokenizer: Tokenizer,
    pub family: Family,
    pub stop_tokens: Vec<u32>,
    /// What was loaded, for reports.
    pub source: PathBuf,
}

/// Loads a Hugging Face directory or a `.gguf` file onto `device`.
pub fn load<B: KernelBackend>(path: &Path, device: &B::Device) -> Result<Model<B>, Error> {
    if path.is_dir() {
        load_hf_dir(path, device)
    } else if path.is_file() {
        load_gguf(path, device)
    } else {
        Err(Error::io(path, "no such file or directory"))
    }
}

fn unsupported_architecture(what: &str, found: &str) -> Error {
    let supported: Vec<String> = FAMILIES
        .iter()
        .map(|f| {
            format!(
                "{} / GGUF {}",
                f.hf_architectures.join(", "),
                f.gguf_architecture
            )
        })
        .collect();
    Error::Unsupported(format!(
        "{what} is {found}, which momentkv does not run (supported: {})",
        supported.join("; ")
    ))
}

fn load_gguf<B: KernelBackend>(path: &Path, device: &B::Device) -> Result<Model<B>, Error> {
    let file = Arc::new(GgufFile::open(path)?);
    let arch = file.metadata().str("general.architecture")?;
    let family = *FAMILIES
        .iter()
        .find(|f| f.gguf_architecture == arch)
        .ok_or_else(|| {
            unsupported_architecture(&format!("{}: general.architecture", path.display()), arch)
        })?;
    let config = gguf_config(&file, &family)?;
    let mut transformer = Transformer::new(&config, device)?;
    transformer.load_tensors(gguf_tensors(&file, &config, &family))?;
    let tokenizer = Tokenizer::from_gguf(&file)?;
    let meta = file.metadata();
    let stop_tokens = [
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
    ]
    .iter()
    .filter(|k| meta.get(k).is_some())
    .map(|k| meta.u64(k).map(|id| id as u32))
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Model {
        transformer,
        tokenizer,
        family,
        stop_tokens,
        source: path.to_path_buf(),
    })
}

/// `model.safetensors.index.json`: which shard holds each tensor.
#[derive(Deserialize)]
struct ShardIndex {
    weight_map: std::collections::BTreeMap<String, String>,
}

/// `generation_config.json`: only the stop ids are read.
#[derive(Deserialize)]
struct GenerationConfig {
    eos_token_id: Option<TokenIds>,
}

fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index_path = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index_path).map_err(|_| {
        Error::io(
            dir,
            "has neither model.safetensors nor model.safetensors.index.json",
        )
    })?;
    let index: ShardIndex = serde_json::from_str(&text).map_err(|e| Error::io(&index_path, e))?;
    let mut shards: Vec<&String> = index.weight_map.values().collect();
    shards.sort();
    shards.dedup();
    Ok(shards.into_iter().map(|s| dir.join(s)).collect())
}

fn load_hf_dir<B: KernelBackend>(dir: &Path, device: &B::Device) -> Result<Model<B>, Error> {
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(Error::io(
            dir,
            "is not a model directory: config.json is missing",
        ));
    }
    let hf = HfConfig::read(&config_path)?;
    let family = *FAMILIES.iter().find(|f| hf.is(f)).ok_or_else(|| {
        let found = if hf.architectures.is_empty() {
            format!("model_type {:?}", hf.model_type.clone().unwrap_or_default())
        } else {
            hf.architectures.join(", ")
        };
        unsupported_architecture(&format!("{}: architectures", config_path.display()), &found)
    })?;
    let config = hf.to_transformer(&family)?;
    let mut transformer = Transformer::new(&config, device)?;
    transformer.load_safetensors(&weight_files(dir)?)?;
    let tokenizer = Tokenizer::from_hf_dir(dir)?;

    let generation: Option<GenerationConfig> =
        std::fs::read_to_string(dir.join("generation_config.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
    let stop_tokens = generation
        .and_then(|g| g.eos_token_id)
        .or(hf.eos_token_id)
        .map(|ids| ids.to_vec())
        .or_else(|| {
            tokenizer
                .eos_token()
                .and_then(|t| tokenizer.token_id(t))
                .map(|id| vec![id])
        })
        .unwrap_or_default();
    Ok(Model {
        transformer,
        tokenizer,
        family,
        stop_tokens,
        source: dir.to_path_buf(),
    })
}
