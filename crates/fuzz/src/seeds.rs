//! Where mutation starts: the committed fixtures, files built here (minimal GGUF models, configs,
//! RULER lines, policy specs), the default model when it has been fetched (cut down to its
//! metadata and one row per tensor), and the files of `--corpus` directories.

use std::path::{Path, PathBuf};

use momentkv::cache::{Kind, COMMON_PARAMS, POLICIES};
use momentkv::gguf::{GgmlType, GgufFile, Value};
use momentkv_ruler::{generate, write_jsonl, Sources, Task};

use crate::mutate::MAX_INPUT;
use crate::rng::Rng;

/// Seed files beyond this are not read whole: GGUF files are cut down ([`reduce_gguf`]), others
/// cut to their first [`MAX_INPUT`] bytes.
const MAX_SEED_FILE: u64 = MAX_INPUT as u64;

/// Each kept tensor's data in a cut-down GGUF is at most this many bytes.
const MAX_TENSOR_BYTES: usize = 16 << 10;

/// The committed fixtures, when this binary runs from a checkout.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    dir.is_dir().then_some(dir)
}

/// The seed files found once and shared by the targets.
#[derive(Default)]
pub struct SeedPool {
    /// GGUF files: the fixtures, the cut-down default model, the hand-made ones.
    pub gguf: Vec<Vec<u8>>,
    /// `config.json` files of the fixture model directories, and hand-made ones.
    pub hf_config: Vec<Vec<u8>>,
    /// `.jsonl` files found among the fixtures.
    pub jsonl: Vec<Vec<u8>>,
    /// Files of `--corpus` directories: `(Some(target), bytes)` for one target (a file named
    /// `TARGET-<anything>.bin` or in a `TARGET/` subdirectory), `(None, bytes)` for all.
    pub corpus: Vec<(Option<String>, Vec<u8>)>,
    /// Lines saying what was skipped or cut, printed once.
    pub notes: Vec<String>,
}

impl SeedPool {
    /// Reads the fixtures (`fixtures`), the default model if `home` and it is present, and the
    /// `corpus` directories; `targets` are the names a corpus file may be assigned to.
    pub fn load(fixtures: Option<&Path>, home: bool, corpus: &[PathBuf], targets: &[&str]) -> Self {
        let mut pool = SeedPool::default();
        if let Some(dir) = fixtures {
            let mut files = Vec::new();
            walk(dir, &mut files);
            files.sort();
            for path in files {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                if ext == "gguf" {
                    if let Some(bytes) = pool.read_gguf(&path) {
                        pool.gguf.push(bytes);
                    }
                } else if name == "config.json" {
                    if let Some(bytes) = pool.read(&path) {
                        pool.hf_config.push(bytes);
                    }
                } else if ext == "jsonl" {
                    if let Some(bytes) = pool.read(&path) {
                        pool.jsonl.push(bytes);
                    }
                }
            }
        }
        if home {
            let model = momentkv::hub::SMOLLM2_135M.path();
            if momentkv::hub::SMOLLM2_135M.is_fetched() {
                if let Some(bytes) = pool.read_gguf(&model) {
                    pool.gguf.push(bytes);
                }
            }
        }
        pool.gguf.extend(handmade_gguf());
        pool.hf_config
            .extend(HF_CONFIGS.iter().map(|c| c.as_bytes().to_vec()));
        for dir in corpus {
            pool.read_corpus(dir, targets);
        }
        pool
    }

    fn read(&mut self, path: &Path) -> Option<Vec<u8>> {
        let len = std::fs::metadata(path).ok()?.len();
        let bytes = if len > MAX_SEED_FILE {
            use std::io::Read;
            let mut bytes = Vec::new();
            let file = std::fs::File::open(path).ok()?;
            file.take(MAX_SEED_FILE).read_to_end(&mut bytes).ok()?;
            self.notes.push(format!(
                "{}: {len} bytes, the first {MAX_SEED_FILE} kept",
                path.display()
            ));
            bytes
        } else {
            std::fs::read(path).ok()?
        };
        Some(bytes)
    }

    /// A GGUF file as a seed: whole when small, else cut down by [`reduce_gguf`].
    fn read_gguf(&mut self, path: &Path) -> Option<Vec<u8>> {
        let len = std::fs::metadata(path).ok()?.len();
        if len <= MAX_SEED_FILE {
            return std::fs::read(path).ok();
        }
        match GgufFile::open(path) {
            Ok(file) => {
                let bytes = reduce_gguf(&file);
                self.notes.push(format!(
                    "{}: {len} bytes, cut down to its metadata and tensor table ({} bytes)",
                    path.display(),
                    bytes.len()
                ));
                Some(bytes)
            }
            Err(e) => {
                self.notes
                    .push(format!("{}: skipped ({e})", path.display()));
                None
            }
        }
    }

    fn read_corpus(&mut self, dir: &Path, targets: &[&str]) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            self.notes.push(format!(
                "--corpus {}: not a readable directory",
                dir.display()
            ));
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            if path.is_dir() {
                if !targets.contains(&name.as_str()) {
                    continue;
                }
                let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                    .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                    .unwrap_or_default();
                files.sort();
                for file in files.into_iter().filter(|f| f.is_file()) {
                    if let Some(bytes) = self.read_any(&file) {
                        self.corpus.push((Some(name.clone()), bytes));
                    }
                }
            } else if path.is_file() {
                // `TARGET-<hash>.bin`, as findings are written: that target only.
                let target = name
                    .strip_suffix(".bin")
                    .and_then(|stem| stem.rsplit_once('-'))
                    .map(|(target, _)| target)
                    .filter(|t| targets.contains(t))
                    .map(str::to_string);
                if let Some(bytes) = self.read_any(&path) {
                    self.corpus.push((target, bytes));
                }
            }
        }
    }

    fn read_any(&mut self, path: &Path) -> Option<Vec<u8>> {
        let mut magic = [0u8; 4];
        let is_gguf = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
            && &magic == b"GGUF";
        if is_gguf {
            self.read_gguf(path)
        } else {
            self.read(path)
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// One tensor to write.
pub struct TensorSeed {
    pub name: String,
    pub ne: Vec<u64>,
    pub ty: GgmlType,
    pub data: Vec<u8>,
}

fn value_type(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s),
        Value::Array(items) => {
            // GGUF arrays hold one element type; an empty one is written as an array of strings.
            put_u32(out, items.first().map_or(8, value_type));
            put_u64(out, items.len() as u64);
            for item in items {
                put_value(out, item);
            }
        }
    }
}

fn pad(out: &mut Vec<u8>, alignment: usize) {
    out.resize(out.len().div_ceil(alignment) * alignment, 0);
}

/// A GGUF (version 3) file: header, `metadata`, tensor table, then each tensor's data at the
/// alignment `general.alignment` asks for (32 without it).
pub fn write_gguf(metadata: &[(String, Value)], tensors: &[TensorSeed]) -> Vec<u8> {
    let alignment = metadata
        .iter()
        .find(|(k, _)| k == "general.alignment")
        .and_then(|(_, v)| v.as_u64())
        .filter(|a| a.is_power_of_two() && *a <= 4096)
        .unwrap_or(32) as usize;
    let mut out = b"GGUF".to_vec();
    put_u32(&mut out, 3);
    put_u64(&mut out, tensors.len() as u64);
    put_u64(&mut out, metadata.len() as u64);
    for (key, value) in metadata {
        put_str(&mut out, key);
        put_u32(&mut out, value_type(value));
        put_value(&mut out, value);
    }
    let mut offset = 0u64;
    for t in tensors {
        put_str(&mut out, &t.name);
        put_u32(&mut out, t.ne.len() as u32);
        for &d in &t.ne {
            put_u64(&mut out, d);
        }
        put_u32(&mut out, t.ty.0);
        put_u64(&mut out, offset);
        offset += (t.data.len().div_ceil(alignment) * alignment) as u64;
    }
    pad(&mut out, alignment);
    for t in tensors {
        out.extend_from_slice(&t.data);
        pad(&mut out, alignment);
    }
    out
}

/// A GGUF file cut down to a seed: all its metadata and its tensor table, each tensor reduced to
/// its first row (or, for a vector, its first [`MAX_TENSOR_BYTES`]), so the tokenizer, the
/// configuration and the tensor names of a real model are there in a few MB.
pub fn reduce_gguf(file: &GgufFile) -> Vec<u8> {
    let meta = file.metadata();
    let metadata: Vec<(String, Value)> = meta
        .keys()
        .filter_map(|k| meta.get(k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let mut tensors = Vec::new();
    for t in file.tensors() {
        let Ok(bytes) = file.bytes_of(t) else {
            continue;
        };
        let (block_len, block_bytes) = (t.ty.block_len() as u64, t.ty.block_bytes());
        let (ne, data) = if bytes.len() <= MAX_TENSOR_BYTES {
            (t.ne.clone(), bytes.to_vec())
        } else if t.ne.len() >= 2 && t.ne[0] % block_len == 0 {
            let row = (t.ne[0] / block_len) as usize * block_bytes;
            if row > MAX_TENSOR_BYTES || row > bytes.len() {
                continue;
            }
            let mut ne = vec![1u64; t.ne.len()];
            ne[0] = t.ne[0];
            (ne, bytes[..row].to_vec())
        } else {
            let blocks = MAX_TENSOR_BYTES / block_bytes.max(1);
            (
                vec![blocks as u64 * block_len],
                bytes[..blocks * block_bytes].to_vec(),
            )
        };
        tensors.push(TensorSeed {
            name: t.name.clone(),
            ne,
            ty: t.ty,
            data,
        });
    }
    write_gguf(&metadata, &tensors)
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|&v| s(v)).collect())
}

/// `n` blocks of type `ty` of random bytes (so scales run over every f16, NaN and ∞ included).
fn blocks(rng: &mut Rng, ty: GgmlType, elements: u64) -> Vec<u8> {
    let n = (elements / ty.block_len() as u64) as usize * ty.block_bytes();
    (0..n).map(|_| rng.byte()).collect()
}

fn tensor(rng: &mut Rng, name: &str, ne: &[u64], ty: GgmlType) -> TensorSeed {
    TensorSeed {
        name: name.into(),
        ne: ne.to_vec(),
        ty,
        data: blocks(rng, ty, ne.iter().product()),
    }
}

/// A one-layer model of `arch` (hidden 32, 2 heads of 16, 1 KV head, vocabulary 5), its weights
/// in every type momentkv dequantizes, with a five-token byte-level BPE tokenizer.
fn tiny_model(rng: &mut Rng, arch: &str, pre: &str) -> Vec<u8> {
    let k = |key: &str| format!("{arch}.{key}");
    let mut metadata = vec![
        ("general.architecture".to_string(), s(arch)),
        ("general.name".to_string(), s("tiny")),
        (k("block_count"), Value::U32(1)),
        (k("context_length"), Value::U32(64)),
        (k("embedding_length"), Value::U32(32)),
        (k("feed_forward_length"), Value::U32(32)),
        (k("attention.head_count"), Value::U32(2)),
        (k("attention.head_count_kv"), Value::U32(1)),
        (k("attention.key_length"), Value::U32(16)),
        (k("rope.freq_base"), Value::F32(10000.0)),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(1e-5)),
        ("tokenizer.ggml.model".to_string(), s("gpt2")),
        ("tokenizer.ggml.pre".to_string(), s(pre)),
        (
            "tokenizer.ggml.tokens".to_string(),
            strings(&["a", "b", "ab", "\u{120}", "<|end|>"]),
        ),
        ("tokenizer.ggml.merges".to_string(), strings(&["a b"])),
        ("tokenizer.ggml.eos_token_id".to_string(), Value::U32(4)),
        (
            "tokenizer.chat_template".to_string(),
            s(
                "{% for m in messages %}{{ m.role }}: {{ m.content | trim }}{{ eos_token }}\n\
               {% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
            ),
        ),
    ];
    let mut tensors = vec![
        tensor(rng, "token_embd.weight", &[32, 5], GgmlType::F32),
        tensor(rng, "output_norm.weight", &[32], GgmlType::F32),
        tensor(rng, "blk.0.attn_norm.weight", &[32], GgmlType::F32),
        tensor(rng, "blk.0.attn_q.weight", &[32, 32], GgmlType::Q4_0),
        tensor(rng, "blk.0.attn_k.weight", &[32, 16], GgmlType::Q4_1),
        tensor(rng, "blk.0.attn_v.weight", &[32, 16], GgmlType::Q5_0),
        tensor(rng, "blk.0.attn_output.weight", &[32, 32], GgmlType::F16),
        tensor(rng, "blk.0.ffn_norm.weight", &[32], GgmlType::BF16),
        tensor(rng, "blk.0.ffn_gate.weight", &[32, 32], GgmlType::Q4_K),
        tensor(rng, "blk.0.ffn_up.weight", &[32, 32], GgmlType::Q6_K),
        tensor(rng, "blk.0.ffn_down.weight", &[32, 32], GgmlType::Q8_0),
    ];
    if arch == "llama" {
        metadata.extend([
            (k("vocab_size"), Value::U32(5)),
            ("tokenizer.ggml.bos_token_id".to_string(), Value::U32(4)),
            (
                "tokenizer.ggml.add_bos_token".to_string(),
                Value::Bool(true),
            ),
            (
                "tokenizer.ggml.token_type".to_string(),
                Value::Array([1, 1, 1, 1, 3].into_iter().map(Value::I32).collect()),
            ),
        ]);
        tensors.push(tensor(rng, "output.weight", &[32, 5], GgmlType::Q8_0));
        // Llama 3 scaling as llama.cpp stores it: one divisor per frequency.
        tensors.push(TensorSeed {
            name: "rope_freqs.weight".into(),
            ne: vec![8],
            ty: GgmlType::F32,
            data: (0..8)
                .flat_map(|i| (1.0f32 + i as f32).to_le_bytes())
                .collect(),
        });
    } else {
        metadata.extend([
            (k("rope.scaling.type"), s("linear")),
            (k("rope.scaling.factor"), Value::F32(2.0)),
        ]);
        for (name, n) in [("attn_q", 32), ("attn_k", 16), ("attn_v", 16)] {
            tensors.push(tensor(
                rng,
                &format!("blk.0.{name}.bias"),
                &[n],
                GgmlType::F32,
            ));
        }
        if arch == "qwen3" {
            for name in ["attn_q_norm", "attn_k_norm"] {
                tensors.push(tensor(
                    rng,
                    &format!("blk.0.{name}.weight"),
                    &[16],
                    GgmlType::F32,
                ));
            }
        }
    }
    write_gguf(&metadata, &tensors)
}

/// Hand-made GGUF files: tiny models of each family, a header with nothing in it, and one with
/// every metadata value type and a custom alignment.
pub fn handmade_gguf() -> Vec<Vec<u8>> {
    let mut rng = Rng::new(0x6767_7566, 0);
    let mut every_type = vec![
        ("general.alignment".to_string(), Value::U32(64)),
        ("general.architecture".to_string(), s("llama")),
    ];
    let scalars = [
        Value::U8(1),
        Value::I8(-1),
        Value::U16(2),
        Value::I16(-2),
        Value::U32(3),
        Value::I32(-3),
        Value::U64(4),
        Value::I64(-4),
        Value::F32(0.5),
        Value::F64(-0.25),
        Value::Bool(true),
        s("text"),
    ];
    for (i, v) in scalars.iter().enumerate() {
        every_type.push((format!("test.scalar.{i}"), v.clone()));
        every_type.push((
            format!("test.array.{i}"),
            Value::Array(vec![v.clone(), v.clone()]),
        ));
    }
    every_type.push(("test.array.empty".to_string(), Value::Array(Vec::new())));
    let one = [tensor(&mut rng, "t", &[4, 2], GgmlType::F32)];
    vec![
        tiny_model(&mut rng, "llama", "llama-bpe"),
        tiny_model(&mut rng, "qwen2", "qwen2"),
        tiny_model(&mut rng, "qwen3", "smollm"),
        write_gguf(&[("general.architecture".to_string(), s("llama"))], &[]),
        write_gguf(&every_type, &one),
    ]
}

/// Inputs for the bare dequantizer: a type id byte, then that type's blocks.
pub fn dequant_seeds(pool: &SeedPool) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(0x6465_7175, 0);
    let mut seeds = Vec::new();
    for id in 0..42u8 {
        let ty = GgmlType(id.into());
        if !ty.is_known() {
            continue;
        }
        let mut seed = vec![id];
        seed.extend(blocks(&mut rng, ty, 2 * ty.block_len() as u64));
        seeds.push(seed);
    }
    // Real blocks: the first few of each tensor of the fixtures.
    for bytes in &pool.gguf {
        let Ok(file) = GgufFile::from_bytes("seed.gguf", bytes.as_slice()) else {
            continue;
        };
        for t in file.tensors().iter().filter(|t| t.ty.can_dequantize()) {
            if let Ok(data) = file.bytes_of(t) {
                let keep = (4096 / t.ty.block_bytes().max(1)) * t.ty.block_bytes();
                let mut seed = vec![t.ty.0 as u8];
                seed.extend_from_slice(&data[..data.len().min(keep)]);
                seeds.push(seed);
            }
        }
    }
    seeds
}

/// Hand-made `config.json` files: the transformers-4 and -5 forms, each rope scaling type, the
/// options that are refused.
const HF_CONFIGS: &[&str] = &[
    r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":32,"hidden_size":16,"intermediate_size":32,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"rms_norm_eps":1e-5,"rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192},"max_position_embeddings":131072,"tie_word_embeddings":true,"eos_token_id":[1,2],"hidden_act":"silu","mlp_bias":false}"#,
    r#"{"architectures":["LlamaForCausalLM"],"vocab_size":32,"hidden_size":16,"intermediate_size":32,"num_hidden_layers":2,"num_attention_heads":4,"rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":10000.0},"eos_token_id":2}"#,
    r#"{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":64,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,"rope_theta":1000000.0,"rope_scaling":null,"use_sliding_window":false,"sliding_window":4096,"max_window_layers":21,"tie_word_embeddings":false,"attention_bias":true}"#,
    r#"{"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3","vocab_size":64,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"rope_parameters":{"rope_type":"default","rope_theta":1000000},"attention_bias":false,"rms_norm_eps":1e-6}"#,
    r#"{"model_type":"llama","vocab_size":1,"hidden_size":2,"intermediate_size":1,"num_hidden_layers":1,"num_attention_heads":1,"rope_scaling":{"type":"dynamic","factor":2.0}}"#,
];

/// RULER JSONL: samples generated by momentkv-ruler for the tasks that need no data files, and
/// hand-made lines (no index, no length, extra fields, an empty line).
pub fn jsonl_seeds(pool: &SeedPool) -> Vec<Vec<u8>> {
    let mut seeds = pool.jsonl.clone();
    let count = |text: &str| text.split_whitespace().count();
    for task in [Task::Vt, Task::Fwe, Task::NiahMultikey3] {
        let samples: Vec<_> = (0..2)
            .filter_map(|index| generate(task, 400, 1, index, &Sources::default(), &count).ok())
            .collect();
        let mut bytes = Vec::new();
        if !samples.is_empty() && write_jsonl(&samples, &mut bytes).is_ok() {
            seeds.push(bytes);
        }
    }
    seeds.push(
        br#"{"index": 0, "input": "What is the pass key? The pass key is 12345.", "outputs": ["12345"], "length": 20}
{"input": "no index, no length", "outputs": [], "others": {"x": 1}, "pred": "y"}

{"index": 3, "input": "caf\u00e9\n", "outputs": ["a", "b"], "length": null}
"#
        .to_vec(),
    );
    seeds
}

/// Policy specs: every registered policy by name and alias, and with each of its parameters at
/// its default and at both ends of its range.
pub fn policy_seeds() -> Vec<Vec<u8>> {
    let mut specs: Vec<String> = Vec::new();
    let scorers: Vec<&str> = POLICIES
        .iter()
        .filter(|e| e.plain_scorer)
        .map(|e| e.name)
        .collect();
    for entry in POLICIES {
        specs.push(entry.name.to_string());
        specs.push(format!("{}+moments", entry.name));
        specs.extend(entry.aliases.iter().map(|a| a.to_string()));
        for p in entry.params.iter().chain(COMMON_PARAMS) {
            let values: Vec<String> = match p.kind {
                Kind::Count { default, min, max } | Kind::Odd { default, min, max } => {
                    vec![default.to_string(), min.to_string(), max.to_string()]
                }
                Kind::Chosen { min, max } => vec![min.to_string(), max.to_string()],
                Kind::Real { default, min, max } => {
                    vec![default.to_string(), min.to_string(), max.to_string()]
                }
                Kind::Flag { default } => vec![default.to_string(), (!default).to_string()],
                Kind::Scorer { default } => std::iter::once(default)
                    .chain(scorers.iter().copied())
                    .map(str::to_string)
                    .collect(),
                Kind::Choice { choices, .. } => choices.iter().map(|c| c.to_string()).collect(),
            };
            let moments = if matches!(p.key, "order" | "segment") {
                "+moments"
            } else {
                ""
            };
            for v in values {
                specs.push(format!("{}{moments}:{}={v}", entry.name, p.key));
            }
        }
    }
    specs.extend(
        [
            "snapkv+moments:window=32,kernel=7,sinks=2,recent=8,order=2,segment=16",
            "adakv:scorer=expected,alpha=0.2,n_future=16,epsilon=0.01",
            " SnapKV : window = 32 , ",
            "h2o:recent_share=0.25,normalize=true",
            "momentkv:correct=false,refine=2",
            "full",
            "",
            ":",
            "snapkv:window",
        ]
        .map(str::to_string),
    );
    specs.into_iter().map(String::into_bytes).collect()
}

/// RULER's data files in miniature: the essays JSON, SQuAD and HotpotQA JSON, a word list.
pub fn ruler_data_seeds() -> Vec<Vec<u8>> {
    [
        r#"{"text": "One sentence here.  Another one!\n\nAnd a third? Yes. Mr. Smith went to Washington."}"#,
        r#"{"data":[{"title":"T","paragraphs":[{"context":"Paris is in France.","qas":[{"question":"Where is Paris?","answers":[{"text":"France","answer_start":12}],"is_impossible":false},{"question":"Why?","answers":[],"is_impossible":true}]},{"context":"Rome is in Italy.","qas":[{"question":"Where is Rome?","answers":[{"text":"Italy"},{"text":"Italy"}]}]}]}],"version":"v2.0"}"#,
        r#"[{"_id":"1","question":"Which came first?","answer":"A","type":"comparison","context":[["Title A",["Sentence one. ","Sentence two."]],["Title B",["Other."]]],"supporting_facts":[["Title A",0]]}]"#,
        "happy\nsad  \n\nbig\r\nsmall\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handmade_gguf_files_parse() {
        for (i, bytes) in handmade_gguf().into_iter().enumerate() {
            let file = GgufFile::from_bytes(format!("handmade-{i}.gguf"), bytes)
                .unwrap_or_else(|e| panic!("hand-made GGUF #{i}: {e}"));
            for t in file.tensors() {
                if t.ty.can_dequantize() {
                    file.dequantize(&t.name).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_gguf_file_written_back_reads_the_same() {
        let bytes = handmade_gguf().swap_remove(0);
        let file = GgufFile::from_bytes("a.gguf", bytes).unwrap();
        let again = GgufFile::from_bytes("b.gguf", reduce_gguf(&file)).unwrap();
        assert_eq!(file.tensors().len(), again.tensors().len());
        for key in file.metadata().keys() {
            assert_eq!(file.metadata().get(key), again.metadata().get(key), "{key}");
        }
        for (a, b) in file.tensors().iter().zip(again.tensors()) {
            assert_eq!(file.bytes_of(a).unwrap(), again.bytes_of(b).unwrap());
        }
    }
}
