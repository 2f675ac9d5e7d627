//! Evaluation of budgeted KV caches on long contexts.
//!
//! - [`haystack`]: essay text (RULER's Paul Graham essays) cut to a length in model tokens;
//! - [`passkey`]: passkey retrieval, a five-digit key hidden in the essays, asked for after the
//!   context has been compressed (kvpress's query-agnostic protocol);
//! - [`ruler`]: RULER's tasks (`momentkv-ruler`) on a model: data fetched, prompts sized in the
//!   model's tokens and split into context and question;
//! - [`kvpress`]: kvpress's protocol on those samples: its cut of the prompt, the chat template
//!   around context and question as its pipeline applies it, and its greedy decoding;
//! - [`perplexity`]: teacher-forced NLL of a long text while the cache holds a budget
//!   (StreamingLLM's protocol), against the full cache's on the same tokens;
//! - [`sweep`]: one prefill per sample, every (policy, budget) answering from a fork of it;
//! - [`experiment`]: a whole RULER sweep on disk, resumable: samples, `results.jsonl`, summary
//!   and plots;
//! - [`summary`]: a sweep's scores as Markdown tables and score-vs-budget and
//!   score-vs-compression plots;
//! - [`plot`]: line plots as standalone SVG.

pub mod experiment;
pub mod haystack;
pub mod kvpress;
pub mod passkey;
pub mod perplexity;
pub mod plot;
pub mod ruler;
pub mod summary;
pub mod sweep;
