//! Greedy generation with the library API: resolve (and fetch) a model, load it on the default
//! backend, generate with a full KV cache.
//!
//!     cargo run --release --example generate -- "The capital of France is"

use momentkv::backend::{dispatch, BackendKind, WithBackend};
use momentkv::cache::FullCache;
use momentkv::kernels::KernelBackend;
use momentkv::transformer::{generate, Sampler};
use momentkv::{hub, load, Error};

struct Complete(String);

impl WithBackend for Complete {
    type Output = Result<String, Error>;

    fn run<B: KernelBackend>(self, device: B::Device) -> Result<String, Error> {
        let model = load::load::<B>(&hub::resolve("smollm2-135m")?, &device)?;
        let prompt = model.tokenizer.encode(&self.0, true)?;
        let options = model.options(32);
        let mut cache = FullCache::new(model.transformer.config().num_hidden_layers);
        let out = generate(
            &model.transformer,
            &mut cache,
            &prompt,
            &options,
            &mut Sampler::greedy(),
            |_| {},
        )?;
        Ok(model.tokenizer.decode(&out.tokens)?)
    }
}

fn main() -> Result<(), Error> {
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "The capital of France is".into());
    let text = dispatch(BackendKind::default_compiled(), Complete(prompt.clone()))??;
    println!("{prompt}{text}");
    Ok(())
}
