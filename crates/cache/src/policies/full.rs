//! The full cache: every token kept, attention exact.

use burn::tensor::backend::Backend;

use super::Entry;
use crate::params::Args;
use crate::{CacheError, Policy};

pub static ENTRY: Entry = Entry {
    name: "full",
    aliases: &["none"],
    summary: "keep every token (exact attention; takes no budget)",
    params: &[],
    plain_scorer: false,
    kvpress: &[],
};

pub fn build<B: Backend>(_: &mut Args) -> Result<Policy<B>, CacheError> {
    Ok(Policy::full())
}
