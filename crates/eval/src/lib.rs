//! Evaluation of budgeted KV caches on long contexts.
//!
//! - [`haystack`]: essay text (RULER's Paul Graham essays) cut to a length in model tokens;
//! - [`passkey`]: passkey retrieval, a five-digit key hidden in the essays, asked for after the
//!   context has been compressed (kvpress's query-agnostic protocol).

pub mod haystack;
pub mod passkey;
