//! momentkv's integration tests, in one test binary so that burn's generic code is compiled once
//! for all of them rather than once per file.

#[macro_use]
mod common;

mod adapter;
mod bad_input;
mod gguf_dequant;
mod kvpress_parity;
mod llama_fixtures;
mod moment_attention;
mod moment_kernel;
#[cfg(all(feature = "wgpu", feature = "ndarray"))]
mod momentkv_backends;
mod passkey;
mod perplexity;
mod qwen_fixtures;
mod real_model;
mod ruler_real;
mod sweep;
