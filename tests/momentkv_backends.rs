//! End to end on the default model: generation with the `momentkv` policy (eviction at prefill and
//! while decoding, moment-corrected attention) gives the same tokens on wgpu, where the correction
//! is the fused CubeCL kernel, as on ndarray, where it is tensor ops. Skipped, saying how to fetch
//! the model, when it is not present, and failed instead where data is required
//! (`MOMENTKV_REQUIRE_DATA=1` or `CI=true`).

use burn::backend::{NdArray, Wgpu};
use momentkv::cache::{Budget, EvictAt, EvictingCache, KvCache, PolicySpec};
use momentkv::kernels::KernelBackend;
use momentkv::load::load;
use momentkv::transformer::{generate, GenerateOptions, Sampler};

use crate::common::wgpu_device;

/// 16 greedy tokens after a ~170-token prompt held to 64 tokens per KV head, and the number of
/// evicted tokens.
fn momentkv_tokens<B: KernelBackend>(device: B::Device) -> Option<(Vec<u32>, usize)> {
    let path = momentkv::hub::default_model_if_present()?;
    let model = load::<B>(&path, &device).unwrap();
    let prompt = model
        .tokenizer
        .encode(
            &"The lighthouse keeper wrote down the number 4821 in his log before the storm. "
                .repeat(10),
            true,
        )
        .unwrap();
    let policy = "momentkv".parse::<PolicySpec>().unwrap().build().unwrap();
    let mut cache = EvictingCache::new(
        model.transformer.cache_context(),
        policy,
        Budget::tokens(64).unwrap(),
        "prefill,decode".parse::<EvictAt>().unwrap(),
    )
    .unwrap();
    let options = GenerateOptions {
        stop_tokens: Vec::new(),
        ..model.options(16)
    };
    let out = generate(
        &model.transformer,
        &mut cache,
        &prompt,
        &options,
        &mut Sampler::greedy(),
        |_| {},
    )
    .unwrap();
    assert!(KvCache::<B>::seen(&cache) > 64 + 100);
    Some((out.tokens, cache.evicted()))
}

#[test]
fn momentkv_generates_the_same_tokens_on_wgpu_and_ndarray() {
    let Some((cpu, evicted)) = momentkv_tokens::<NdArray>(Default::default()) else {
        return;
    };
    assert_eq!(<Wgpu as KernelBackend>::kernel_engine(), "cubecl");
    let (gpu, gpu_evicted) = momentkv_tokens::<Wgpu>(wgpu_device()).unwrap();
    assert!(evicted > 0, "nothing evicted");
    assert_eq!(gpu_evicted, evicted);
    assert_eq!(gpu, cpu, "tokens differ between wgpu and ndarray");
}
