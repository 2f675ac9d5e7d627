//! The `momentkv` binary as a user runs it, on the tiny fixture checkpoint.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn momentkv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_momentkv"))
        .args(args)
        .env(
            "MOMENTKV_HOME",
            std::env::temp_dir().join("momentkv-cli-test-home"),
        )
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn generate_json_reports_tokens_text_and_speed() {
    let model = fixture("llama-tied");
    let out = momentkv(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "The quick brown",
        "--max-new-tokens",
        "6",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "model",
        "backend",
        "prompt_tokens",
        "tokens",
        "text",
        "prefill_tok_s",
        "decode_tok_s",
        "kv_cache_bytes",
    ] {
        assert!(report.get(key).is_some(), "missing {key} in {report}");
    }
    let tokens = report["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty() && tokens.len() <= 6);
    assert!(report["prompt_tokens"].as_u64().unwrap() > 0);
    // Every token fed to the model is cached: the prompt and each generated token but the last,
    // unless a stop token (sampled after it) ended the generation.
    // 2 layers × (keys + values) × 2 KV heads × 16 dims × 4 bytes per cached token.
    let fed_back = tokens.len() as u64 - u64::from(!report["stopped"].as_bool().unwrap());
    let cached = report["prompt_tokens"].as_u64().unwrap() + fed_back;
    assert_eq!(
        report["kv_cache_bytes"].as_u64().unwrap(),
        cached * 2 * 2 * 2 * 16 * 4
    );
}

#[test]
fn greedy_generation_is_deterministic_and_streams_the_same_text() {
    let model = fixture("llama-tied.gguf");
    let args = [
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "Attention is",
        "--max-new-tokens",
        "8",
    ];
    let json = momentkv(&[&args[..], &["--json"]].concat());
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let streamed = momentkv(&args);
    assert!(streamed.status.success(), "{}", stderr(&streamed));
    let text = String::from_utf8(streamed.stdout).unwrap();
    assert_eq!(
        text.trim_end_matches('\n'),
        report["text"].as_str().unwrap()
    );
}

#[test]
fn sampling_with_a_seed_is_reproducible() {
    let model = fixture("llama-tied");
    let run = |seed: &str| {
        let out = momentkv(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "a",
            "--max-new-tokens",
            "8",
            "--temperature",
            "1.0",
            "--top-p",
            "0.9",
            "--seed",
            seed,
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["tokens"].clone()
    };
    assert_eq!(run("3"), run("3"));
}

#[test]
fn bench_prints_speed_and_kv_bytes() {
    let model = fixture("llama-tied");
    let out = momentkv(&[
        "bench",
        "--model",
        model.to_str().unwrap(),
        "--prompt-len",
        "32",
        "--gen",
        "4",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["prompt_tokens"], 32);
    assert_eq!(report["generated_tokens"], 4);
    assert!(report["prefill_tok_s"].as_f64().unwrap() > 0.0);
    assert_eq!(
        report["peak_kv_cache_bytes"].as_u64().unwrap(),
        35 * 2 * 2 * 2 * 16 * 4
    );
}

#[test]
fn errors_are_one_line_and_name_the_problem() {
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "generate",
                "--model",
                "/nonexistent/model.gguf",
                "--prompt",
                "x",
            ],
            "/nonexistent/model.gguf",
        ),
        (
            &["generate", "--model", "no-such-model", "--prompt", "x"],
            "smollm2-135m",
        ),
        (&["generate", "--backend", "tpu", "--prompt", "x"], "tpu"),
        (
            &[
                "generate",
                "--model",
                "../../tests/fixtures/llama-tied",
                "--prompt",
                "x",
                "--top-p",
                "1.5",
            ],
            "1.5",
        ),
    ];
    for (args, needle) in cases {
        let out = momentkv(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn fetch_lists_known_models() {
    let out = momentkv(&["fetch", "--list"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("smollm2-135m"));
}

/// `--model` works the same for every family: Qwen2 from GGUF and Qwen3 from a Hugging Face
/// directory, each with its own chat template (Qwen2.5's adds its default system prompt, so the
/// same question makes a longer prompt).
#[test]
fn qwen_checkpoints_generate_with_their_chat_templates() {
    let prompt_tokens = |model: &str| {
        let model = fixture(model);
        let out = momentkv(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "Hi",
            "--chat",
            "--max-new-tokens",
            "4",
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!report["tokens"].as_array().unwrap().is_empty());
        report["prompt_tokens"].as_u64().unwrap()
    };
    let (qwen2, qwen3) = (prompt_tokens("qwen2.gguf"), prompt_tokens("qwen3"));
    assert!(
        qwen2 > qwen3 + 10,
        "qwen2 {qwen2}, qwen3 {qwen3} prompt tokens"
    );
}
