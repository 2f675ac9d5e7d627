//! The `momentkv` binary as a user runs it, on the tiny fixture checkpoint.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_momentkv"));
    command.args(args).env(
        "MOMENTKV_HOME",
        std::env::temp_dir().join("momentkv-cli-test-home"),
    );
    command
}

fn momentkv(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Bytes the fixture's cache holds per token: 2 layers × 2 KV heads × (keys and values of 16 f32,
/// plus 4 bytes of position and 1 of validity).
const SLOT_BYTES: u64 = 2 * 2 * (2 * 16 * 4 + 5);

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
    let fed_back = tokens.len() as u64 - u64::from(!report["stopped"].as_bool().unwrap());
    let cached = report["prompt_tokens"].as_u64().unwrap() + fed_back;
    assert_eq!(
        report["kv_cache_bytes"].as_u64().unwrap(),
        cached * SLOT_BYTES
    );
    assert_eq!(report["policy"], "full");
    assert_eq!(report["evicted_tokens"], 0);
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
    assert_eq!(report["kv_cache_bytes"].as_u64().unwrap(), 35 * SLOT_BYTES);
}

#[test]
fn generate_evicts_to_the_budget_and_bench_sweeps_budgets() {
    let model = fixture("llama-tied");
    let model = model.to_str().unwrap();
    let prompt = "the quick brown fox jumps over the lazy dog ".repeat(4);
    let out = momentkv(&[
        "generate",
        "--model",
        model,
        "--prompt",
        &prompt,
        "--max-new-tokens",
        "5",
        "--policy",
        "knorm",
        "--budget",
        "16",
        "--evict-during",
        "prefill,decode",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prompt_tokens = report["prompt_tokens"].as_u64().unwrap();
    assert!(prompt_tokens > 16, "{report}");
    // Held at the budget through decoding: 16 slots per head; KNorm keeps no query buffer.
    assert_eq!(report["kv_cache_bytes"].as_u64().unwrap(), 16 * SLOT_BYTES);
    let fed = prompt_tokens + report["tokens"].as_array().unwrap().len() as u64 - 1;
    assert_eq!(
        report["evicted_tokens"].as_u64().unwrap(),
        (fed - 16) * 2 * 2
    );
    assert_eq!(report["policy"], "knorm");

    let out = momentkv(&[
        "bench",
        "--model",
        model,
        "--prompt-len",
        "48",
        "--gen",
        "8",
        "--warmup",
        "0",
        "--policy",
        "knorm",
        "--budgets",
        "8,16",
        "--evict-during",
        "decode",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let runs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bytes: Vec<u64> = runs
        .iter()
        .map(|r| r["kv_cache_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(runs[0]["cache"], "full");
    assert_eq!(
        bytes,
        vec![(48 + 7) * SLOT_BYTES, 8 * SLOT_BYTES, 16 * SLOT_BYTES]
    );
}

#[test]
fn a_budget_covering_the_prompt_says_nothing_was_evicted() {
    let model = fixture("llama-tied");
    let out = momentkv(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "The quick brown",
        "--max-new-tokens",
        "2",
        "--policy",
        "snapkv",
        "--budget",
        "500",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("evicted nothing") && err.contains("500 tokens"),
        "{err}"
    );
}

#[test]
fn policies_lists_every_policy_with_its_parameters() {
    use momentkv::cache::{COMMON_PARAMS, POLICIES};
    let out = momentkv(&["policies"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // The workspace's tests build the registry's test-only policy too: it is listed like the rest.
    assert!(POLICIES.iter().any(|p| p.name == "probe"));
    for entry in POLICIES {
        assert!(
            text.lines().any(|l| l.starts_with(entry.name)),
            "{} missing:\n{text}",
            entry.name
        );
        for param in entry.params.iter().chain(COMMON_PARAMS) {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{} ", param.key)))
                .unwrap_or_else(|| panic!("{} missing:\n{text}", param.key));
            assert!(line.contains(&param.range_text()), "{line}");
        }
    }
    assert!(
        text.contains("+moments"),
        "the moment correction is not listed"
    );
}

#[test]
fn analyze_reports_every_layer_and_counts_the_moments() {
    let dir = std::env::temp_dir().join("momentkv-cli-analyze");
    std::fs::create_dir_all(&dir).unwrap();
    let prompt = dir.join("prompt.txt");
    std::fs::write(
        &prompt,
        "the quick brown fox jumps over the lazy dog ".repeat(6),
    )
    .unwrap();
    let plot = dir.join("error.svg");
    let _ = std::fs::remove_file(&plot);
    let model = fixture("llama-tied");
    let out = momentkv(&[
        "analyze",
        "--model",
        model.to_str().unwrap(),
        "--prompt-file",
        prompt.to_str().unwrap(),
        "--queries",
        "4",
        "--policy",
        "knorm;knorm+moments",
        "--budget",
        "8",
        "--json",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let runs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 2);
    for run in &runs {
        let layers = run["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "{run}");
        for l in layers {
            let (err, mass) = (
                l["rel_error"].as_f64().unwrap(),
                l["evicted_mass"].as_f64().unwrap(),
            );
            assert!(
                err > 0.0 && err.is_finite() && mass > 0.0 && mass < 1.0,
                "{l}"
            );
            assert!(
                l["estimate_cosine"].as_f64().unwrap().abs() <= 1.0 + 1e-5,
                "{l}"
            );
        }
        assert_eq!(run["measured_tokens"], 4);
    }
    // KNorm evicts 95% of the attention mass here; the moments recover most of it.
    let error = |r: &serde_json::Value| r["mean_rel_error"].as_f64().unwrap();
    assert!(error(&runs[1]) < 0.5 * error(&runs[0]), "{runs:?}");
    // The same eviction, plus d² + 2d + 1 floats of moments per layer and KV head.
    let bytes = |r: &serde_json::Value| r["kv_cache_bytes"].as_u64().unwrap();
    assert_eq!(
        bytes(&runs[1]) - bytes(&runs[0]),
        2 * 2 * (16 * 16 + 2 * 16 + 1) * 4
    );
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 2);

    let out = momentkv(&[
        "analyze",
        "--model",
        model.to_str().unwrap(),
        "--prompt-file",
        prompt.to_str().unwrap(),
        "--queries",
        "500",
        "--policy",
        "knorm",
        "--budget",
        "8",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("needs more than --queries 500"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn perplexity_reports_the_full_cache_then_each_cell() {
    let dir = std::env::temp_dir().join("momentkv-cli-perplexity");
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("text.txt");
    // 122 tokens of the fixture's tokenizer.
    std::fs::write(
        &text,
        "the quick brown fox jumps over the lazy dog ".repeat(4),
    )
    .unwrap();
    let plot = dir.join("delta.svg");
    let _ = std::fs::remove_file(&plot);
    let model = fixture("llama-tied");
    let args = |extra: &[&str]| {
        let mut args = vec![
            "perplexity",
            "--model",
            model.to_str().unwrap(),
            "--text",
            text.to_str().unwrap(),
            "--policy",
            "streaming;knorm",
            "--budget",
            "16,32",
        ];
        args.extend_from_slice(extra);
        momentkv(&args)
    };
    let out = args(&[
        "--context",
        "96",
        "--json",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let full = &lines[0];
    assert_eq!(full["policy"], "full");
    assert!(full["budget"].is_null(), "{full}");
    assert_eq!(full["delta_nll"], 0.0);
    // The prefix is the smallest budget: 80 tokens scored of 96.
    assert_eq!(full["tokens"], 80);
    assert_eq!(full["kv_cache_bytes"], 95 * SLOT_BYTES);
    let cells: Vec<(String, u64)> = lines[1..]
        .iter()
        .map(|l| {
            (
                l["policy"].as_str().unwrap().to_string(),
                l["budget"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [
        ("streaming", 16),
        ("streaming", 32),
        ("knorm", 16),
        ("knorm", 32),
    ]
    .iter()
    .map(|&(p, b)| (p.to_string(), b))
    .collect();
    assert_eq!(cells, want);
    for line in &lines[1..] {
        let (nll, full_nll) = (
            line["nll"].as_f64().unwrap(),
            line["nll_full"].as_f64().unwrap(),
        );
        assert!(nll.is_finite() && (nll - full_nll).abs() > 1e-4, "{line}");
        assert_eq!(full_nll, full["nll"].as_f64().unwrap());
        let ratio = line["ppl_ratio"].as_f64().unwrap();
        assert!((ratio - line["delta_nll"].as_f64().unwrap().exp()).abs() < 1e-9);
        assert!(!line["buckets"].as_array().unwrap().is_empty(), "{line}");
    }
    assert_eq!(lines[1]["kv_cache_bytes"], 16 * SLOT_BYTES);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert_eq!(
        svg.matches("<polyline").count(),
        3,
        "full, streaming, knorm"
    );

    let out = args(&["--context", "96"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("| policy | budget | NLL | ΔNLL | PPL ratio | KV bytes |"),
        "{table}"
    );
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(rows[1].starts_with("| full | - |"), "{table}");
    assert_eq!(rows.len(), 6, "{table}");

    for (extra, error) in [
        (&["--context", "500"][..], "fewer than the context of 500"),
        (
            &["--context", "96", "--evict-during", "chunked"][..],
            "decode[=K]",
        ),
    ] {
        let out = args(extra);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(error), "{}", stderr(&out));
    }
}

#[test]
fn eval_scores_ruler_samples_resumes_and_summarises() {
    let dir = std::env::temp_dir().join("momentkv-cli-eval");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Two samples in RULER's JSONL layout, short enough for the fixture's 256-token window with
    // qa's 32 answer tokens.
    let jsonl = dir.join("niah.jsonl");
    let line = |key: &str, value: &str| {
        serde_json::json!({
            "index": 0,
            "input": format!(
                "A special magic number is hidden within the following text.\nThe grass is \
                 green.\nOne of the special magic numbers for {key} is: {value}.\nThe sky is \
                 blue.\nWhat is the special magic number for {key}? The number is"
            ),
            "outputs": [value],
        })
        .to_string()
    };
    std::fs::write(
        &jsonl,
        format!(
            "{}\n{}\n",
            line("red-fox", "4821"),
            line("blue-owl", "7310")
        ),
    )
    .unwrap();
    let out_dir = dir.join("out");
    let model = fixture("llama-tied");
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--ruler-jsonl",
        jsonl.to_str().unwrap(),
        "--tasks",
        "qa_1",
        "--samples",
        "2",
        "--policies",
        "knorm;snapkv:window=8",
        "--budgets",
        "16,32",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = momentkv(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = std::fs::read_to_string(out_dir.join("results.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = results
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 2 samples × (full + 2 policies × 2 budgets).
    assert_eq!(lines.len(), 10);
    for l in &lines {
        let score = l["score"].as_f64().unwrap();
        assert!(score == 0.0 || score == 100.0, "{l}");
        assert_eq!(l["task"], "qa_1");
        let answer = l["answer"].as_str().unwrap();
        let found = answer
            .to_lowercase()
            .contains(l["outputs"][0].as_str().unwrap());
        assert_eq!(found, score == 100.0, "{l}");
    }
    let full: Vec<_> = lines.iter().filter(|l| l["policy"] == "full").collect();
    let knorm16: Vec<_> = lines
        .iter()
        .filter(|l| l["policy"] == "knorm" && l["budget"] == 16)
        .collect();
    assert_eq!((full.len(), knorm16.len()), (2, 2));
    assert!(knorm16[0]["kv_cache_bytes"].as_u64() < full[0]["kv_cache_bytes"].as_u64());
    let summary = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("| policy | budget 16 | budget 32 |"),
        "{summary}"
    );
    assert!(summary.contains("| full |") && summary.contains("| snapkv:window=8 |"));
    let length = lines[0]["length"].as_u64().unwrap();
    let svg =
        std::fs::read_to_string(out_dir.join(format!("score-vs-budget-{length}.svg"))).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 3);

    // A second run finds every cell done and computes nothing.
    let again = momentkv(&args);
    assert!(again.status.success(), "{}", stderr(&again));
    let after = std::fs::read_to_string(out_dir.join("results.jsonl")).unwrap();
    assert_eq!(after, results);

    // A record torn mid-write is set aside, and the file stays whole lines.
    let results_path = out_dir.join("results.jsonl");
    std::fs::write(&results_path, format!("{results}{{\"task\": \"qa")).unwrap();
    let repaired = momentkv(&args);
    assert!(repaired.status.success(), "{}", stderr(&repaired));
    assert!(stderr(&repaired).contains("torn"), "{}", stderr(&repaired));
    assert_eq!(std::fs::read_to_string(&results_path).unwrap(), results);
    let torn = std::fs::read_to_string(out_dir.join("results.jsonl.torn")).unwrap();
    assert_eq!(torn, "{\"task\": \"qa\n");

    // Results computed under other settings are never reused or overwritten.
    let aware = momentkv(&[&args[..], &["--query-aware"]].concat());
    assert_eq!(aware.status.code(), Some(1));
    let err = stderr(&aware);
    assert!(
        err.contains("holds results of other settings")
            && err.contains("\"query-agnostic\" there, \"query-aware\" here"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(std::fs::read_to_string(&results_path).unwrap(), results);

    // Nor under an adapter: sweep.json records it (its directory, bytes and whether it was
    // merged), and a directory's results are resumed only under the same one.
    let sweep = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap()
    };
    assert!(sweep(&out_dir)["adapter_sha256"].is_null());
    let lora = fixture("adapters/llama-tied-lora");
    let lora = lora.to_str().unwrap();
    let adapted = momentkv(&[&args[..], &["--adapter", lora]].concat());
    assert_eq!(adapted.status.code(), Some(1));
    let err = stderr(&adapted);
    assert!(
        err.contains("adapter_merged null there, true here")
            && err.contains("adapter_sha256 null there"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&results_path).unwrap(), results);
    let adapted_dir = dir.join("adapted");
    let adapted_args: Vec<&str> = args
        .iter()
        .map(|&a| {
            if a == out_dir.to_str().unwrap() {
                adapted_dir.to_str().unwrap()
            } else {
                a
            }
        })
        .chain(["--adapter", lora])
        .collect();
    let adapted = momentkv(&adapted_args);
    assert!(adapted.status.success(), "{}", stderr(&adapted));
    let settings = sweep(&adapted_dir);
    assert_eq!(settings["adapter"], lora, "{settings}");
    assert_eq!(settings["adapter_merged"], true, "{settings}");
    assert_eq!(
        settings["adapter_sha256"].as_str().map(str::len),
        Some(64),
        "{settings}"
    );
    let answered = std::fs::read_to_string(adapted_dir.join("results.jsonl")).unwrap();
    assert_eq!(answered.lines().count(), 10);
    let side_path = momentkv(&[&adapted_args[..], &["--adapter-unmerged"]].concat());
    assert_eq!(side_path.status.code(), Some(1));
    let err = stderr(&side_path);
    assert!(
        err.contains("adapter_merged true there, false here"),
        "{err}"
    );
}

#[test]
fn eval_runs_kvpress_protocol_on_a_ruler_directory_at_compression_ratios() {
    let dir = std::env::temp_dir().join("momentkv-cli-eval-kvpress");
    let _ = std::fs::remove_dir_all(&dir);
    // RULER's layout, <task>/validation.jsonl, plus a directory named after no task.
    let ruler = dir.join("ruler");
    let write = |task: &str, input: &str, output: &str| {
        let path = ruler.join(task);
        std::fs::create_dir_all(&path).unwrap();
        let line = serde_json::json!({"index": 0, "input": input, "outputs": [output]});
        std::fs::write(path.join("validation.jsonl"), format!("{line}\n")).unwrap();
    };
    // Tasks that answer in at most 32 tokens, to fit the fixture's 256-token window.
    write(
        "vt",
        "Track the variables.\nVAR ABC = 12345\nVAR DEF = VAR ABC\nQuestion: Find all variables \
         that are assigned the value 12345 in the text above. Answer: They are: ",
        "DEF",
    );
    write(
        "qa_1",
        "Answer the question based on the given documents.\n\nDocument 1:\nThe fox is red.\n\n\
         Answer the question based on the given documents.\n\nQuestion: What color is the fox? \
         Answer:",
        "red",
    );
    write("notes", "x", "y");
    let out_dir = dir.join("out");
    let model = fixture("llama-tied");
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--ruler-jsonl",
        ruler.to_str().unwrap(),
        "--protocol",
        "kvpress",
        "--compression",
        "0.5,0.75",
        "--policies",
        "knorm",
        "--samples",
        "1",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = momentkv(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("notes: not named after a RULER task"),
        "{}",
        stderr(&out)
    );
    let results = std::fs::read_to_string(out_dir.join("results.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = results
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 2 tasks × (full + knorm at 2 ratios).
    assert_eq!(lines.len(), 6, "{results}");
    for l in &lines {
        let full = l["policy"] == "full";
        assert_eq!(l.get("compression").is_none(), full, "{l}");
        assert!(l["budget"].is_null(), "{l}");
    }
    let ratios: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.get("compression").and_then(|r| r.as_f64()))
        .collect();
    assert_eq!(ratios, [0.5, 0.75, 0.5, 0.75]);
    let tasks: Vec<&str> = lines.iter().map(|l| l["task"].as_str().unwrap()).collect();
    assert_eq!(tasks, ["vt", "vt", "vt", "qa_1", "qa_1", "qa_1"]);
    let settings = std::fs::read_to_string(out_dir.join("sweep.json")).unwrap();
    assert!(
        settings.contains("\"protocol\": \"kvpress query-agnostic\""),
        "{settings}"
    );
    assert!(settings.contains("\"samples_sha256\": \"vt "), "{settings}");
    let summary = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("| policy | compression 0.5 | compression 0.75 |"),
        "{summary}"
    );
    let length = lines[0]["length"].as_u64().unwrap();
    assert!(out_dir
        .join(format!("score-vs-compression-{length}.svg"))
        .is_file());
    assert!(!out_dir
        .join(format!("score-vs-budget-{length}.svg"))
        .exists());

    // The same directory under the default protocol holds other settings.
    let default: Vec<&str> = args
        .iter()
        .map(|&a| if a == "kvpress" { "default" } else { a })
        .collect();
    let default = momentkv(&default);
    assert_eq!(default.status.code(), Some(1));
    let err = stderr(&default);
    assert!(
        err.contains("\"kvpress query-agnostic\" there, \"query-agnostic\" here"),
        "{err}"
    );

    // Bad input: one line each.
    let empty = dir.join("empty");
    std::fs::create_dir_all(empty.join("notes")).unwrap();
    std::fs::write(empty.join("notes").join("validation.jsonl"), "").unwrap();
    let one_file = ruler.join("qa_1").join("validation.jsonl");
    let base = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let cases: [(&[&str], &str); 5] = [
        (
            &["--ruler-jsonl", empty.to_str().unwrap()],
            "holds no RULER task to answer: expected <task>/validation.jsonl",
        ),
        (
            &["--compression", "1.5"],
            "compression ratio 1.5 is outside [0, 1)",
        ),
        (
            &["--compression", "-0.25"],
            "compression ratio -0.25 is outside [0, 1)",
        ),
        (
            &["--protocol", "vllm"],
            "unknown protocol 'vllm': use default or kvpress",
        ),
        (
            &["--ruler-jsonl", one_file.to_str().unwrap()],
            "belong to one task",
        ),
    ];
    for (extra, needle) in cases {
        let args = [&base[..], extra].concat();
        let out = momentkv(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn a_closed_pipe_ends_quietly_and_a_full_disk_is_an_error() {
    let model = fixture("llama-tied");
    let generate = [
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "Once upon a time",
        "--max-new-tokens",
        "30",
    ];
    for args in [&["policies"][..], &generate[..]] {
        // The reader is gone before the command writes anything.
        let mut child = command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{args:?}: {}", stderr(&out));

        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = command(args).stdout(full).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("error: standard output: No space left on device"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn bad_cache_options_are_refused_by_name() {
    let model = fixture("llama-tied");
    let model = model.to_str().unwrap();
    let base = ["generate", "--model", model, "--prompt", "x"];
    let cases: [(&[&str], &str); 10] = [
        (&["--policy", "full+moments"], "no moments to keep"),
        (
            &["--policy", "streaming:sinks=4,recent=8", "--budget", "8"],
            "protects 12 tokens (sinks 4 + recent 8), more than --budget 8",
        ),
        (&["--budget", "8"], "'full' keeps every token"),
        (&["--policy", "pyramidkv:beta=0", "--budget", "8"], "beta"),
        (
            &["--policy", "lru", "--budget", "8"],
            "unknown policy 'lru'",
        ),
        (
            &["--policy", "snapkv:windw=4", "--budget", "8"],
            "no parameter 'windw'",
        ),
        (&["--policy", "snapkv", "--budget", "0"], "budget of 0"),
        (
            &["--policy", "snapkv", "--compression", "1.5"],
            "outside [0, 1)",
        ),
        (&["--policy", "snapkv"], "give --budget N"),
        (
            &[
                "--policy",
                "knorm",
                "--budget",
                "8",
                "--evict-during",
                "later",
            ],
            "'later'",
        ),
    ];
    for (extra, needle) in cases {
        let args = [&base[..], extra].concat();
        let out = momentkv(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn errors_are_one_line_and_name_the_problem() {
    let cases: [(&[&str], &str); 6] = [
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
        (
            &["generate", "--prompt", "x", "--temperature", "nan"],
            "NaN is not a temperature",
        ),
        (
            &["generate", "--prompt", "x", "--temperature", "-1"],
            "-1 is not a temperature",
        ),
    ];
    for (args, needle) in cases {
        let out = momentkv(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Asking for help is not an error.
    assert_eq!(momentkv(&["generate", "--help"]).status.code(), Some(0));
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

/// `--adapter` applies a LoRA adapter in PEFT's layout (tests/fixtures/adapters, made by PEFT) at
/// load, to every command that takes `--model`: it changes what the model generates and scores,
/// merged and as a side path alike, and the `--json` reports record it. A missing directory, an
/// adapter for other shapes and `--adapter-unmerged` alone are refused.
#[test]
fn adapters_apply_merged_or_as_a_side_path() {
    let model = fixture("llama-tied");
    let model = model.to_str().unwrap();
    let lora = fixture("adapters/llama-tied-lora");
    let lora = lora.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = momentkv(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };

    let generate = |extra: &[&str]| {
        let prompt = "the quick brown fox jumps over the lazy dog";
        let args = [
            "generate",
            "--model",
            model,
            "--prompt",
            prompt,
            "--max-new-tokens",
            "8",
            "--json",
        ];
        serde_json::from_str::<serde_json::Value>(&run(&[&args[..], extra].concat())).unwrap()
    };
    let base = generate(&[]);
    let merged = generate(&["--adapter", lora]);
    let side_path = generate(&["--adapter", lora, "--adapter-unmerged"]);
    // The tiny model soon repeats one token; under the adapter it switches to it a step later.
    assert_ne!(merged["tokens"], base["tokens"]);
    assert_eq!(side_path["tokens"], merged["tokens"]);
    assert!(base["adapter"].is_null(), "{base}");
    assert_eq!(
        merged["adapter"],
        serde_json::json!({"dir": lora, "merged": true})
    );
    assert_eq!(
        side_path["adapter"],
        serde_json::json!({"dir": lora, "merged": false})
    );

    let bench = run(&[
        "bench",
        "--model",
        model,
        "--adapter",
        lora,
        "--prompt-len",
        "16",
        "--gen",
        "2",
        "--warmup",
        "0",
        "--json",
    ]);
    let bench: serde_json::Value = serde_json::from_str(&bench).unwrap();
    assert_eq!(bench["adapter"], merged["adapter"]);

    let dir = std::env::temp_dir().join("momentkv-cli-adapter");
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("text.txt");
    std::fs::write(
        &text,
        "the quick brown fox jumps over the lazy dog ".repeat(2),
    )
    .unwrap();
    let full_cache_nll = |extra: &[&str]| {
        let args = [
            "perplexity",
            "--model",
            model,
            "--text",
            text.to_str().unwrap(),
            "--context",
            "48",
            "--policy",
            "knorm",
            "--budget",
            "16",
            "--json",
        ];
        let out = run(&[&args[..], extra].concat());
        let full: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(full["policy"], "full");
        full["nll"].as_f64().unwrap()
    };
    let base = full_cache_nll(&[]);
    let merged = full_cache_nll(&["--adapter", lora]);
    let side_path = full_cache_nll(&["--adapter", lora, "--adapter-unmerged"]);
    assert!(
        (merged - base).abs() > 1e-2,
        "NLL {base} without, {merged} with"
    );
    assert!(
        (side_path - merged).abs() < 1e-3,
        "NLL {merged} merged, {side_path} as a side path"
    );

    let missing = fixture("adapters/no-such-lora");
    let qwen3 = fixture("qwen3");
    let cases = [
        (
            model,
            missing.to_str().unwrap(),
            "no-such-lora: is not a directory",
        ),
        (
            qwen3.to_str().unwrap(),
            lora,
            "k_proj.lora_B.weight is [32, 4], the model needs [48, 4]",
        ),
    ];
    for (model, adapter, needle) in cases {
        let args = [
            "generate",
            "--model",
            model,
            "--adapter",
            adapter,
            "--prompt",
            "x",
        ];
        let out = momentkv(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    let args = [
        "generate",
        "--model",
        model,
        "--adapter-unmerged",
        "--prompt",
        "x",
    ];
    let out = momentkv(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--adapter <DIR>"), "{}", stderr(&out));
}

/// `finetune` on the tiny checkpoint: 3 LoRA steps on a repeated sentence, the JSON summary's
/// keys, the adapter in PEFT's layout, the loss curve and the checkpoint in `--out`; a second
/// fresh run into the same directory is refused, and `--resume` of the finished run reports it.
#[test]
fn finetune_saves_a_peft_adapter_and_reports_json() {
    let dir = std::env::temp_dir().join("momentkv-cli-finetune");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // About 240 tokens of the fixture's tokenizer: 7 windows of 32.
    let data = dir.join("train.txt");
    std::fs::write(
        &data,
        "the quick brown fox jumps over the lazy dog ".repeat(8),
    )
    .unwrap();
    let out = dir.join("run");
    let model = fixture("llama-tied");
    let finetune = |extra: &[&str]| {
        let mut args = vec![
            "finetune",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--eval-data",
            data.to_str().unwrap(),
            "--steps",
            "3",
            "--batch",
            "2",
            "--seq-len",
            "32",
            "--lr",
            "1e-2",
            "--lora-rank",
            "4",
            "--lora-targets",
            "q_proj,v_proj,down_proj",
            "--save-every",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        momentkv(&args)
    };
    let run = finetune(&[]);
    assert!(run.status.success(), "{}", stderr(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for key in [
        "steps",
        "train_loss_first",
        "train_loss_last",
        "eval_loss_start",
        "eval_loss_end",
        "tokens_per_s",
        "peak_memory_bytes",
    ] {
        assert!(report.get(key).is_some(), "missing {key} in {report}");
    }
    assert_eq!(report["steps"], 3);
    for key in [
        "train_loss_first",
        "train_loss_last",
        "eval_loss_start",
        "eval_loss_end",
    ] {
        assert!(report[key].as_f64().unwrap().is_finite(), "{report}");
    }
    assert!(report["tokens_per_s"].as_f64().unwrap() > 0.0, "{report}");
    for file in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "loss.svg",
        "checkpoint/latest",
        "checkpoint/step-000003/optimizer.mpk",
    ] {
        assert!(out.join(file).is_file(), "{file} is missing");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["r"], 4);
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["q_proj", "v_proj", "down_proj"])
    );

    let again = finetune(&[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already holds a checkpoint of step 3: pass --resume"),
        "{}",
        stderr(&again)
    );
    let resumed = finetune(&["--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    let resumed: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(resumed["resumed_from"], 3);
    assert_eq!(resumed["train_loss_last"], report["train_loss_last"]);
}

/// Bad input to `finetune` is a one-line error naming the cause, exit 1, before any training.
#[test]
fn finetune_refuses_bad_input_in_one_line() {
    let dir = std::env::temp_dir().join("momentkv-cli-finetune-bad");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("train.txt");
    std::fs::write(
        &data,
        "the quick brown fox jumps over the lazy dog ".repeat(8),
    )
    .unwrap();
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let a_file = dir.join("not-a-directory");
    std::fs::write(&a_file, "").unwrap();
    let model = fixture("llama-tied");
    let (model, data, empty, a_file) = (
        model.to_str().unwrap(),
        data.to_str().unwrap(),
        empty.to_str().unwrap(),
        a_file.to_str().unwrap(),
    );
    let out = dir.join("run");
    let out = out.to_str().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (
            &["--data", "/nonexistent/train.txt", "--out", out],
            "/nonexistent/train.txt: no such file",
        ),
        (&["--data", empty, "--out", out], "empty.txt: is empty"),
        (
            &["--data", data, "--out", out, "--seq-len", "1"],
            "seq_len (1) must be at least 2",
        ),
        (
            &["--data", data, "--out", out, "--steps", "0"],
            "steps (0) must be at least 1",
        ),
        (
            &["--data", data, "--out", a_file],
            "cannot create the directory",
        ),
        (
            &["--data", data, "--out", out, "--resume"],
            "holds no checkpoint to resume from",
        ),
        (
            &[
                "--data",
                data,
                "--out",
                out,
                "--lora-targets",
                "q_proj,lm_head",
            ],
            "unknown adapter target \"lm_head\"",
        ),
        (
            &["--data", data, "--out", out, "--seq-len", "300"],
            "exceeds the model's context window of 256",
        ),
        (
            &["--data", data, "--out", out, "--seq-len", "250"],
            "shorter than one window of seq_len = 250",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["finetune", "--model", model];
        args.extend_from_slice(extra);
        if !extra.contains(&"--steps") {
            args.extend_from_slice(&["--steps", "2"]);
        }
        let run = momentkv(&args);
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
    }
}
