//! Bad input gets a clear error naming the file, field, tensor or limit, never a panic.

#![cfg(any(feature = "flex", feature = "ndarray"))]

use std::path::{Path, PathBuf};

use crate::common::{fixture, Scratch};
use momentkv::backend::BackendKind;
use momentkv::cache::{FullCache, Phase};
use momentkv::load::load;
use momentkv::transformer::{generate, GenerateOptions, Sampler};

/// Errors do not depend on the backend: the tests run on one CPU backend.
#[cfg(feature = "flex")]
type B = burn::backend::Flex;
#[cfg(not(feature = "flex"))]
type B = burn::backend::NdArray;

impl Scratch {
    /// A copy of the fixture GGUF file `name` in this directory, with the u32 metadata value
    /// `key` set to `value`.
    fn patched_gguf(&self, name: &str, key: &str, value: u32) -> PathBuf {
        let mut bytes = std::fs::read(fixture(name)).unwrap();
        let mut entry = (key.len() as u64).to_le_bytes().to_vec();
        entry.extend_from_slice(key.as_bytes());
        let at = bytes
            .windows(entry.len())
            .position(|w| w == entry)
            .unwrap_or_else(|| panic!("no {key} in {name}"))
            + entry.len();
        assert_eq!(
            &bytes[at..at + 4],
            &4u32.to_le_bytes()[..],
            "{key} is not a u32"
        );
        bytes[at + 4..at + 8].copy_from_slice(&value.to_le_bytes());
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn load_error(path: &Path) -> String {
    match load::<B>(path, &Default::default()) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_model_path_names_it() {
    let err = load_error(Path::new("/nonexistent/model.gguf"));
    assert!(err.contains("/nonexistent/model.gguf"), "{err}");
}

#[test]
fn architecture_that_is_neither_llama_nor_qwen_names_it() {
    let dir = Scratch::copy_of("llama-tied");
    dir.edit_json("config.json", |c| {
        c["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
        c["model_type"] = serde_json::json!("gpt2");
    });
    let err = load_error(&dir.0);
    assert!(
        err.contains("GPT2LMHeadModel") && err.contains("LlamaForCausalLM"),
        "{err}"
    );
    assert!(
        err.contains("Qwen2ForCausalLM") && err.contains("Qwen3ForCausalLM"),
        "{err}"
    );
}

#[test]
fn qwen3_checkpoint_without_qk_norms_names_them() {
    // Llama weights under a Qwen3 config: everything but the per-head q/k norms is there.
    let dir = Scratch::copy_of("llama-tied");
    dir.edit_json("config.json", |c| {
        c["architectures"] = serde_json::json!(["Qwen3ForCausalLM"]);
        c["model_type"] = serde_json::json!("qwen3");
    });
    let err = load_error(&dir.0);
    assert!(
        err.contains("missing") && err.contains("layers.0.self_attn.q_norm.weight"),
        "{err}"
    );
    assert!(err.contains("layers.1.self_attn.k_norm.weight"), "{err}");
}

#[test]
fn config_missing_a_field_names_it() {
    let dir = Scratch::copy_of("llama-tied");
    dir.edit_json("config.json", |c| {
        c.as_object_mut().unwrap().remove("hidden_size");
    });
    let err = load_error(&dir.0);
    assert!(
        err.contains("hidden_size") && err.contains("config.json"),
        "{err}"
    );
}

#[test]
fn mismatched_head_counts_name_the_field() {
    let dir = Scratch::copy_of("llama-tied");
    dir.edit_json("config.json", |c| {
        c["num_key_value_heads"] = serde_json::json!(3)
    });
    let err = load_error(&dir.0);
    assert!(err.contains("num_key_value_heads"), "{err}");
}

#[test]
fn missing_and_unused_tensors_are_listed_by_name() {
    // A config that claims an untied head makes lm_head.weight missing from a tied checkpoint.
    let dir = Scratch::copy_of("llama-tied");
    dir.edit_json("config.json", |c| {
        c["tie_word_embeddings"] = serde_json::json!(false)
    });
    let err = load_error(&dir.0);
    assert!(
        err.contains("missing") && err.contains("lm_head.weight"),
        "{err}"
    );
    // One layer fewer in the config leaves layer 1's tensors unused.
    let dir = Scratch::copy_of("llama-tied");
    dir.edit_json("config.json", |c| {
        c["num_hidden_layers"] = serde_json::json!(1)
    });
    let err = load_error(&dir.0);
    assert!(
        err.contains("does not use") && err.contains("layers.1.mlp.down_proj.weight"),
        "{err}"
    );
}

#[test]
fn truncated_weights_name_the_file() {
    let dir = Scratch::copy_of("llama-tied");
    let weights = dir.0.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_error(&dir.0);
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn gguf_of_an_unknown_architecture_names_it() {
    // quants.gguf holds test tensors under architecture "test".
    let err = load_error(&fixture("gguf/quants.gguf"));
    assert!(
        err.contains("general.architecture") && err.contains("test"),
        "{err}"
    );
}

#[test]
fn prompt_longer_than_the_context_window_names_the_limit() {
    let model = load::<B>(&fixture("llama-tied"), &Default::default()).unwrap();
    let limit = model.transformer.config().max_position_embeddings;
    let prompt = vec![5u32; limit + 1];
    let options = GenerateOptions {
        stop_tokens: vec![],
        ..model.options(1)
    };
    let mut cache = FullCache::new(model.transformer.config().num_hidden_layers);
    let err = generate(
        &model.transformer,
        &mut cache,
        &prompt,
        &options,
        &mut Sampler::greedy(),
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&limit.to_string()) && err.contains("context window"),
        "{err}"
    );
    // A prompt that fits but leaves no room for the requested tokens is refused up front too.
    let options = GenerateOptions {
        stop_tokens: vec![],
        ..model.options(10)
    };
    let err = generate(
        &model.transformer,
        &mut cache,
        &prompt[..limit - 2],
        &options,
        &mut Sampler::greedy(),
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("context window"), "{err}");
}

#[test]
fn token_ids_outside_the_vocabulary_are_refused() {
    let model = load::<B>(&fixture("llama-tied"), &Default::default()).unwrap();
    let vocab = model.transformer.config().vocab_size as u32;
    let mut cache = FullCache::new(model.transformer.config().num_hidden_layers);
    let err = model
        .transformer
        .forward(&[vec![1, vocab]], Phase::Prefill, &mut cache)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&vocab.to_string()), "{err}");
}

#[test]
fn unknown_and_absent_backends_are_explained() {
    let err = "tpu".parse::<BackendKind>().unwrap_err().to_string();
    assert!(err.contains("tpu") && err.contains("flex"), "{err}");
    if let Some(absent) = BackendKind::ALL.into_iter().find(|b| !b.is_compiled()) {
        struct Nothing;
        impl momentkv::backend::WithBackend for Nothing {
            type Output = ();
            fn run<B: momentkv::kernels::KernelBackend>(self, _: B::Device) {}
        }
        let err = momentkv::backend::dispatch(absent, Nothing)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--features") && err.contains(absent.name()),
            "{err}"
        );
    }
}

#[test]
fn sizes_beyond_the_limits_are_refused_in_one_short_line() {
    for (field, value) in [
        ("num_hidden_layers", 1u64 << 31),
        ("num_hidden_layers", 200_000),
        ("hidden_size", 1 << 40),
        ("head_dim", 1 << 40),
        ("intermediate_size", 1 << 40),
        ("vocab_size", 1 << 40),
    ] {
        let dir = Scratch::copy_of("llama-tied");
        dir.edit_json("config.json", |c| c[field] = serde_json::json!(value));
        let err = load_error(&dir.0);
        assert!(
            err.contains(field) && err.contains("limit") && err.len() < 200,
            "{field} = {value}: {err}"
        );
    }
}

#[test]
fn more_layers_than_the_checkpoint_has_name_the_first_missing_tensors() {
    let dir = Scratch::copy_of("llama-tied");
    dir.edit_json("config.json", |c| {
        c["num_hidden_layers"] = serde_json::json!(1000)
    });
    let err = load_error(&dir.0);
    assert!(
        err.contains("missing")
            && err.contains("layers.10.")
            && err.ends_with("... and 8979 more")
            && err.len() < 300,
        "{err}"
    );
}

#[test]
fn tensor_shapes_that_disagree_with_the_config_are_named() {
    let dir = Scratch::copy_of("llama-tied");
    dir.edit_json("config.json", |c| {
        c["intermediate_size"] = serde_json::json!(256)
    });
    let err = load_error(&dir.0);
    assert!(
        err.contains(
            "layers.0.mlp.down_proj.weight is [64, 128], the configuration gives [64, 256]"
        ) && err.ends_with("... and 3 more"),
        "{err}"
    );
}

#[test]
fn gguf_sizes_are_checked_before_the_model_is_built() {
    let dir = Scratch::new("gguf-sizes");
    let huge = dir.patched_gguf("llama-tied.gguf", "llama.block_count", 1 << 31);
    let err = load_error(&huge);
    assert!(
        err.contains("llama.block_count") && err.contains("1024"),
        "{err}"
    );
    let deeper = dir.patched_gguf("llama-tied.gguf", "llama.block_count", 3);
    let err = load_error(&deeper);
    assert!(
        err.contains("missing") && err.contains("layers.2.") && err.ends_with("... and 6 more"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn fifos_and_devices_are_named_for_what_they_are_without_being_read() {
    let err = load_error(Path::new("/dev/zero"));
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file") && err.contains("device"),
        "{err}"
    );
    let dir = Scratch::new("fifo");
    let fifo = dir.0.join("model.gguf");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Reading a FIFO with no writer would block: both errors come from its metadata alone.
    let err = load_error(&fifo);
    assert!(err.contains("FIFO"), "{err}");
    let err = momentkv::hub::resolve(fifo.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("FIFO") && err.contains("model.gguf"), "{err}");
}

#[test]
fn index_shards_outside_the_model_directory_are_refused() {
    let dir = Scratch::copy_of("llama-tied");
    std::fs::remove_file(dir.0.join("model.safetensors")).unwrap();
    for shard in [
        "../model.safetensors",
        "/etc/passwd",
        "shards/../../model.safetensors",
    ] {
        let index = serde_json::json!({
            "metadata": {},
            "weight_map": {"model.embed_tokens.weight": shard}
        });
        std::fs::write(
            dir.0.join("model.safetensors.index.json"),
            index.to_string(),
        )
        .unwrap();
        let err = load_error(&dir.0);
        assert!(
            err.contains("model.safetensors.index.json") && err.contains(shard),
            "{shard}: {err}"
        );
    }
}

#[test]
fn a_corrupt_generation_config_names_the_file() {
    let dir = Scratch::copy_of("llama-tied");
    let path = dir.0.join("generation_config.json");
    std::fs::write(&path, r#"{"eos_token_id": "#).unwrap();
    let err = load_error(&dir.0);
    assert!(err.contains("generation_config.json"), "{err}");
    // Without the file, the stop ids come from config.json.
    std::fs::remove_file(&path).unwrap();
    let model = load::<B>(&dir.0, &Default::default()).unwrap();
    assert_eq!(model.stop_tokens, vec![2]);
}

#[test]
fn a_tensor_named_twice_in_a_gguf_file_is_refused() {
    // Found by `momentkv-fuzz gguf-config`: the loader took the second entry's shape and the
    // first entry's data, and burn panicked on the mismatch.
    let dir = Scratch::new("duplicate-tensor");
    let mut bytes = std::fs::read(fixture("llama-tied.gguf")).unwrap();
    let (q, k) = (b"blk.0.attn_q.weight", b"blk.0.attn_k.weight");
    let at = bytes.windows(q.len()).position(|w| w == q).unwrap();
    bytes[at..at + q.len()].copy_from_slice(k);
    let path = dir.0.join("duplicate.gguf");
    std::fs::write(&path, bytes).unwrap();
    let err = load_error(&path);
    assert!(
        err.contains("tensor blk.0.attn_k.weight appears twice"),
        "{err}"
    );
}
