//! SHA-256 of a checkpoint, so results can name exactly the weights they came from.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::Error;

/// The SHA-256 of a file's bytes, or of a directory's regular files (a Hugging Face checkpoint):
/// each file's name, length and bytes in name order, so renaming, adding or changing a file
/// changes the digest. Lowercase hex.
pub fn sha256(path: &Path) -> Result<String, Error> {
    let mut hasher = Sha256::new();
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        let mut files: Vec<_> = fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            let len = fs::metadata(&file).map_err(|e| Error::io(&file, e))?.len();
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(len.to_le_bytes());
            feed(&mut hasher, &file).map_err(|e| Error::io(&file, e))?;
        }
    } else {
        feed(&mut hasher, path).map_err(|e| Error::io(path, e))?;
    }
    Ok(hex(&hasher.finalize()))
}

/// Streams the bytes of the file at `path` into `hasher`.
pub(crate) fn feed(hasher: &mut Sha256, path: &Path) -> io::Result<()> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_a_file_and_a_directory_by_names_and_bytes() {
        let dir = std::env::temp_dir().join("momentkv-checksum-test");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("a.json"), b"abc").unwrap();
        // SHA-256("abc"), FIPS 180-2's first example.
        assert_eq!(
            sha256(&dir.join("a.json")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let before = sha256(&dir).unwrap();
        fs::write(dir.join("sub/ignored"), b"x").unwrap();
        assert_eq!(sha256(&dir).unwrap(), before, "subdirectories are not read");
        fs::write(dir.join("b.safetensors"), b"").unwrap();
        let added = sha256(&dir).unwrap();
        assert_ne!(added, before);
        fs::rename(dir.join("b.safetensors"), dir.join("c.safetensors")).unwrap();
        assert_ne!(sha256(&dir).unwrap(), added);
        assert!(sha256(&dir.join("none")).is_err());
    }
}
