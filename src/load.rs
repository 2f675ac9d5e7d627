//! Opening a checkpoint (a Hugging Face directory or a GGUF file) as a ready model, its family
//! detected from `config.json` or GGUF metadata, with a LoRA adapter applied if one is asked for
//! ([`load_with`]).

use std::fs::FileType;
use std::io;
use std::path::{Component, Path, PathBuf};
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
    /// The adapter applied at load, for reports; `None` for the checkpoint alone.
    pub adapter: Option<Adapter>,
}

/// A LoRA adapter in Hugging Face PEFT's layout, applied to a checkpoint at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    /// The adapter's directory: `adapter_config.json` and `adapter_model.safetensors`, as PEFT's
    /// `save_pretrained` or [`Transformer::save_adapter`] write them.
    pub dir: PathBuf,
    /// `true`: folded into the dense weights (`W ← W + s·B·A`), so inference costs what the base
    /// model's does. `false`: kept as a side path, each adapted projection adding `s·(x·Aᵀ)·Bᵀ`
    /// (two rank-`r` products more per projection), as in training.
    pub merged: bool,
}

/// What [`load_with`] does besides loading the checkpoint. The default loads the checkpoint
/// alone, as [`load`] does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// The LoRA adapter to apply, `None` for none.
    pub adapter: Option<Adapter>,
}

/// Loads a Hugging Face directory or a `.gguf` file onto `device`.
pub fn load<B: KernelBackend>(path: &Path, device: &B::Device) -> Result<Model<B>, Error> {
    load_with(path, &LoadOptions::default(), device)
}

/// Loads a Hugging Face directory or a `.gguf` file onto `device`, then applies what `options`
/// ask for: the adapter, checked against the model before anything of it is allocated
/// ([`Transformer::load_adapter`]), merged or kept as a side path. A bad adapter is a one-line
/// error naming its directory or the file in it at fault.
pub fn load_with<B: KernelBackend>(
    path: &Path,
    options: &LoadOptions,
    device: &B::Device,
) -> Result<Model<B>, Error> {
    let model = if checkpoint_is_dir(path)? {
        load_hf_dir(path, device)?
    } else {
        load_gguf(path, device)?
    };
    match &options.adapter {
        Some(adapter) => apply_adapter(model, adapter),
        None => Ok(model),
    }
}

/// `model` with `adapter` loaded onto its transformer, merged unless asked otherwise.
fn apply_adapter<B: KernelBackend>(model: Model<B>, adapter: &Adapter) -> Result<Model<B>, Error> {
    let transformer = model.transformer.load_adapter(&adapter.dir)?;
    let transformer = if adapter.merged {
        transformer.merge_adapter()
    } else {
        transformer
    };
    Ok(Model {
        transformer,
        adapter: Some(adapter.clone()),
        ..model
    })
}

/// Whether a checkpoint path is a directory (`true`) or a regular file (`false`), told from its
/// metadata alone: a missing path, a FIFO or a device such as `/dev/zero` is refused, saying what
/// it is, without being opened.
pub(crate) fn checkpoint_is_dir(path: &Path) -> Result<bool, Error> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::io(path, "no such file or directory"),
        _ => Error::io(path, e),
    })?;
    if meta.is_dir() || meta.is_file() {
        return Ok(meta.is_dir());
    }
    Err(Error::io(
        path,
        format!(
            "is not a regular file or directory but {}: pass a .gguf file or a Hugging Face \
             directory",
            special_kind(meta.file_type())
        ),
    ))
}

/// What a file that is neither regular nor a directory is, in words.
#[cfg_attr(not(unix), allow(unused_variables))]
fn special_kind(kind: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "a special file"
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

/// Token texts that end generation in any GGUF that has them, as llama.cpp treats them.
const END_OF_GENERATION: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
];

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
    let transformer =
        Transformer::from_tensors(&config, gguf_tensors(&file, &config, &family), device)?;
    let tokenizer = Tokenizer::from_gguf(&file)?;
    let meta = file.metadata();
    let mut stop_tokens = [
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
    ]
    .iter()
    .filter(|k| meta.get(k).is_some())
    .map(|k| meta.u64(k).map(|id| id as u32))
    .collect::<Result<Vec<_>, _>>()?;
    // The end-of-turn and end-of-text tokens llama.cpp also ends generation at, where the
    // vocabulary has them (Qwen2.5's GGUF names only <|im_end|>, yet its base turns end at
    // <|endoftext|>).
    for name in END_OF_GENERATION {
        if let Some(id) = tokenizer.token_id(name) {
            if !stop_tokens.contains(&id) {
                stop_tokens.push(id);
            }
        }
    }
    Ok(Model {
        transformer,
        tokenizer,
        family,
        stop_tokens,
        source: path.to_path_buf(),
        adapter: None,
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
    shards
        .into_iter()
        .map(|shard| shard_path(dir, &index_path, shard))
        .collect()
}

/// A shard the index names, which must be a plain file name in the model directory: an absolute
/// path or one through `..` or another directory would read weights from elsewhere.
fn shard_path(dir: &Path, index: &Path, shard: &str) -> Result<PathBuf, Error> {
    let mut parts = Path::new(shard).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(name)), None) => Ok(dir.join(name)),
        _ => Err(Error::io(
            index,
            format!("shard {shard:?} is not a file name in the model directory"),
        )),
    }
}

/// The stop ids of `generation_config.json`: `None` without the file or its `eos_token_id`, an
/// error naming the file when it is there but unreadable or not the JSON expected.
fn generation_stop_ids(dir: &Path) -> Result<Option<TokenIds>, Error> {
    let path = dir.join("generation_config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let generation: GenerationConfig =
        serde_json::from_str(&text).map_err(|e| Error::io(&path, e))?;
    Ok(generation.eos_token_id)
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
    let transformer = Transformer::from_safetensors(&config, &weight_files(dir)?, device)?;
    let tokenizer = Tokenizer::from_hf_dir(dir)?;

    let stop_tokens = generation_stop_ids(dir)?
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
        adapter: None,
    })
}
