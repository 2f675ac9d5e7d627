//! Writing files so that nothing saved before is lost or left half-written: each file is written
//! under a temporary name next to its final one, flushed to the disk, then renamed over it (a
//! rename within a directory replaces the old file in one step), and the temporary file is
//! removed when any of that fails.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::TrainError;

/// `path` with `.tmp` appended.
pub(crate) fn temporary(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".tmp");
    PathBuf::from(name)
}

/// Writes `bytes` to `path` through a temporary file, as the module describes; an error (a full
/// disk) names `path` and leaves whatever `path` held before untouched.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = temporary(path);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        std::fs::remove_file(&tmp).ok();
        TrainError::io(path, format!("cannot write: {e}"))
    })
}

/// Creates `dir` if needed and checks that files can be written in it, with a probe file written
/// and removed.
pub(crate) fn ensure_writable_dir(dir: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| TrainError::io(dir, format!("cannot create the directory: {e}")))?;
    let probe = dir.join(".momentkv-write-probe");
    write_atomically(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe).map_err(|e| TrainError::io(&probe, e)))
        .map_err(|_| TrainError::io(dir, "cannot write files in this directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = std::env::temp_dir().join(format!("momentkv-train-files-{}", std::process::id()));
        ensure_writable_dir(&dir).unwrap();
        let path = dir.join("state.json");
        write_atomically(&path, b"old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        // A directory where the temporary file should go makes the write fail.
        std::fs::create_dir_all(temporary(&path)).unwrap();
        let err = write_atomically(&path, b"lost").unwrap_err().to_string();
        assert!(err.contains("state.json: cannot write"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).ok();
    }
}
