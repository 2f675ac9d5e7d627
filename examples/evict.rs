//! Generation under a KV budget with the library API: SnapKV keeps 64 tokens per KV head of a
//! long prompt, evicting once after prefill and then at every generated token.
//!
//!     cargo run --release --example evict

use momentkv::backend::{dispatch, BackendKind, WithBackend};
use momentkv::cache::{Budget, EvictAt, EvictingCache, KvCache, PolicySpec};
use momentkv::kernels::KernelBackend;
use momentkv::transformer::{generate, Sampler};
use momentkv::{hub, load, Error};

struct Evict;

impl WithBackend for Evict {
    type Output = Result<(), Error>;

    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), Error> {
        let model = load::load::<B>(&hub::resolve("smollm2-135m")?, &device)?;
        let text = "Rust is a systems programming language focused on safety and speed. "
            .repeat(40)
            + "In one sentence, what is Rust?";
        let prompt = model.tokenizer.encode(&text, true)?;
        let policy = "snapkv:window=32".parse::<PolicySpec>()?.build::<B>()?;
        let at: EvictAt = "prefill,decode".parse()?;
        let mut cache = EvictingCache::new(
            model.transformer.cache_context(),
            policy,
            Budget::tokens(64)?,
            at,
        )?;
        let options = model.options(24);
        let out = generate(
            &model.transformer,
            &mut cache,
            &prompt,
            &options,
            &mut Sampler::greedy(),
            |_| {},
        )?;
        println!("{}", model.tokenizer.decode(&out.tokens)?);
        println!(
            "[{} prompt tokens; {} KV bytes held, {} token slots evicted over all layers and heads]",
            prompt.len(),
            cache.bytes(),
            cache.evicted()
        );
        Ok(())
    }
}

fn main() -> Result<(), Error> {
    dispatch(BackendKind::default_compiled(), Evict)?
}
