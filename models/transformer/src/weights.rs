//! Filling a [`Transformer`]'s parameters from a checkpoint.
//!
//! Both sources go through burn-store: Hugging Face safetensors shards through `SafetensorsStore`
//! (keys remapped from `model.X` to our `X`), GGUF tensors as lazily dequantized snapshots under
//! their Hugging Face names. Half-precision values are cast to f32 on the way in. Dense weights
//! keep the checkpoint's `[out, in]` layout ([`crate::dense::Dense`]), so nothing is transposed and
//! burn-store's PyTorch adapter (which transposes `burn_nn::Linear` weights to `[in, out]`) is not
//! needed. Every tensor the model needs must be found with its shape and every tensor found must
//! be used, or the load fails naming them; this is checked on the checkpoint's tensor table (a
//! safetensors header, a GGUF tensor table) before the model is built, so a configuration that
//! does not describe the file allocates nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use burn::module::ParamId;
use burn::tensor::{DType, TensorData};
use burn_store::{
    ApplyResult, ModuleAdapter, ModuleSnapshot, SafetensorsStore, TensorSnapshot,
    TensorSnapshotError,
};
use momentkv_gguf::GgufFile;
use momentkv_kernels::KernelBackend;

use crate::tensor_table::{compare_tables, safetensors_header, TableMismatch, TensorTable};
use crate::{Family, ModelError, Transformer, TransformerConfig};

/// A tensor under its Hugging Face name (`model.layers.0.self_attn.q_proj.weight`), in the
/// checkpoint's `[out, in]` layout, produced as f32 when the loader needs it.
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub load: Rc<dyn Fn() -> Result<Vec<f32>, String>>,
}

/// Casts floating-point snapshots (f16, bf16, f64) to f32, the dtype the model computes in.
#[derive(Clone)]
pub(crate) struct CastToF32;

impl ModuleAdapter for CastToF32 {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        if !matches!(snapshot.dtype, DType::F16 | DType::BF16 | DType::F64) {
            return snapshot.clone();
        }
        let data_fn = snapshot.clone_data_fn();
        TensorSnapshot::from_closure(
            Rc::new(move || Ok(data_fn()?.convert_dtype(DType::F32))),
            DType::F32,
            snapshot.shape.clone(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// Checkpoint tensors that carry no weights the model needs.
fn ignorable(name: &str, config: &TransformerConfig) -> bool {
    name.ends_with("rotary_emb.inv_freq")
        || (config.tie_word_embeddings && name == "lm_head.weight")
}

/// The model's path of a tensor named the Hugging Face way: without the leading `model.`.
fn module_path(name: &str) -> &str {
    name.strip_prefix("model.").unwrap_or(name)
}

/// Every tensor a model of `c` loads, by module path, with its `[out, in]` shape.
fn expected_tensors(c: &TransformerConfig) -> TensorTable {
    let (hidden, inter) = (c.hidden_size, c.intermediate_size);
    let (q, kv) = (
        c.num_attention_heads * c.head_dim,
        c.num_key_value_heads * c.head_dim,
    );
    let mut table = TensorTable::new();
    table.insert("embed_tokens.weight".into(), vec![c.vocab_size, hidden]);
    table.insert("norm.weight".into(), vec![hidden]);
    if !c.tie_word_embeddings {
        table.insert("lm_head.weight".into(), vec![c.vocab_size, hidden]);
    }
    for layer in 0..c.num_hidden_layers {
        let mut add = |name: &str, shape: Vec<usize>| {
            table.insert(format!("layers.{layer}.{name}"), shape);
        };
        add("input_layernorm.weight", vec![hidden]);
        add("post_attention_layernorm.weight", vec![hidden]);
        for (proj, out, input, bias) in [
            ("q_proj", q, hidden, c.attention_bias),
            ("k_proj", kv, hidden, c.attention_bias),
            ("v_proj", kv, hidden, c.attention_bias),
            ("o_proj", hidden, q, c.output_bias),
        ] {
            add(&format!("self_attn.{proj}.weight"), vec![out, input]);
            if bias {
                add(&format!("self_attn.{proj}.bias"), vec![out]);
            }
        }
        if c.qk_norm {
            add("self_attn.q_norm.weight", vec![c.head_dim]);
            add("self_attn.k_norm.weight", vec![c.head_dim]);
        }
        add("mlp.gate_proj.weight", vec![inter, hidden]);
        add("mlp.up_proj.weight", vec![inter, hidden]);
        add("mlp.down_proj.weight", vec![hidden, inter]);
    }
    table
}

/// Compares a checkpoint's tensor table with what a model of `config` loads, before the model is
/// built: `config` is validated (so the expected list is bounded), then every tensor must be there
/// with its shape and no other tensor may be, or the error names the first few.
fn check_table(config: &TransformerConfig, table: &TensorTable) -> Result<(), ModelError> {
    config.validate()?;
    compare_tables(&expected_tensors(config), table, |name| {
        ignorable(name, config)
    })
    .map_err(|mismatch| match mismatch {
        TableMismatch::Missing(names) => ModelError::MissingTensors(names),
        TableMismatch::Shapes(shapes) => ModelError::ShapeMismatch(
            shapes
                .into_iter()
                .map(|(name, found, want)| {
                    format!("{name} is {found:?}, the configuration gives {want:?}")
                })
                .collect(),
        ),
        TableMismatch::Unused(names) => ModelError::UnusedTensors(names),
    })
}

/// The tensors of a safetensors checkpoint by module path, read from its header alone.
fn safetensors_table(path: &Path) -> Result<TensorTable, ModelError> {
    Ok(safetensors_header(path)?
        .into_iter()
        .map(|(name, entry)| (module_path(&name).to_string(), entry.shape))
        .collect())
}

impl<B: KernelBackend> Transformer<B> {
    /// A model of `config` filled from a Hugging Face checkpoint: one `model.safetensors` or the
    /// shards an index lists. The files' headers are checked against `config` first.
    pub fn from_safetensors(
        config: &TransformerConfig,
        files: &[PathBuf],
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        let mut table = TensorTable::new();
        for path in files {
            table.extend(safetensors_table(path)?);
        }
        check_table(config, &table)?;
        let mut model = Self::new(config, device)?;
        model.load_safetensors(files)?;
        Ok(model)
    }

    /// A model of `config` filled from tensors named the Hugging Face way ([`gguf_tensors`] for
    /// GGUF files), their names and shapes checked against `config` first.
    pub fn from_tensors(
        config: &TransformerConfig,
        tensors: Vec<NamedTensor>,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        let table: TensorTable = tensors
            .iter()
            .map(|t| (module_path(&t.name).to_string(), t.shape.clone()))
            .collect();
        check_table(config, &table)?;
        let mut model = Self::new(config, device)?;
        model.load_tensors(tensors)?;
        Ok(model)
    }

    /// Loads a Hugging Face checkpoint: one `model.safetensors` or the shards an index lists.
    fn load_safetensors(&mut self, files: &[PathBuf]) -> Result<(), ModelError> {
        let mut results = Vec::with_capacity(files.len());
        for path in files {
            let mut store = SafetensorsStore::from_file(path.clone())
                .with_key_remapping(r"^model\.", "")
                .with_from_adapter(CastToF32)
                .allow_partial(true)
                .validate(false);
            let result = self
                .load_from(&mut store)
                .map_err(|e| ModelError::WeightFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            results.push(result);
        }
        self.check(results)
    }

    /// Loads tensors named the Hugging Face way (see [`gguf_tensors`] for GGUF files).
    fn load_tensors(&mut self, tensors: Vec<NamedTensor>) -> Result<(), ModelError> {
        let snapshots = tensors
            .into_iter()
            .map(|t| {
                let key = module_path(&t.name).to_string();
                let shape = t.shape.clone();
                let load = t.load.clone();
                let data_fn = Rc::new(move || {
                    let values = load().map_err(TensorSnapshotError::DataError)?;
                    Ok(TensorData::new(values, shape.clone()))
                });
                TensorSnapshot::from_closure(
                    data_fn,
                    DType::F32,
                    t.shape.into(),
                    key.split('.').map(str::to_string).collect(),
                    Vec::new(),
                    ParamId::new(),
                )
            })
            .collect();
        let result = self.apply(snapshots, None, Some(Box::new(CastToF32)), false);
        self.check(vec![result])
    }

    /// Turns the apply results of every source into one verdict: errors, then missing, then
    /// unused tensors, each listed by name.
    fn check(&self, results: Vec<ApplyResult>) -> Result<(), ModelError> {
        let applied: BTreeSet<String> = results.iter().flat_map(|r| r.applied.clone()).collect();
        let errors: Vec<String> = results
            .iter()
            .flat_map(|r| r.errors.iter().map(|e| e.to_string()))
            .collect();
        if !errors.is_empty() {
            return Err(ModelError::BadTensors(errors));
        }
        let missing: BTreeSet<String> = results
            .iter()
            .flat_map(|r| r.missing.iter().map(|(path, _)| path.clone()))
            .filter(|p| !applied.contains(p))
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::MissingTensors(missing.into_iter().collect()));
        }
        let unused: BTreeSet<String> = results
            .iter()
            .flat_map(|r| r.unused.clone())
            .filter(|name| !ignorable(name, self.config()))
            .collect();
        if !unused.is_empty() {
            return Err(ModelError::UnusedTensors(unused.into_iter().collect()));
        }
        Ok(())
    }
}

/// Hugging Face names of llama.cpp's per-block tensor names.
const BLOCK_NAMES: &[(&str, &str)] = &[
    ("attn_norm", "input_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// The Hugging Face name of a GGUF tensor, or `None` for tensors that are configuration
/// (`rope_freqs`) rather than weights. Unknown names pass through, so the loader reports them.
fn hf_name(gguf: &str) -> Option<String> {
    let top = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        "rope_freqs.weight" => return None,
        _ => None,
    };
    if let Some(name) = top {
        return Some(name.into());
    }
    let parts: Vec<&str> = gguf.splitn(4, '.').collect();
    if let ["blk", layer, name, suffix] = parts[..] {
        if let Some((_, hf)) = BLOCK_NAMES.iter().find(|(g, _)| *g == name) {
            return Some(format!("model.layers.{layer}.{hf}.{suffix}"));
        }
    }
    Some(format!("gguf:{gguf}"))
}

/// Undoes llama.cpp's q/k row permutation: rows `(head, i, pair)` back to `(head, pair, i)`,
/// i.e. `reshape(n_head, head_dim/2, 2, ·)` then swap axes 1 and 2.
fn unpermute_rows(values: &[f32], n_head: usize, row_len: usize) -> Vec<f32> {
    if row_len == 0 || n_head == 0 {
        return values.to_vec();
    }
    let rows = values.len() / row_len;
    let head_dim = rows / n_head;
    let half = head_dim / 2;
    let mut out = vec![0f32; values.len()];
    for h in 0..n_head {
        for i in 0..half {
            for pair in 0..2 {
                let src = h * head_dim + i * 2 + pair;
                let dst = h * head_dim + pair * half + i;
                out[dst * row_len..(dst + 1) * row_len]
                    .copy_from_slice(&values[src * row_len..(src + 1) * row_len]);
            }
        }
    }
    out
}

/// Every weight tensor of a GGUF file under its Hugging Face name, dequantized to f32 on demand,
/// with q/k rows restored to Hugging Face's rotate-half order where `family`'s converter permuted
/// them to interleaved pairs.
pub fn gguf_tensors(
    file: &Arc<GgufFile>,
    config: &TransformerConfig,
    family: &Family,
) -> Vec<NamedTensor> {
    file.tensors()
        .iter()
        .filter_map(|t| {
            let name = hf_name(&t.name)?;
            let heads = if name.ends_with("q_proj.weight") || name.ends_with("q_proj.bias") {
                Some(config.num_attention_heads)
            } else if name.ends_with("k_proj.weight") || name.ends_with("k_proj.bias") {
                Some(config.num_key_value_heads)
            } else {
                None
            }
            .filter(|_| family.gguf_permuted_qk);
            let shape = t.shape();
            let row_len = if shape.len() == 2 { shape[1] } else { 1 };
            let (file, gguf_name) = (file.clone(), t.name.clone());
            let load = Rc::new(move || {
                let (_, values) = file.dequantize(&gguf_name).map_err(|e| e.to_string())?;
                Ok(match heads {
                    Some(n) => unpermute_rows(&values, n, row_len),
                    None => values,
                })
            });
            Some(NamedTensor { name, shape, load })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RopeScaling;

    /// A two-layer model small enough to build in a test.
    fn tiny(tied: bool, biases: bool, qk_norm: bool) -> TransformerConfig {
        TransformerConfig {
            vocab_size: 11,
            hidden_size: 8,
            intermediate_size: 12,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 4,
            rms_norm_eps: 1e-6,
            rope_theta: 10000.0,
            rope_scaling: RopeScaling::None,
            max_position_embeddings: 32,
            tie_word_embeddings: tied,
            attention_bias: biases,
            output_bias: biases,
            qk_norm,
        }
    }

    #[test]
    fn expected_tensors_are_the_models_parameters() {
        for config in [tiny(true, false, false), tiny(false, true, true)] {
            let model =
                Transformer::<burn::backend::NdArray>::new(&config, &Default::default()).unwrap();
            let parameters: TensorTable = model
                .collect(None, None, false)
                .into_iter()
                .map(|s| (s.full_path(), s.shape.to_vec()))
                .collect();
            assert_eq!(parameters, expected_tensors(&config));
        }
    }

    #[test]
    fn tensor_tables_are_checked_against_the_configuration() {
        let config = tiny(true, false, false);
        let table = expected_tensors(&config);
        check_table(&config, &table).unwrap();

        // More layers than the checkpoint has: the first missing names (in name order) and a count.
        let deeper = TransformerConfig {
            num_hidden_layers: 40,
            ..config.clone()
        };
        let err = check_table(&deeper, &table).unwrap_err().to_string();
        assert!(
            err.contains("missing")
                && err.contains("layers.10.input_layernorm.weight")
                && err.ends_with("... and 339 more"),
            "{err}"
        );

        // A layer count beyond the limit is refused before the expected list is built.
        let huge = TransformerConfig {
            num_hidden_layers: 1 << 31,
            ..config.clone()
        };
        let err = check_table(&huge, &table).unwrap_err().to_string();
        assert!(
            err.contains("num_hidden_layers") && err.contains("1024"),
            "{err}"
        );

        let wider = TransformerConfig {
            intermediate_size: 24,
            ..config.clone()
        };
        let err = check_table(&wider, &table).unwrap_err().to_string();
        assert!(
            err.contains(
                "layers.0.mlp.down_proj.weight is [8, 12], the configuration gives [8, 24]"
            ) && err.ends_with("... and 3 more"),
            "{err}"
        );

        let mut extra = table.clone();
        extra.insert("rotary_emb.inv_freq".into(), vec![2]);
        check_table(&config, &extra).unwrap();
        extra.insert("gguf:blk.0.mystery.weight".into(), vec![8]);
        let err = check_table(&config, &extra).unwrap_err().to_string();
        assert!(
            err.contains("does not use") && err.contains("gguf:blk.0.mystery.weight"),
            "{err}"
        );
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() {
        // llama.cpp: w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2); here n_head 2, hd 4, in 3.
        let (n_head, hd, cols) = (2, 4, 3);
        let hf: Vec<f32> = (0..n_head * hd * cols).map(|x| x as f32).collect();
        let mut permuted = vec![0f32; hf.len()];
        for h in 0..n_head {
            for pair in 0..2 {
                for i in 0..hd / 2 {
                    let src = h * hd + pair * (hd / 2) + i;
                    let dst = h * hd + i * 2 + pair;
                    permuted[dst * cols..(dst + 1) * cols]
                        .copy_from_slice(&hf[src * cols..(src + 1) * cols]);
                }
            }
        }
        assert_ne!(permuted, hf);
        assert_eq!(unpermute_rows(&permuted, n_head, cols), hf);
    }

    #[test]
    fn gguf_names_map_to_hugging_face_names() {
        assert_eq!(
            hf_name("blk.3.attn_q.weight").unwrap(),
            "model.layers.3.self_attn.q_proj.weight"
        );
        assert_eq!(
            hf_name("blk.0.attn_k.bias").unwrap(),
            "model.layers.0.self_attn.k_proj.bias"
        );
        assert_eq!(
            hf_name("blk.1.ffn_norm.weight").unwrap(),
            "model.layers.1.post_attention_layernorm.weight"
        );
        assert_eq!(
            hf_name("token_embd.weight").unwrap(),
            "model.embed_tokens.weight"
        );
        assert_eq!(hf_name("rope_freqs.weight"), None);
        assert_eq!(
            hf_name("blk.0.mystery.weight").unwrap(),
            "gguf:blk.0.mystery.weight"
        );
    }
}
