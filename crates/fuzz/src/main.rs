//! `momentkv-fuzz`: a fuzzing harness on stable Rust for every parser that reads a file a user may
//! be handed (GGUF files and their dequantizer, model configurations from GGUF metadata and
//! `config.json`, the tokenizer rebuilt from GGUF metadata, RULER's JSONL and data files, policy
//! specs).
//!
//! No coverage instrumentation (that needs nightly or libFuzzer): inputs are mutations of real
//! files (the committed fixtures, the default model cut down, files built here), and an input
//! whose outcome (how far it got, how it failed) is new joins the corpus. Each execution runs under
//! `catch_unwind`; a panic, a single allocation above `--max-alloc-mib`, or an execution longer
//! than `--max-exec-secs` is a finding, its input written to `fuzz-findings/TARGET-<hash>.bin`.
//! The `alloc` module says how the allocation bound is checked without crashing the harness.

mod alloc;
mod mutate;
mod rng;
mod runner;
mod seeds;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use runner::{Config, DEFAULT_SECONDS};
use targets::TARGETS;

#[global_allocator]
static ALLOCATOR: alloc::Tracking = alloc::Tracking;

const USAGE: &str = "\
usage: momentkv-fuzz [TARGET...] [--execs N] [--seconds S] [--seed X] [--corpus DIR]...
                     [--findings DIR] [--max-alloc-mib N] [--abort-alloc-mib N]
                     [--max-exec-secs S] [--no-home] [--list]

Runs each TARGET (default: all, see --list) until N mutated executions or S seconds per target,
whichever comes first (10 s per target when neither is given), after one pass over its seeds,
and prints per target: executions, seconds, executions/s, findings, the largest allocation.

  --execs N            mutated executions per target
  --seconds S          seconds per target
  --seed X             the mutation stream (decimal or 0x hex; default 1): same seed, same inputs
  --corpus DIR         more seeds: DIR/TARGET-*.bin and DIR/TARGET/* for one target, other files
                       for all (so `--corpus fuzz-findings --execs 0` replays the findings);
                       GGUF files over 4 MiB are cut down to their metadata and tensor table
  --findings DIR       where offending inputs are written (default fuzz-findings)
  --max-alloc-mib N    a single allocation above N MiB is a finding (default 256)
  --abort-alloc-mib N  a single allocation above N MiB is refused, which aborts the process after
                       saving the input (default 2048)
  --max-exec-secs S    an execution running longer ends the run as a finding (default 10)
  --no-home            do not seed from the default model under $MOMENTKV_HOME

Exit status: 0 without findings, 1 with findings, 2 for bad arguments.";

enum Command {
    Run(Config),
    Help,
    List,
}

/// A flag's value: after `=` in the same argument, or the next argument.
fn value<'a>(
    flag: &str,
    inline: Option<&'a str>,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Result<&'a str, String> {
    match inline {
        Some(v) => Ok(v),
        None => rest
            .next()
            .map(String::as_str)
            .ok_or_else(|| format!("{flag} needs a value")),
    }
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag} {text:?}: not a valid number"))
}

fn seconds(flag: &str, text: &str) -> Result<f64, String> {
    let s: f64 = number(flag, text)?;
    if s.is_finite() && s >= 0.0 {
        Ok(s)
    } else {
        Err(format!("{flag} {text:?}: expected a number of seconds ≥ 0"))
    }
}

fn mib(flag: &str, text: &str) -> Result<usize, String> {
    let n: usize = number(flag, text)?;
    n.checked_mul(1 << 20)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("{flag} {text:?}: expected a positive number of MiB"))
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut config = Config {
        targets: Vec::new(),
        execs: None,
        seconds: None,
        seed: 1,
        corpus: Vec::new(),
        findings: PathBuf::from("fuzz-findings"),
        max_alloc: 256 << 20,
        abort_alloc: 2048 << 20,
        max_exec: Duration::from_secs(10),
        fixtures: seeds::fixtures_dir(),
        home: true,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (arg.as_str(), None),
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--list" => return Ok(Command::List),
            "--no-home" => config.home = false,
            "--execs" => config.execs = Some(number(flag, value(flag, inline, &mut rest)?)?),
            "--seconds" => config.seconds = Some(seconds(flag, value(flag, inline, &mut rest)?)?),
            "--seed" => {
                let text = value(flag, inline, &mut rest)?;
                config.seed = match text.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16)
                        .map_err(|_| format!("--seed {text:?}: not a valid number"))?,
                    None => number(flag, text)?,
                };
            }
            "--corpus" => config
                .corpus
                .push(PathBuf::from(value(flag, inline, &mut rest)?)),
            "--findings" => config.findings = PathBuf::from(value(flag, inline, &mut rest)?),
            "--max-alloc-mib" => config.max_alloc = mib(flag, value(flag, inline, &mut rest)?)?,
            "--abort-alloc-mib" => config.abort_alloc = mib(flag, value(flag, inline, &mut rest)?)?,
            "--max-exec-secs" => {
                let s = seconds(flag, value(flag, inline, &mut rest)?)?;
                config.max_exec = Duration::from_secs_f64(s.clamp(0.001, 1e9));
            }
            name if !name.starts_with('-') => {
                let target = targets::find(name).ok_or_else(|| {
                    format!(
                        "unknown target {name:?} (known: {})",
                        TARGETS
                            .iter()
                            .map(|t| t.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                if !config.targets.iter().any(|t| t.name == target.name) {
                    config.targets.push(target);
                }
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if config.targets.is_empty() {
        config.targets = TARGETS.iter().collect();
    }
    if config.abort_alloc < config.max_alloc {
        return Err("--abort-alloc-mib must be at least --max-alloc-mib".into());
    }
    Ok(Command::Run(config))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse_args(&args) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::List) => {
            for t in TARGETS {
                println!("{:<15} {}", t.name, t.about);
            }
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("momentkv-fuzz: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let limit = match (config.execs, config.seconds) {
        (Some(n), Some(s)) => format!("{n} executions or {s} s"),
        (Some(n), None) => format!("{n} executions"),
        (None, Some(s)) => format!("{s} s"),
        (None, None) => format!("{DEFAULT_SECONDS} s"),
    };
    println!(
        "momentkv-fuzz: seed {}, {limit} per target, a finding above a single allocation of {} \
         (refused above {}) or {:.1} s in one execution; findings go to {}",
        config.seed,
        runner::size(config.max_alloc),
        runner::size(config.abort_alloc),
        config.max_exec.as_secs_f64(),
        config.findings.display()
    );
    let reports = runner::run(&config);
    let found: u64 = reports.iter().map(|r| r.findings).sum();
    if found > 0 {
        println!(
            "momentkv-fuzz: {found} findings; inputs in {} (replay: momentkv-fuzz TARGET --corpus {} --execs 0)",
            config.findings.display(),
            config.findings.display()
        );
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, String> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse_args(&args)
    }

    #[test]
    fn arguments_parse() {
        let Ok(Command::Run(c)) = parse(
            "gguf policy-spec gguf --execs 50 --seconds=2.5 --seed 0x10 --corpus a --corpus=b \
             --findings out --max-alloc-mib 8 --abort-alloc-mib 16 --max-exec-secs 3 --no-home",
        ) else {
            panic!("did not parse");
        };
        let names: Vec<&str> = c.targets.iter().map(|t| t.name).collect();
        assert_eq!(names, ["gguf", "policy-spec"]);
        assert_eq!((c.execs, c.seconds, c.seed), (Some(50), Some(2.5), 16));
        assert_eq!(c.corpus, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(c.findings, PathBuf::from("out"));
        assert_eq!((c.max_alloc, c.abort_alloc), (8 << 20, 16 << 20));
        assert_eq!(c.max_exec, Duration::from_secs(3));
        assert!(!c.home);

        let Ok(Command::Run(all)) = parse("") else {
            panic!("did not parse");
        };
        assert_eq!(all.targets.len(), TARGETS.len());
        assert!(matches!(parse("--list"), Ok(Command::List)));
        assert!(matches!(parse("--help"), Ok(Command::Help)));
        for bad in [
            "nosuchtarget",
            "--execs",
            "--execs -1",
            "--seconds nan",
            "--max-alloc-mib 0",
            "--max-alloc-mib 64 --abort-alloc-mib 32",
            "--frobnicate",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    /// Every target, 200 mutated executions from a fixed seed: none may find anything. (One test
    /// only runs the harness: its panic hook and allocation counters are the process's.)
    #[test]
    fn every_target_survives_200_executions() {
        let findings =
            std::env::temp_dir().join(format!("momentkv-fuzz-unit-{}", std::process::id()));
        let config = Config {
            targets: TARGETS.iter().collect::<Vec<&'static targets::Target>>(),
            execs: Some(200),
            seconds: None,
            seed: 1,
            corpus: Vec::new(),
            findings: findings.clone(),
            max_alloc: 256 << 20,
            abort_alloc: 2048 << 20,
            max_exec: Duration::from_secs(120),
            fixtures: seeds::fixtures_dir(),
            home: false,
        };
        let reports = runner::run(&config);
        let _ = std::fs::remove_dir_all(&findings);
        assert_eq!(reports.len(), TARGETS.len());
        for r in &reports {
            assert!(r.execs >= 200, "{}: {} executions", r.name, r.execs);
            assert_eq!(r.findings, 0, "{}: see its FINDING lines above", r.name);
        }
    }
}
