//! GGUF dequantization against llama.cpp's own `gguf` Python package: one tensor of each
//! supported type (tests/fixtures/gguf/quants.gguf) and gguf-py's f32 values for it; and the
//! errors a broken or unsupported file gets.

use crate::common::{fixture, reference};
use momentkv::gguf::{GgufError, GgufFile};

#[test]
fn every_supported_type_matches_gguf_py() {
    let file = GgufFile::open(fixture("gguf/quants.gguf")).unwrap();
    let expected = fixture("gguf/quants-expected.safetensors");
    for name in [
        "f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q8_0", "q4_k", "q6_k",
    ] {
        let (shape, values) = file.dequantize(name).unwrap();
        let (want_shape, want) = reference(&expected, name);
        assert_eq!(shape, want_shape, "{name}: shape");
        let want = want.as_slice::<f32>().unwrap();
        let worst = values
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max);
        // gguf-py computes in f32 too; only operation order may differ.
        assert!(worst <= 1e-6, "{name}: max relative difference {worst:e}");
        assert!(values.iter().any(|&v| v != 0.0), "{name}: all zeros");
    }
}

#[test]
fn unsupported_quant_type_names_tensor_and_type() {
    let file = GgufFile::open(fixture("gguf/quants.gguf")).unwrap();
    let err = file.dequantize("q2_k").unwrap_err().to_string();
    assert!(err.contains("q2_k") && err.contains("Q2_K"), "{err}");
}

#[test]
fn truncated_file_is_reported_not_panicked() {
    let bytes = std::fs::read(fixture("gguf/quants.gguf")).unwrap();
    let dir = std::env::temp_dir().join(format!("momentkv-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Cut inside the header, inside the metadata, and inside the tensor data.
    for cut in [10, 200, bytes.len() - 100] {
        let path = dir.join(format!("cut-{cut}.gguf"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = GgufFile::open(&path)
            .err()
            .expect("a truncated file must not open");
        assert!(
            matches!(err, GgufError::Corrupt { .. }),
            "cut at {cut}: {err}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
    let not_gguf = dir.join("not.gguf");
    std::fs::write(&not_gguf, b"PK\x03\x04 this is a zip").unwrap();
    assert!(matches!(
        GgufFile::open(&not_gguf),
        Err(GgufError::NotGguf { .. })
    ));
    let missing = dir.join("missing.gguf");
    assert!(matches!(
        GgufFile::open(&missing),
        Err(GgufError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}
