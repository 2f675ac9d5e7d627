//! A safetensors file's tensor table, read from its header alone, and its comparison with the
//! tensors a model expects: what the checkpoint and adapter loaders check before they allocate
//! anything.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use crate::ModelError;

/// Tensors by name, with their shapes.
pub(crate) type TensorTable = BTreeMap<String, Vec<usize>>;

/// The most a safetensors header may take, as the `safetensors` crate allows.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One entry of a safetensors header (`__metadata__` has neither field).
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct HeaderEntry {
    /// `F32`, `BF16`, `I64`, ...
    #[serde(default)]
    pub dtype: String,
    #[serde(default)]
    pub shape: Vec<usize>,
}

/// The tensors of a safetensors file by their names in the file, read from its header alone: an
/// 8-byte little-endian length, then that many bytes of JSON.
pub(crate) fn safetensors_header(path: &Path) -> Result<BTreeMap<String, HeaderEntry>, ModelError> {
    let fail = |reason: String| ModelError::WeightFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let file_len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| fail(format!("cannot read the header length: {e}")))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER_BYTES || len > file_len.saturating_sub(8) {
        return Err(fail(format!(
            "the header claims {len} bytes, beyond the file's {file_len} or the limit of \
             {MAX_HEADER_BYTES}"
        )));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| fail(format!("cannot read the header: {e}")))?;
    let mut entries: BTreeMap<String, HeaderEntry> = serde_json::from_slice(&header)
        .map_err(|e| fail(format!("the header is not a safetensors header: {e}")))?;
    entries.remove("__metadata__");
    Ok(entries)
}

/// How a tensor table differs from the expected one.
#[derive(Debug, PartialEq)]
pub(crate) enum TableMismatch {
    /// Expected tensors the table lacks.
    Missing(Vec<String>),
    /// Tensors whose shapes differ: `(name, found, expected)`.
    Shapes(Vec<(String, Vec<usize>, Vec<usize>)>),
    /// Tensors of the table that are not expected (and not `ignorable`).
    Unused(Vec<String>),
}

/// Compares `table` with `expected`: every expected tensor must be there with its shape and no
/// other tensor may be, unless `ignorable`. The first kind of difference found, in the order of
/// [`TableMismatch`]'s variants, is returned with every name of that kind, in name order.
pub(crate) fn compare_tables(
    expected: &TensorTable,
    table: &TensorTable,
    ignorable: impl Fn(&str) -> bool,
) -> Result<(), TableMismatch> {
    let missing: Vec<String> = expected
        .keys()
        .filter(|name| !table.contains_key(*name))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(TableMismatch::Missing(missing));
    }
    let shapes: Vec<(String, Vec<usize>, Vec<usize>)> = expected
        .iter()
        .filter_map(|(name, want)| {
            let found = table.get(name).filter(|found| *found != want)?;
            Some((name.clone(), found.clone(), want.clone()))
        })
        .collect();
    if !shapes.is_empty() {
        return Err(TableMismatch::Shapes(shapes));
    }
    let unused: Vec<String> = table
        .keys()
        .filter(|name| !expected.contains_key(*name) && !ignorable(name))
        .cloned()
        .collect();
    if !unused.is_empty() {
        return Err(TableMismatch::Unused(unused));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &[usize])]) -> TensorTable {
        entries
            .iter()
            .map(|(name, shape)| (name.to_string(), shape.to_vec()))
            .collect()
    }

    #[test]
    fn safetensors_headers_are_read_without_the_data() {
        let dir = std::env::temp_dir().join(format!("momentkv-header-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.safetensors");
        let header = br#"{"__metadata__":{"format":"pt"},"model.norm.weight":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0u8; 32]);
        std::fs::write(&path, &bytes).unwrap();
        let entry = HeaderEntry {
            dtype: "F32".into(),
            shape: vec![8],
        };
        assert_eq!(
            safetensors_header(&path).unwrap(),
            BTreeMap::from([("model.norm.weight".to_string(), entry)])
        );
        // A header length beyond the file is refused before anything is allocated for it.
        bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let err = safetensors_header(&path).unwrap_err().to_string();
        assert!(
            err.contains("h.safetensors") && err.contains("header"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn tables_differ_first_by_missing_then_shapes_then_unused_tensors() {
        let expected = table(&[("a", &[2, 3]), ("b", &[4])]);
        let none = |_: &str| false;
        assert_eq!(compare_tables(&expected, &expected, none), Ok(()));
        assert_eq!(
            compare_tables(&expected, &table(&[("a", &[3, 2]), ("c", &[1])]), none),
            Err(TableMismatch::Missing(vec!["b".into()]))
        );
        assert_eq!(
            compare_tables(&expected, &table(&[("a", &[3, 2]), ("b", &[4])]), none),
            Err(TableMismatch::Shapes(vec![(
                "a".into(),
                vec![3, 2],
                vec![2, 3]
            )]))
        );
        let extra = table(&[("a", &[2, 3]), ("b", &[4]), ("c", &[1]), ("d", &[1])]);
        assert_eq!(
            compare_tables(&expected, &extra, none),
            Err(TableMismatch::Unused(vec!["c".into(), "d".into()]))
        );
        assert_eq!(
            compare_tables(&expected, &extra, |name| name != "x"),
            Ok(())
        );
    }
}
