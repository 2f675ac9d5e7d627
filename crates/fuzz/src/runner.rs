//! The fuzzing loop: seeds first, then mutations of the corpus, each execution under
//! `catch_unwind` with the allocator watching, findings saved as `TARGET-<hash>.bin`.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use crate::alloc;
use crate::mutate::{mutate, MAX_INPUT};
use crate::rng::Rng;
use crate::seeds::SeedPool;
use crate::targets::{Target, TARGETS};

/// Per target, when neither `--execs` nor `--seconds` is given.
pub const DEFAULT_SECONDS: f64 = 10.0;

/// The corpus of one target grows by at most this many inputs beyond its seeds.
const MAX_NEW_INPUTS: usize = 512;

pub struct Config {
    pub targets: Vec<&'static Target>,
    /// Mutated executions per target (after one pass over the seeds).
    pub execs: Option<u64>,
    /// Seconds per target.
    pub seconds: Option<f64>,
    pub seed: u64,
    pub corpus: Vec<PathBuf>,
    /// Where findings are written.
    pub findings: PathBuf,
    /// A single allocation above this many bytes is a finding.
    pub max_alloc: usize,
    /// A single allocation above this many bytes is refused (and the process aborts).
    pub abort_alloc: usize,
    /// An execution running longer ends the run as a finding.
    pub max_exec: Duration,
    /// The committed fixtures, read as seeds.
    pub fixtures: Option<PathBuf>,
    /// Also seed from the default model under `$MOMENTKV_HOME` when it has been fetched.
    pub home: bool,
}

/// One target's run.
pub struct Report {
    pub name: &'static str,
    pub execs: u64,
    pub seconds: f64,
    pub findings: u64,
    /// The largest single allocation during any execution, in bytes.
    pub largest: usize,
    pub corpus: usize,
}

impl Report {
    pub fn line(&self) -> String {
        format!(
            "{:<15} {:>9} execs {:>7.1} s {:>8.0} execs/s {:>4} findings   largest allocation {:>10}   corpus {}",
            self.name,
            self.execs,
            self.seconds,
            self.execs as f64 / self.seconds.max(1e-9),
            self.findings,
            size(self.largest),
            self.corpus
        )
    }
}

pub fn size(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// The execution in progress, for the allocator's refusal hook and the watchdog, which save its
/// input when the process is about to end.
struct Current {
    target: &'static str,
    input: Arc<Vec<u8>>,
    findings: Arc<Path>,
    started: Instant,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

/// The last panic's message, location and (with `RUST_BACKTRACE=1`) backtrace.
static PANIC: Mutex<Option<PanicRecord>> = Mutex::new(None);

static MAX_EXEC_MS: AtomicU64 = AtomicU64::new(u64::MAX);
static WATCHDOG: Once = Once::new();

struct PanicRecord {
    message: String,
    location: String,
    backtrace: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records the panic instead of printing it: the runner prints findings its own way.
fn quiet_hook(info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".into());
    let location = info.location().map(|l| l.to_string()).unwrap_or_default();
    let backtrace = Backtrace::capture();
    let backtrace = if backtrace.status() == BacktraceStatus::Captured {
        backtrace.to_string()
    } else {
        String::new()
    };
    *lock(&PANIC) = Some(PanicRecord {
        message,
        location,
        backtrace,
    });
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes `input` to `dir/TARGET-<hash>.bin`.
fn save(dir: &Path, target: &str, input: &[u8]) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{target}-{:016x}.bin", fnv1a(input)));
    std::fs::write(&path, input).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Called by the allocator just before it refuses an allocation above the ceiling (and the
/// process aborts): saves the input being run.
fn refused(bytes: usize) {
    let saved = match CURRENT.try_lock() {
        Ok(current) => match current.as_ref() {
            Some(c) => match save(&c.findings, c.target, &c.input) {
                Ok(path) => format!("{}: input saved to {}", c.target, path.display()),
                Err(e) => format!("{}: input not saved ({e})", c.target),
            },
            None => "outside any execution".to_string(),
        },
        Err(_) => "input not saved (busy)".to_string(),
    };
    eprintln!(
        "FINDING {saved}: an allocation of {} was refused (ceiling {}, --abort-alloc-mib); the \
         process now aborts",
        size(bytes),
        size(alloc::ceiling())
    );
}

/// Ends the process when one execution runs past `--max-exec-secs`, saving its input: a hang
/// cannot be interrupted inside the process, and must not hang CI.
fn start_watchdog() {
    WATCHDOG.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("momentkv-fuzz-watchdog".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(250));
                let limit = Duration::from_millis(MAX_EXEC_MS.load(Relaxed));
                let current = lock(&CURRENT);
                let Some(c) = current.as_ref() else {
                    continue;
                };
                if c.started.elapsed() <= limit {
                    continue;
                }
                let saved = match save(&c.findings, c.target, &c.input) {
                    Ok(path) => format!("input saved to {}", path.display()),
                    Err(e) => format!("input not saved ({e})"),
                };
                println!(
                    "FINDING {}: one execution has run for more than {:.1} s (--max-exec-secs); \
                     {saved}; the run ends here",
                    c.target,
                    limit.as_secs_f64()
                );
                std::process::exit(1);
            });
        if let Err(e) = spawned {
            eprintln!("momentkv-fuzz: no watchdog ({e}); a hanging execution will hang the run");
        }
    });
}

/// Runs every target of `config` in turn and prints one line each.
pub fn run(config: &Config) -> Vec<Report> {
    alloc::set_limits(config.max_alloc, config.abort_alloc);
    alloc::on_refusal(refused);
    let max_exec_ms = u64::try_from(config.max_exec.as_millis()).unwrap_or(u64::MAX);
    MAX_EXEC_MS.store(max_exec_ms.max(1), Relaxed);
    start_watchdog();

    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    let pool = SeedPool::load(
        config.fixtures.as_deref(),
        config.home,
        &config.corpus,
        &names,
    );
    for note in &pool.notes {
        println!("note: {note}");
    }
    // Seeds are made before the quiet panic hook is installed: a seed that fails to build is a
    // bug of this harness, to be reported as usual.
    let seeded: Vec<(&'static Target, Vec<Vec<u8>>)> = config
        .targets
        .iter()
        .map(|&t| {
            let mut seeds = (t.seeds)(&pool);
            seeds.extend(
                pool.corpus
                    .iter()
                    .filter(|(only, _)| only.as_deref().is_none_or(|name| name == t.name))
                    .map(|(_, bytes)| bytes.clone()),
            );
            (t, seeds)
        })
        .collect();
    drop(pool);

    let findings: Arc<Path> = Arc::from(config.findings.as_path());
    let previous = panic::take_hook();
    panic::set_hook(Box::new(quiet_hook));
    let mut reports = Vec::new();
    for (target, seeds) in seeded {
        let report = fuzz(target, seeds, config, &findings);
        println!("{}", report.line());
        reports.push(report);
    }
    panic::set_hook(previous);
    reports
}

struct State {
    target: &'static Target,
    findings: Arc<Path>,
    execs: u64,
    largest: usize,
    found: u64,
    seen: HashSet<String>,
}

impl State {
    /// Runs one input; returns its outcome signature (`None` for a finding) and the input.
    fn exec(&mut self, input: Vec<u8>) -> (Option<u64>, Vec<u8>) {
        let input = Arc::new(input);
        *lock(&PANIC) = None;
        *lock(&CURRENT) = Some(Current {
            target: self.target.name,
            input: Arc::clone(&input),
            findings: Arc::clone(&self.findings),
            started: Instant::now(),
        });
        alloc::take_over_bound();
        alloc::take_largest();
        let run = self.target.run;
        let result = panic::catch_unwind(AssertUnwindSafe(|| run(&input)));
        let largest = alloc::take_largest();
        let over = alloc::take_over_bound();
        *lock(&CURRENT) = None;
        self.execs += 1;
        self.largest = self.largest.max(largest);

        let mut signature = result.as_ref().ok().copied();
        drop(result);
        if signature.is_none() {
            let record = lock(&PANIC).take();
            let (key, message) = match record {
                Some(r) => {
                    let mut message = format!("panic at {}: {}", r.location, r.message);
                    if !r.backtrace.is_empty() {
                        message = format!("{message}\n{}", r.backtrace);
                    }
                    (r.location, message)
                }
                None => ("?".into(), "panic (no message recorded)".into()),
            };
            self.finding(key, message, &input);
        }
        if over > 0 {
            let message = format!(
                "an allocation of {} exceeds the bound of {} (--max-alloc-mib)",
                size(over),
                size(alloc::bound())
            );
            self.finding("allocation".into(), message, &input);
            signature = None;
        }
        let input = Arc::try_unwrap(input).unwrap_or_else(|shared| (*shared).clone());
        (signature, input)
    }

    /// Counts a finding; the first of each kind (`key`) is saved and printed.
    fn finding(&mut self, key: String, message: String, input: &[u8]) {
        self.found += 1;
        if !self.seen.insert(key) {
            return;
        }
        let saved = match save(&self.findings, self.target.name, input) {
            Ok(path) => path.display().to_string(),
            Err(e) => e,
        };
        println!(
            "FINDING {}: {message}\n  input ({} bytes): {saved}",
            self.target.name,
            input.len()
        );
    }
}

fn fuzz(
    target: &'static Target,
    seeds: Vec<Vec<u8>>,
    config: &Config,
    findings: &Arc<Path>,
) -> Report {
    let stream = TARGETS
        .iter()
        .position(|t| t.name == target.name)
        .unwrap_or(0) as u64;
    let mut rng = Rng::new(config.seed, stream);
    let (execs, seconds) = match (config.execs, config.seconds) {
        (None, None) => (None, Some(DEFAULT_SECONDS)),
        given => given,
    };
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let mut distinct = HashSet::new();
    for seed in seeds {
        if distinct.insert(fnv1a(&seed)) {
            corpus.push(seed);
        }
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut state = State {
        target,
        findings: Arc::clone(findings),
        execs: 0,
        largest: 0,
        found: 0,
        seen: HashSet::new(),
    };
    let start = Instant::now();
    let mut outcomes = HashSet::new();
    for seed in &corpus {
        let (signature, _) = state.exec(seed.clone());
        if let Some(signature) = signature {
            outcomes.insert(signature);
        }
    }
    let seeded = corpus.len();
    let mut mutated = 0u64;
    while execs.is_none_or(|n| mutated < n)
        && seconds.is_none_or(|s| start.elapsed().as_secs_f64() < s)
    {
        let i = rng.below(corpus.len());
        let input = mutate(&mut rng, &corpus, i, target.text);
        let (signature, input) = state.exec(input);
        mutated += 1;
        // An input that ends some new way joins the corpus: the only feedback there is without
        // coverage instrumentation on stable Rust.
        if let Some(signature) = signature {
            if outcomes.insert(signature)
                && corpus.len() < seeded + MAX_NEW_INPUTS
                && input.len() <= MAX_INPUT
            {
                corpus.push(input);
            }
        }
    }
    Report {
        name: target.name,
        execs: state.execs,
        seconds: start.elapsed().as_secs_f64(),
        findings: state.found,
        largest: state.largest,
        corpus: corpus.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(12), "12 B");
        assert_eq!(size(3 << 10), "3.0 KiB");
        assert_eq!(size(5 << 20), "5.0 MiB");
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }
}
