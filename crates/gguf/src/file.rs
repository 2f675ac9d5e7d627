use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::metadata::{Metadata, Value};
use crate::{dequantize, GgmlType, GgufError};

/// The most elements a metadata array may hold (4Mi: the largest vocabulary's token list is a
/// few hundred thousand).
pub const MAX_ARRAY: u64 = 1 << 22;

/// One entry of the tensor table.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: `ne[0]` (the contiguous axis) first.
    pub ne: Vec<u64>,
    pub ty: GgmlType,
    /// Byte offset from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Row-major shape, slowest axis first (the reverse of `ne`).
    pub fn shape(&self) -> Vec<usize> {
        self.ne.iter().rev().map(|&d| d as usize).collect()
    }

    /// The element count, `None` when the file's dimensions overflow a `u64`.
    pub fn n_elements(&self) -> Option<u64> {
        self.ne.iter().try_fold(1u64, |n, &d| n.checked_mul(d))
    }

    /// The byte length: `None` when the count overflows or is not a whole number of blocks.
    fn n_bytes(&self) -> Option<u64> {
        let block = self.ty.block_len() as u64;
        let n = self.n_elements()?;
        n.is_multiple_of(block)
            .then(|| (n / block).checked_mul(self.ty.block_bytes() as u64))
            .flatten()
    }
}

/// The bytes of a GGUF file: a read-only map of a file on disk, or bytes held in memory.
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => &map[..],
            Bytes::Owned(bytes) => &bytes[..],
        }
    }
}

/// An open GGUF file: memory-mapped ([`GgufFile::open`]) or held in memory
/// ([`GgufFile::from_bytes`]).
pub struct GgufFile {
    path: PathBuf,
    bytes: Bytes,
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    data_start: usize,
}

impl GgufFile {
    /// Opens and validates a GGUF file: header, metadata, tensor table, and that every tensor's
    /// bytes lie inside the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| GgufError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only and lives as long as `GgufFile`; a file truncated by another
        // process while mapped is outside what any reader can defend against.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::parse(path, Bytes::Mapped(map))
    }

    /// Parses and validates a GGUF file already in memory, as [`GgufFile::open`] does one on
    /// disk; `name` stands for the file's path in errors and in [`GgufFile::path`].
    pub fn from_bytes(
        name: impl Into<PathBuf>,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<Self, GgufError> {
        Self::parse(name.into(), Bytes::Owned(bytes.into()))
    }

    /// Header, metadata, tensor table, and that every tensor's bytes lie inside `bytes`.
    fn parse(path: PathBuf, bytes: Bytes) -> Result<Self, GgufError> {
        let mut cursor = Cursor {
            bytes: &bytes,
            pos: 0,
            path: &path,
        };

        let magic: [u8; 4] = cursor.take(4, "the magic bytes")?.try_into().unwrap();
        if &magic != b"GGUF" {
            return Err(GgufError::NotGguf {
                path: path.clone(),
                found: magic,
            });
        }
        let version = cursor.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion {
                path: path.clone(),
                version,
            });
        }
        let n_tensors = cursor.u64("the tensor count")?;
        let n_kv = cursor.u64("the metadata count")?;

        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let key = cursor.string(&format!("metadata key #{i}"))?;
            let ty = cursor.u32(&format!("the type of metadata key {key}"))?;
            let value = cursor.value(ty, &key, 0)?;
            if metadata.contains_key(&key) {
                return Err(cursor.corrupt(format!("metadata key {key} appears twice")));
            }
            metadata.insert(key, value);
        }
        let metadata = Metadata(metadata);

        let mut tensors = Vec::new();
        let mut names = BTreeSet::new();
        for i in 0..n_tensors {
            let name = cursor.string(&format!("the name of tensor #{i}"))?;
            if !names.insert(name.clone()) {
                return Err(cursor.corrupt(format!("tensor {name} appears twice")));
            }
            let n_dims = cursor.u32(&format!("the rank of tensor {name}"))?;
            if n_dims > 8 {
                return Err(cursor.corrupt(format!("tensor {name} claims rank {n_dims}")));
            }
            let ne = (0..n_dims)
                .map(|_| cursor.u64(&format!("the shape of tensor {name}")))
                .collect::<Result<Vec<_>, _>>()?;
            let ty = GgmlType(cursor.u32(&format!("the type of tensor {name}"))?);
            let offset = cursor.u64(&format!("the offset of tensor {name}"))?;
            if !ty.is_known() {
                return Err(GgufError::UnknownType {
                    tensor: name,
                    id: ty.0,
                });
            }
            tensors.push(TensorInfo {
                name,
                ne,
                ty,
                offset,
            });
        }

        let alignment = match metadata.get("general.alignment") {
            Some(v) => v.as_u64().filter(|a| a.is_power_of_two()).ok_or_else(|| {
                cursor.corrupt(format!("general.alignment is {v:?}, not a power of two"))
            })?,
            None => 32,
        } as usize;
        let data_start = cursor.pos.div_ceil(alignment) * alignment;
        let file = Self {
            path,
            bytes,
            version,
            metadata,
            tensors,
            data_start,
        };
        for t in &file.tensors {
            file.bytes_of(t)?;
        }
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| GgufError::MissingTensor(name.into()))
    }

    /// The raw (quantized) bytes of a tensor.
    pub fn bytes_of(&self, t: &TensorInfo) -> Result<&[u8], GgufError> {
        let corrupt = |what: String| GgufError::Corrupt {
            path: self.path.clone(),
            what,
        };
        let len = t.n_bytes().ok_or_else(|| {
            corrupt(format!(
                "tensor {} has dimensions {:?}: no whole number of {} blocks of {} that fits in \
                 memory",
                t.name,
                t.ne,
                t.ty,
                t.ty.block_len()
            ))
        })?;
        let start = (self.data_start as u64).checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(len));
        match (start, end) {
            (Some(s), Some(e)) if e <= self.bytes.len() as u64 => {
                Ok(&self.bytes[s as usize..e as usize])
            }
            _ => Err(corrupt(format!(
                "tensor {} ({} bytes at offset {}) extends past the end of the file ({} bytes)",
                t.name,
                len,
                t.offset,
                self.bytes.len()
            ))),
        }
    }

    /// Dequantizes a tensor to f32; returns its row-major shape and values.
    pub fn dequantize(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), GgufError> {
        let t = self.tensor(name)?;
        let values = dequantize(t.ty, self.bytes_of(t)?, &t.name)?;
        Ok((t.shape(), values))
    }
}

/// A bounds-checked reader over the file's bytes that names what it was reading on failure.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn corrupt(&self, what: String) -> GgufError {
        GgufError::Corrupt {
            path: self.path.to_path_buf(),
            what,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GgufError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.bytes.len() => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            _ => Err(self.corrupt(format!(
                "file ends at byte {} while reading {what}",
                self.bytes.len()
            ))),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        Ok(self.take(N, what)?.try_into().unwrap())
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let len = self.u64(what)?;
        let len = usize::try_from(len)
            .map_err(|_| self.corrupt(format!("{what} is {len} bytes long")))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }

    fn value(&mut self, ty: u32, key: &str, depth: u32) -> Result<Value, GgufError> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>(key)?[0]),
            1 => Value::I8(self.array::<1>(key)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            7 => Value::Bool(self.array::<1>(key)?[0] != 0),
            8 => Value::String(self.string(key)?),
            9 if depth > 0 => {
                return Err(self.corrupt(format!(
                    "metadata key {key} nests arrays, which GGUF models do not use"
                )))
            }
            9 => {
                let elem = self.u32(key)?;
                let len = self.u64(key)?;
                // Every element takes at least one byte: a longer claim is corrupt, and checking it
                // first keeps a bad length from allocating. Each element read takes a `Value`
                // (32 bytes), so arrays are also capped, far above any vocabulary.
                if len > (self.bytes.len() - self.pos) as u64 {
                    return Err(self.corrupt(format!("metadata array {key} claims {len} elements")));
                }
                if len > MAX_ARRAY {
                    return Err(self.corrupt(format!(
                        "metadata array {key} has {len} elements, more than the {MAX_ARRAY} \
                         momentkv reads"
                    )));
                }
                (0..len)
                    .map(|_| self.value(elem, key, depth + 1))
                    .collect::<Result<_, _>>()
                    .map(Value::Array)?
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            other => {
                return Err(
                    self.corrupt(format!("metadata key {key} has unknown value type {other}"))
                )
            }
        })
    }
}
