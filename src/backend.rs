//! Run-time choice among the burn backends compiled in.
//!
//! Each backend is a cargo feature (`ndarray`, `flex`, `wgpu`, `cuda`); a binary can carry several
//! and pick one per run (`--backend`). Code that runs on "the chosen backend" implements
//! [`WithBackend`], whose one generic method [`dispatch`] calls with the concrete backend type.

use std::fmt;
use std::str::FromStr;

use momentkv_kernels::KernelBackend;

use crate::Error;

/// A burn backend momentkv can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// `burn-flex`: pure-Rust CPU backend with SIMD and a multi-threaded gemm.
    Flex,
    /// `burn-ndarray`: CPU backend on the ndarray crate.
    NdArray,
    /// `burn-wgpu`: GPUs (and software Vulkan) through wgpu.
    Wgpu,
    /// `burn-cuda`: NVIDIA GPUs through CUDA.
    Cuda,
}

impl BackendKind {
    pub const ALL: [BackendKind; 4] = [Self::Flex, Self::NdArray, Self::Wgpu, Self::Cuda];

    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    /// Whether this binary was built with the backend's cargo feature.
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Flex => cfg!(feature = "flex"),
            Self::NdArray => cfg!(feature = "ndarray"),
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends this binary carries, in order of preference.
    pub fn compiled() -> Vec<BackendKind> {
        Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The first compiled backend: flex, then ndarray, wgpu, cuda.
    pub fn default_compiled() -> BackendKind {
        Self::compiled().first().copied().unwrap_or(Self::Flex)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| Error::Backend {
                name: s.into(),
                reason: format!(
                    "is not a backend momentkv knows (known: {})",
                    Self::ALL.map(|b| b.name()).join(", ")
                ),
            })
    }
}

/// Work to run on a backend chosen at run time.
pub trait WithBackend {
    type Output;
    fn run<B: KernelBackend>(self, device: B::Device) -> Self::Output;
}

/// Runs `work` on backend `kind`, or explains how to build with it.
#[cfg_attr(
    not(any(
        feature = "flex",
        feature = "ndarray",
        feature = "wgpu",
        feature = "cuda"
    )),
    allow(unused_variables)
)]
pub fn dispatch<W: WithBackend>(kind: BackendKind, work: W) -> Result<W::Output, Error> {
    match kind {
        #[cfg(feature = "flex")]
        BackendKind::Flex => Ok(work.run::<burn::backend::Flex>(Default::default())),
        #[cfg(feature = "ndarray")]
        BackendKind::NdArray => Ok(work.run::<burn::backend::NdArray>(Default::default())),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Ok(work.run::<burn::backend::Wgpu>(Default::default())),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(work.run::<burn::backend::Cuda>(Default::default())),
        #[allow(unreachable_patterns)]
        other => Err(Error::Backend {
            name: other.name().into(),
            reason: format!(
                "is not compiled into this binary (compiled: {}); rebuild with `--features {}`",
                BackendKind::compiled()
                    .iter()
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                other.name()
            ),
        }),
    }
}
