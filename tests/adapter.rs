//! LoRA adapters against Hugging Face PEFT on tiny checkpoints (tests/fixtures/adapters, made by
//! make_adapter_fixture.py with PEFT 0.21.2): PEFT's adapter loads here and gives PEFT's logits,
//! as a side path and merged; an adapter saved here has PEFT's tensor names, shapes and
//! configuration fields and loads back exactly; bad adapters get one-line errors.

use std::path::{Path, PathBuf};

use momentkv::kernels::KernelBackend;
use momentkv::load::load;
use momentkv::transformer::Transformer;

use crate::common::{assert_close, fixture, input_ids, logits, reference};

/// The fixture checkpoints that have an adapter made by PEFT.
const CHECKPOINTS: [&str; 2] = ["llama-tied", "qwen2"];

/// The PEFT adapter directory of `checkpoint`.
fn adapter_dir(checkpoint: &str) -> PathBuf {
    fixture(&format!("adapters/{checkpoint}-lora"))
}

/// The reference ids and logits PEFT recorded for `checkpoint`'s adapter.
fn references(checkpoint: &str) -> PathBuf {
    adapter_dir(checkpoint).join("reference.safetensors")
}

/// The fixture checkpoint `checkpoint`, without an adapter.
fn base<B: KernelBackend>(checkpoint: &str, device: &B::Device) -> Transformer<B> {
    load::<B>(&fixture(checkpoint), device).unwrap().transformer
}

/// `checkpoint` with the adapter in `dir` attached as side paths.
fn adapted<B: KernelBackend>(checkpoint: &str, dir: &Path, device: &B::Device) -> Transformer<B> {
    base::<B>(checkpoint, device).load_adapter(dir).unwrap()
}

/// PEFT's adapter gives PEFT's logits as a side path and merged into the weights.
fn peft_adapter_gives_peft_logits<B: KernelBackend>(device: B::Device, tol: f32) {
    for checkpoint in CHECKPOINTS {
        let refs = references(checkpoint);
        let tokens = input_ids(&refs);
        let model = adapted::<B>(checkpoint, &adapter_dir(checkpoint), &device);
        let (_, want) = reference(&refs, "logits");
        let what = format!("{checkpoint} with PEFT's adapter as a side path");
        assert_close(logits(&model, &tokens), &want, tol, &what);
        let (_, want) = reference(&refs, "merged_logits");
        let what = format!("{checkpoint} with PEFT's adapter merged");
        assert_close(logits(&model.merge_adapter(), &tokens), &want, tol, &what);
    }
}

/// The side path and the merged weights give the same logits. (PEFT's own two differ by 1.6e-5
/// on these checkpoints, whose logits reach tens: f32 rounding of two summation orders.)
fn side_path_equals_merged<B: KernelBackend>(device: B::Device, tol: f32) {
    for checkpoint in CHECKPOINTS {
        let tokens = input_ids(&references(checkpoint));
        let model = adapted::<B>(checkpoint, &adapter_dir(checkpoint), &device);
        let side = logits(&model, &tokens).into_data();
        let merged = logits(&model.merge_adapter(), &tokens);
        assert_close(merged, &side, tol, &format!("{checkpoint} merged"));
    }
}

backend_tests!(peft_adapter_gives_peft_logits, side_path_equals_merged);

/// Saving, loading and refusing adapter files do not depend on the backend: one CPU backend.
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod files {
    use std::collections::BTreeMap;

    use momentkv::load::{load_with, Adapter, LoadOptions};
    use momentkv::transformer::{ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};
    use serde_json::{json, Value};

    use super::*;
    use crate::common::Scratch;

    #[cfg(feature = "flex")]
    type B = burn::backend::Flex;
    #[cfg(not(feature = "flex"))]
    type B = burn::backend::NdArray;

    /// A safetensors file's metadata and tensors: dtype, shape and bytes by name.
    type Tensors = (
        Option<Vec<(String, String)>>,
        BTreeMap<String, (String, Vec<usize>, Vec<u8>)>,
    );

    fn tensors(path: &Path) -> Tensors {
        let bytes = std::fs::read(path).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let metadata = header.metadata().as_ref().map(|m| {
            let mut pairs: Vec<(String, String)> =
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            pairs.sort();
            pairs
        });
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let dtype = format!("{:?}", view.dtype());
                (name, (dtype, view.shape().to_vec(), view.data().to_vec()))
            })
            .collect();
        (metadata, tensors)
    }

    /// `adapter_config.json` of `dir`, `target_modules` sorted (PEFT writes them from a set).
    fn config(dir: &Path) -> Value {
        let text = std::fs::read_to_string(dir.join(ADAPTER_CONFIG_FILE)).unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        let targets = config["target_modules"].as_array_mut().unwrap();
        targets.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        config
    }

    /// PEFT's adapter saved from here is PEFT's files again: the same tensors (names, shapes,
    /// bytes, metadata) and the same configuration, every field; loaded back, it gives the same
    /// logits, bit for bit.
    #[test]
    fn saved_adapters_are_pefts_files_and_load_back_exactly() {
        let device = Default::default();
        for checkpoint in CHECKPOINTS {
            let peft = adapter_dir(checkpoint);
            let model = adapted::<B>(checkpoint, &peft, &device);
            let dir = Scratch::new(&format!("adapter-{checkpoint}"));
            let name = format!("tests/fixtures/{checkpoint}");
            model.save_adapter(&dir.0, Some(&name)).unwrap();
            assert_eq!(
                tensors(&dir.0.join(ADAPTER_WEIGHTS_FILE)),
                tensors(&peft.join(ADAPTER_WEIGHTS_FILE)),
                "{checkpoint}"
            );
            assert_eq!(config(&dir.0), config(&peft), "{checkpoint}");

            let tokens = input_ids(&references(checkpoint));
            let reloaded = adapted::<B>(checkpoint, &dir.0, &device);
            let (want, got) = (logits(&model, &tokens), logits(&reloaded, &tokens));
            let (want, got) = (want.into_data(), got.into_data());
            assert!(
                want.as_slice::<f32>().unwrap() == got.as_slice::<f32>().unwrap(),
                "{checkpoint}: reloaded logits differ"
            );
        }
    }

    /// `load_with` applies the adapter at load, merged or kept as a side path as asked, PEFT's
    /// logits either way, and records it on the model; a missing directory is one line naming it.
    #[test]
    fn load_with_applies_the_adapter_as_asked() {
        let device = Default::default();
        let refs = references("llama-tied");
        let tokens = input_ids(&refs);
        for merged in [true, false] {
            let adapter = Adapter {
                dir: adapter_dir("llama-tied"),
                merged,
            };
            let options = LoadOptions {
                adapter: Some(adapter.clone()),
            };
            let model = load_with::<B>(&fixture("llama-tied"), &options, &device).unwrap();
            assert_eq!(model.adapter, Some(adapter));
            assert_eq!(model.transformer.adapter().is_none(), merged);
            let name = if merged { "merged_logits" } else { "logits" };
            let (_, want) = reference(&refs, name);
            assert_close(logits(&model.transformer, &tokens), &want, 1e-4, name);
        }
        let options = LoadOptions {
            adapter: Some(Adapter {
                dir: fixture("adapters/no-such-lora"),
                merged: true,
            }),
        };
        let Err(err) = load_with::<B>(&fixture("llama-tied"), &options, &device) else {
            panic!("a missing adapter loaded");
        };
        let err = err.to_string();
        assert!(
            err.contains("no-such-lora: is not a directory") && !err.contains('\n'),
            "{err}"
        );
    }

    /// The error of loading the adapter in `dir` onto `checkpoint`, checked to be one line.
    fn load_error(checkpoint: &str, dir: &Path) -> String {
        match base::<B>(checkpoint, &Default::default()).load_adapter(dir) {
            Ok(_) => panic!("{} loaded onto {checkpoint}", dir.display()),
            Err(e) => {
                let err = e.to_string();
                assert!(!err.contains('\n'), "not one line: {err}");
                err
            }
        }
    }

    /// A scratch copy of llama-tied's PEFT adapter.
    fn peft_copy() -> Scratch {
        Scratch::copy_of("adapters/llama-tied-lora")
    }

    #[test]
    fn a_missing_adapter_is_named() {
        let err = load_error("llama-tied", &fixture("adapters/no-such-lora"));
        assert!(
            err.contains("no-such-lora") && err.contains("is not a directory"),
            "{err}"
        );
        for file in [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE] {
            let dir = peft_copy();
            std::fs::remove_file(dir.0.join(file)).unwrap();
            let err = load_error("llama-tied", &dir.0);
            assert!(err.contains(file), "{err}");
        }
    }

    #[test]
    fn an_adapter_for_other_shapes_is_refused_naming_the_tensors() {
        // Qwen3's fixture has head_dim 24 where llama-tied's has 16.
        let err = load_error("qwen3", &adapter_dir("llama-tied"));
        assert!(
            err.contains(
                "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight is [32, 4], the \
                 model needs [48, 4]"
            ),
            "{err}"
        );
        // A rank that is not the tensors'.
        let dir = peft_copy();
        dir.edit_json(ADAPTER_CONFIG_FILE, |c| c["r"] = json!(2));
        let err = load_error("llama-tied", &dir.0);
        assert!(
            err.contains("lora_A.weight is [4, 128], the model needs [2, 128]"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_adapter_settings_are_refused_naming_the_key() {
        for (key, value, want) in [
            ("use_dora", json!(true), "use_dora = true is not supported"),
            (
                "bias",
                json!("lora_only"),
                "bias = \"lora_only\" is not supported",
            ),
            ("rank_pattern", json!({"q_proj": 8}), "rank_pattern"),
            ("layers_to_transform", json!([1]), "layers_to_transform"),
            ("modules_to_save", json!(["lm_head"]), "modules_to_save"),
            ("peft_type", json!("IA3"), "peft_type = \"IA3\""),
        ] {
            let dir = peft_copy();
            dir.edit_json(ADAPTER_CONFIG_FILE, |c| c[key] = value);
            let err = load_error("llama-tied", &dir.0);
            assert!(
                err.contains(ADAPTER_CONFIG_FILE) && err.contains(want),
                "{err}"
            );
        }
    }

    #[test]
    fn tensors_the_configuration_does_not_target_are_refused() {
        let dir = peft_copy();
        dir.edit_json(ADAPTER_CONFIG_FILE, |c| {
            c["target_modules"] = json!(["q_proj"])
        });
        let err = load_error("llama-tied", &dir.0);
        assert!(
            err.contains("does not target")
                && err.contains("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_weights_file_is_refused() {
        let dir = peft_copy();
        let path = dir.0.join(ADAPTER_WEIGHTS_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let err = load_error("llama-tied", &dir.0);
        assert!(err.contains(ADAPTER_WEIGHTS_FILE), "{err}");
        std::fs::write(&path, b"not a safetensors file").unwrap();
        let err = load_error("llama-tied", &dir.0);
        assert!(
            err.contains(ADAPTER_WEIGHTS_FILE) && err.contains("header"),
            "{err}"
        );
    }

    #[test]
    fn a_second_adapter_is_refused() {
        let model = adapted::<B>(
            "llama-tied",
            &adapter_dir("llama-tied"),
            &Default::default(),
        );
        let err = model
            .load_adapter(&adapter_dir("llama-tied"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("already has an adapter"), "{err}");
    }
}
