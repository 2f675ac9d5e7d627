//! Saving and loading an adapter in Hugging Face PEFT's directory layout: `adapter_config.json`
//! ([`super::peft_config`]) and `adapter_model.safetensors`, whose tensors PEFT names after the
//! module path of a `*ForCausalLM` wrapped in a `PeftModel`:
//! `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight` (`A`, `[r, in]`) and
//! `...lora_B.weight` (`B`, `[out, r]`), for the `self_attn` and `mlp` projections.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use burn_store::{ApplyResult, ModuleSnapshot, SafetensorsStore};
use momentkv_kernels::KernelBackend;

use super::peft_config::{config_json, read_config, ADAPTER_CONFIG_FILE};
use super::{AdapterError, AdapterTarget, LoraConfig, LoraPair};
use crate::tensor_table::{compare_tables, safetensors_header, TableMismatch, TensorTable};
use crate::weights::CastToF32;
use crate::{ModelError, Transformer};

/// The name of the weights file of a PEFT adapter directory.
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// burn-store key remappings from PEFT's names to the model's parameter paths
/// (`layers.N.self_attn.q_proj.adapter.lora_a`), for loading.
const FROM_PEFT: [(&str, &str); 2] = [
    (
        r"^base_model\.model\.model\.(.+)\.lora_A\.weight$",
        "${1}.adapter.lora_a",
    ),
    (
        r"^base_model\.model\.model\.(.+)\.lora_B\.weight$",
        "${1}.adapter.lora_b",
    ),
];

/// The inverse of [`FROM_PEFT`], for saving.
const TO_PEFT: [(&str, &str); 2] = [
    (
        r"^(.+)\.adapter\.lora_a$",
        "base_model.model.model.${1}.lora_A.weight",
    ),
    (
        r"^(.+)\.adapter\.lora_b$",
        "base_model.model.model.${1}.lora_B.weight",
    ),
];

/// The model's parameter paths of adapter factors.
const FACTOR_PATHS: &str = r"\.adapter\.lora_[ab]$";

/// The dtypes adapter tensors may have; they are cast to f32 on loading.
const FLOAT_DTYPES: [&str; 4] = ["F32", "F16", "BF16", "F64"];

/// The name PEFT gives factor `factor` (`'A'` or `'B'`) of `target` in layer `layer`.
fn peft_name(layer: usize, target: AdapterTarget, factor: char) -> String {
    format!(
        "base_model.model.model.layers.{layer}.{}.lora_{factor}.weight",
        target.path()
    )
}

/// Every tensor an adapter of `config` on `model` has, by PEFT name, with its shape: `[r, in]`
/// for `A` and `[out, r]` for `B` of each targeted projection `[out, in]`.
fn expected_tensors<B: KernelBackend>(model: &Transformer<B>, config: &LoraConfig) -> TensorTable {
    let mut table = TensorTable::new();
    for (i, layer) in model.layers.iter().enumerate() {
        for &target in &config.targets {
            let [out, d_in] = layer.projection(target).shape();
            table.insert(peft_name(i, target, 'A'), vec![config.rank, d_in]);
            table.insert(peft_name(i, target, 'B'), vec![out, config.rank]);
        }
    }
    table
}

/// The adapter error of a tensor table that does not match the expected one.
fn mismatch_error(path: &Path, mismatch: TableMismatch) -> AdapterError {
    let path = path.to_path_buf();
    match mismatch {
        TableMismatch::Missing(names) => AdapterError::MissingTensors { path, names },
        TableMismatch::Shapes(shapes) => AdapterError::ShapeMismatch {
            path,
            shapes: shapes
                .into_iter()
                .map(|(name, found, want)| format!("{name} is {found:?}, the model needs {want:?}"))
                .collect(),
        },
        TableMismatch::Unused(names) => AdapterError::UnusedTensors { path, names },
    }
}

/// Checks what burn-store applied: no errors, every factor filled, no tensor left over.
fn check_applied(path: &Path, result: &ApplyResult) -> Result<(), AdapterError> {
    let path = path.to_path_buf();
    if !result.errors.is_empty() {
        let errors = result.errors.iter().map(|e| e.to_string()).collect();
        return Err(AdapterError::BadTensors { path, errors });
    }
    let names: Vec<String> = result
        .missing
        .iter()
        .map(|(name, _)| name)
        .filter(|name| is_factor_path(name))
        .cloned()
        .collect();
    if !names.is_empty() {
        return Err(AdapterError::MissingTensors { path, names });
    }
    if !result.unused.is_empty() {
        let names = result.unused.clone();
        return Err(AdapterError::UnusedTensors { path, names });
    }
    Ok(())
}

/// Whether a model parameter path is an adapter factor's (what [`FACTOR_PATHS`] matches).
fn is_factor_path(path: &str) -> bool {
    path.ends_with(".adapter.lora_a") || path.ends_with(".adapter.lora_b")
}

/// `final_path` with `.tmp` appended.
fn temporary(final_path: &Path) -> PathBuf {
    let mut name = OsString::from(final_path.as_os_str());
    name.push(".tmp");
    PathBuf::from(name)
}

/// Writes `final_path` through `write` into a temporary file next to it, then renames it into
/// place, so a failed write (a full disk) never leaves a half-written file under the final name;
/// the temporary file is removed on failure.
fn write_then_rename(
    final_path: &Path,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), AdapterError> {
    let tmp = temporary(final_path);
    let written =
        write(&tmp).and_then(|()| std::fs::rename(&tmp, final_path).map_err(|e| e.to_string()));
    written.map_err(|reason| {
        std::fs::remove_file(&tmp).ok();
        AdapterError::File {
            path: final_path.to_path_buf(),
            reason,
        }
    })
}

impl<B: KernelBackend> Transformer<B> {
    /// Attaches the adapter saved in PEFT's layout in `dir` (by this crate or by PEFT) as side
    /// paths; [`Transformer::merge_adapter`] then folds it into the weights.
    ///
    /// The configuration must be plain LoRA on the seven projections (anything else is refused
    /// naming the key), and the weights file must hold exactly the configuration's factors with
    /// the shapes this model's projections give them, all checked on the file's header before
    /// anything is allocated. Half-precision factors are cast to f32. As with
    /// [`Transformer::with_adapter`], the base weights are frozen and the factors trainable, so
    /// training can continue from a loaded adapter.
    pub fn load_adapter(self, dir: &Path) -> Result<Self, ModelError> {
        if !dir.is_dir() {
            let reason = "is not a directory (an adapter directory holds adapter_config.json and \
                          adapter_model.safetensors)";
            return Err(AdapterError::file(dir, reason).into());
        }
        let config = read_config(&dir.join(ADAPTER_CONFIG_FILE))?;
        let weights = dir.join(ADAPTER_WEIGHTS_FILE);
        let header = safetensors_header(&weights)?;
        if let Some((name, entry)) = header
            .iter()
            .find(|(_, entry)| !FLOAT_DTYPES.contains(&entry.dtype.as_str()))
        {
            return Err(AdapterError::Dtype {
                path: weights,
                name: name.clone(),
                dtype: entry.dtype.clone(),
            }
            .into());
        }
        let table: TensorTable = header
            .into_iter()
            .map(|(name, entry)| (name, entry.shape))
            .collect();
        compare_tables(&expected_tensors(&self, &config), &table, |_| false)
            .map_err(|mismatch| mismatch_error(&weights, mismatch))?;

        let mut model = self.attach(&config, |shape, device| {
            LoraPair::zeros(shape, &config, device)
        })?;
        let mut store = SafetensorsStore::from_file(weights.clone())
            .with_from_adapter(CastToF32)
            .allow_partial(true)
            .validate(false);
        for (from, to) in FROM_PEFT {
            store = store.with_key_remapping(from, to);
        }
        let result = model
            .load_from(&mut store)
            .map_err(|e| AdapterError::file(&weights, e))?;
        check_applied(&weights, &result)?;
        Ok(model)
    }

    /// Saves the attached adapter in PEFT's layout into `dir` (created if needed), so PEFT's
    /// `PeftModel.from_pretrained(base, dir)` loads it and [`Transformer::load_adapter`] reads it
    /// back exactly; `base_model` becomes `base_model_name_or_path`. Each file is written under a
    /// temporary name and renamed into place, so a failed save leaves no half-written file.
    pub fn save_adapter(&self, dir: &Path, base_model: Option<&str>) -> Result<(), ModelError> {
        let config = self
            .adapter_config
            .as_ref()
            .ok_or(AdapterError::NoAdapter)?;
        std::fs::create_dir_all(dir).map_err(|e| AdapterError::file(dir, e))?;
        write_then_rename(&dir.join(ADAPTER_WEIGHTS_FILE), |tmp| {
            let mut store = SafetensorsStore::from_file(tmp.to_path_buf())
                .with_regex(FACTOR_PATHS)
                .clear_metadata()
                .metadata("format", "pt")
                .overwrite(true);
            for (from, to) in TO_PEFT {
                store = store.with_key_remapping(from, to);
            }
            self.save_into(&mut store).map_err(|e| e.to_string())
        })?;
        write_then_rename(&dir.join(ADAPTER_CONFIG_FILE), |tmp| {
            std::fs::write(tmp, config_json(config, base_model)).map_err(|e| e.to_string())
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;

    use super::*;
    use crate::testing::{configs, max_diff, model, Fill};

    /// An empty scratch directory for `test`, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("momentkv-adapter-{test}-{}", std::process::id()));
            std::fs::remove_dir_all(&dir).ok();
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    /// Saving writes PEFT's names and shapes; loading into a fresh model restores the
    /// configuration and every factor exactly.
    #[test]
    fn saved_adapters_load_back_exactly() {
        for (family, config) in configs() {
            let dir = Scratch::new(&format!("round-trip-{family}"));
            let lora = LoraConfig::new(3, 6.0).with_dropout(0.1).with_targets(vec![
                AdapterTarget::QProj,
                AdapterTarget::VProj,
                AdapterTarget::UpProj,
            ]);
            let adapted = model(&config)
                .with_adapter(&lora)
                .unwrap()
                .map(&mut Fill(3));
            adapted.save_adapter(&dir.0, Some("tiny")).unwrap();
            let header = safetensors_header(&dir.0.join(ADAPTER_WEIGHTS_FILE)).unwrap();
            let table: TensorTable = header
                .into_iter()
                .map(|(name, entry)| (name, entry.shape))
                .collect();
            assert_eq!(table, expected_tensors(&adapted, &lora), "{family}");

            let loaded = model(&config).load_adapter(&dir.0).unwrap();
            assert_eq!(loaded.adapter(), Some(&lora), "{family}");
            for (before, after) in adapted.layers.iter().zip(&loaded.layers) {
                for target in AdapterTarget::ALL {
                    let saved = &before.projection(target).adapter;
                    let read = &after.projection(target).adapter;
                    assert_eq!(saved.is_some(), read.is_some(), "{family} {target}");
                    if let (Some(saved), Some(read)) = (saved, read) {
                        let a = max_diff(saved.lora_a.val(), read.lora_a.val());
                        let b = max_diff(saved.lora_b.val(), read.lora_b.val());
                        assert_eq!((a, b), (0.0, 0.0), "{family} {target}");
                        assert!(read.lora_a.is_require_grad() && read.lora_b.is_require_grad());
                    }
                }
            }
        }
    }

    /// An adapter made for other projection shapes is refused on the file's header, naming the
    /// tensors; saving without an adapter is refused too.
    #[test]
    fn an_adapter_for_other_shapes_is_refused() {
        let [(_, llama), _, (_, qwen3)] = configs();
        let dir = Scratch::new("shapes");
        let err = model(&llama).save_adapter(&dir.0, None).unwrap_err();
        assert!(err.to_string().contains("no adapter to save"), "{err}");
        model(&llama)
            .with_adapter(&LoraConfig::new(2, 4.0))
            .unwrap()
            .save_adapter(&dir.0, None)
            .unwrap();
        let err = model(&qwen3).load_adapter(&dir.0).unwrap_err().to_string();
        assert!(
            err.contains(
                "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight is [8, 2], the \
                 model needs [12, 2]"
            ) && err.ends_with("more"),
            "{err}"
        );
    }
}
