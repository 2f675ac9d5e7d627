//! Helpers shared by the integration tests: fixture paths, reference tensors, and a macro that
//! runs one test body on every backend compiled in.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::{Tensor, TensorData, Tolerance};
use momentkv::cache::{FullCache, KvCache, Phase};
use momentkv::kernels::KernelBackend;
use momentkv::load::load;
use momentkv::transformer::Transformer;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A scratch directory, removed on drop; each has its own directory, so tests running in
/// parallel do not share one.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// An empty scratch directory.
    pub fn new(name: &str) -> Self {
        static COPIES: AtomicUsize = AtomicUsize::new(0);
        let copy = COPIES.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "momentkv-test-{}-{}-{copy}",
            name.replace('/', "-"),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// A copy of the files of the fixture directory `name`.
    pub fn copy_of(name: &str) -> Self {
        let scratch = Self::new(name);
        for entry in std::fs::read_dir(fixture(name)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, scratch.0.join(path.file_name().unwrap())).unwrap();
        }
        scratch
    }

    /// Rewrites the JSON file `file` of this directory through `edit`.
    pub fn edit_json(&self, file: &str, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = self.0.join(file);
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(&path, json.to_string()).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A tensor of a `safetensors` file written by the fixture script.
pub fn reference(path: &Path, name: &str) -> (Vec<usize>, TensorData) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = file.tensor(name).unwrap();
    let shape = view.shape().to_vec();
    let data = match view.dtype() {
        safetensors::Dtype::F32 => TensorData::new(
            view.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect::<Vec<_>>(),
            shape.clone(),
        ),
        safetensors::Dtype::I64 => TensorData::new(
            view.data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                .collect::<Vec<_>>(),
            shape.clone(),
        ),
        other => panic!("unexpected dtype {other:?}"),
    };
    (shape, data)
}

/// Token ids `[batch][seq]` of a reference file's `input_ids`.
pub fn input_ids(path: &Path) -> Vec<Vec<u32>> {
    let (shape, data) = reference(path, "input_ids");
    data.iter::<i64>()
        .map(|id| id as u32)
        .collect::<Vec<_>>()
        .chunks(shape[1])
        .map(<[u32]>::to_vec)
        .collect()
}

/// Asserts `got` equals `want` to an absolute tolerance, naming `what` on failure.
pub fn assert_close<B: KernelBackend, const D: usize>(
    got: Tensor<B, D>,
    want: &TensorData,
    tol: f32,
    what: &str,
) {
    let got = got.into_data().convert::<f32>();
    let (g, w) = (
        got.as_slice::<f32>().unwrap(),
        want.as_slice::<f32>().unwrap(),
    );
    assert_eq!(got.shape, want.shape, "{what}: shape");
    let worst = g
        .iter()
        .zip(w)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= tol,
        "{what}: max |difference| {worst:e} exceeds {tol:e}"
    );
    // Also through burn's own comparison, which checks NaNs the same way.
    got.assert_approx_eq::<f32>(want, Tolerance::absolute(tol));
}

/// Logits `[batch, seq, vocab]` of one full forward pass over `tokens`.
pub fn logits<B: KernelBackend>(model: &Transformer<B>, tokens: &[Vec<u32>]) -> Tensor<B, 3> {
    let layers = model.config().num_hidden_layers;
    let hidden = model
        .forward(tokens, Phase::Prefill, &mut FullCache::new(layers))
        .unwrap();
    model.logits(hidden)
}

/// The logits of `checkpoint` (a fixture directory or GGUF file) on the input ids of
/// `reference_dir/reference.safetensors` equal transformers' logits stored there.
pub fn check_logits<B: KernelBackend>(
    checkpoint: &str,
    reference_dir: &str,
    device: B::Device,
    tol: f32,
) {
    let model = load::<B>(&fixture(checkpoint), &device).unwrap();
    let refs = fixture(reference_dir).join("reference.safetensors");
    let (_, want) = reference(&refs, "logits");
    assert_close(
        logits(&model.transformer, &input_ids(&refs)),
        &want,
        tol,
        checkpoint,
    );
}

/// Prefill in chunks of 7, 9 and 1, then decoding one token at a time, gives every position of
/// `checkpoint`'s reference input the logits of one full forward pass.
pub fn check_cached_generation<B: KernelBackend>(checkpoint: &str, device: B::Device, tol: f32) {
    let model = load::<B>(&fixture(checkpoint), &device).unwrap();
    let tokens = input_ids(&fixture(checkpoint).join("reference.safetensors"));
    let full = logits(&model.transformer, &tokens);
    let seq = tokens[0].len();
    let mut cache = FullCache::new(model.transformer.config().num_hidden_layers);
    let mut start = 0;
    for len in [7, 9, 1].into_iter().chain(std::iter::repeat(1)) {
        if start == seq {
            break;
        }
        let chunk: Vec<Vec<u32>> = tokens
            .iter()
            .map(|row| row[start..start + len].to_vec())
            .collect();
        let hidden = model
            .transformer
            .forward(&chunk, Phase::Prefill, &mut cache)
            .unwrap();
        let want = full.clone().narrow(1, start, len).into_data();
        let what = format!("{checkpoint} positions {start}..{}", start + len);
        assert_close(model.transformer.logits(hidden), &want, tol, &what);
        start += len;
    }
    assert_eq!(KvCache::<B>::seen(&cache), seq);
}

/// The wgpu device, after checking once that it is a real Vulkan adapter (Mesa's lavapipe on CI
/// machines), not a silent fallback to OpenGL.
#[cfg(feature = "wgpu")]
pub fn wgpu_device() -> burn::backend::wgpu::WgpuDevice {
    use burn::backend::wgpu::{graphics::Vulkan, init_setup, RuntimeOptions, WgpuDevice};
    static ADAPTER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let device = WgpuDevice::DefaultDevice;
    let adapter = ADAPTER.get_or_init(|| {
        let setup = init_setup::<Vulkan>(&device, RuntimeOptions::default());
        let info = setup.adapter.get_info();
        assert_eq!(
            info.backend.to_str(),
            "vulkan",
            "wgpu adapter {info:?} is not Vulkan"
        );
        format!("{} ({}, {})", info.name, info.driver, info.driver_info)
    });
    eprintln!("wgpu adapter: {adapter}");
    device
}

/// Whether a CUDA device is present, so that the CUDA test `test` runs where it can. Where it
/// cannot, the test passes without having run: this says so on the process's stderr, past the
/// harness's capture, or fails the test when `MOMENTKV_REQUIRE_CUDA` is set (to anything but
/// empty or `0`).
pub fn cuda_available(test: &str) -> bool {
    if Path::new("/dev/nvidia0").exists() {
        return true;
    }
    let message = format!("{test} did not run: no CUDA device (/dev/nvidia0) on this machine");
    let required = std::env::var("MOMENTKV_REQUIRE_CUDA").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(!required, "{message}, and MOMENTKV_REQUIRE_CUDA is set");
    let _ = writeln!(
        std::io::stderr(),
        "NOT RUN: {message} (MOMENTKV_REQUIRE_CUDA=1 makes this a failure)"
    );
    false
}

/// Instantiates `fn name<B: KernelBackend>(device: B::Device, tol: f32)` bodies once per compiled
/// backend, with the tolerance each gets: 1e-4 on CPU backends, 1e-3 on GPUs.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        #[cfg(feature = "ndarray")]
        mod ndarray {
            $( #[test] fn $name() { super::$name::<burn::backend::NdArray>(Default::default(), 1e-4) } )*
        }
        #[cfg(feature = "flex")]
        mod flex {
            $( #[test] fn $name() { super::$name::<burn::backend::Flex>(Default::default(), 1e-4) } )*
        }
        #[cfg(feature = "wgpu")]
        mod wgpu {
            $( #[test] fn $name() { super::$name::<burn::backend::Wgpu>($crate::common::wgpu_device(), 1e-3) } )*
        }
        #[cfg(feature = "cuda")]
        mod cuda {
            $( #[test] fn $name() {
                let test = format!("{}::{}", module_path!(), stringify!($name));
                if $crate::common::cuda_available(&test) {
                    super::$name::<burn::backend::Cuda>(Default::default(), 1e-3)
                }
            } )*
        }
    };
}
