//! The `momentkv-fuzz` command as CI runs it. (Being an integration test, this file also makes
//! `cargo test --no-run` build the binary into the target directory.)

use std::path::PathBuf;
use std::process::Command;

fn fuzz(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_momentkv-fuzz"))
        .args(args)
        .output()
        .expect("momentkv-fuzz runs")
}

#[test]
fn a_short_run_prints_one_line_per_target_and_succeeds() {
    let findings: PathBuf =
        std::env::temp_dir().join(format!("momentkv-fuzz-cli-{}", std::process::id()));
    let findings_arg = findings.display().to_string();
    let out = fuzz(&[
        "policy-spec",
        "dequant",
        "--execs",
        "100",
        "--seed",
        "7",
        "--no-home",
        "--findings",
        &findings_arg,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&findings);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["policy-spec", "dequant"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{stdout}"));
        assert!(
            line.contains("execs/s") && line.contains(" 0 findings"),
            "{line}"
        );
    }
}

#[test]
fn list_help_and_bad_arguments() {
    let list = fuzz(&["--list"]);
    assert!(list.status.success());
    let list = String::from_utf8_lossy(&list.stdout);
    for name in [
        "gguf",
        "dequant",
        "gguf-config",
        "tokenizer-gguf",
        "hf-config",
        "ruler-jsonl",
        "ruler-data",
        "policy-spec",
    ] {
        assert!(list.lines().any(|l| l.starts_with(name)), "{name}:\n{list}");
    }
    assert!(fuzz(&["--help"]).status.success());
    let bad = fuzz(&["no-such-target"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown target"));
}
