//! The evaluation protocol's one-prefill sweep gives each (policy, budget) the answer it would give
//! on its own: every cell of `answer_cells` (forks of one recorded prefill) against a fresh cache
//! that prefills the same context and reads the same question, on the tiny fixture model.

use momentkv::cache::{Budget, EvictAt, EvictingCache, Phase, PolicySpec};
use momentkv::kernels::KernelBackend;
use momentkv::load::load;
use momentkv::transformer::{answer, Sampler};
use momentkv_eval::kvpress;
use momentkv_eval::passkey::Protocol;
use momentkv_eval::ruler::{split, Pipeline};
use momentkv_eval::sweep::{answer_cells, Cell, Column, Ratio};
use momentkv_ruler::{kvpress_parts, Task};

use crate::common::fixture;

pub fn forks_answer_like_fresh_caches<B: KernelBackend>(device: B::Device, _tol: f32) {
    let model = load::<B>(&fixture("llama-tied"), &device).unwrap();
    // A RULER-shaped prompt that fits the fixture's 256-token window: context lines, then the
    // question on the last line.
    let input = "A special magic number is hidden within the following text.\n\
                 The grass is green. The sky is blue.\nOne of the special magic numbers for \
                 tiny-fox is: 4821.\nThe sun is yellow. Here we go.\nWhat is the special magic \
                 number for tiny-fox? The number is";
    let prompt = split(input, &model.tokenizer).unwrap();
    let (c, q) = (prompt.context.len(), prompt.question.len());
    assert!(c > 100 && q > 5 && c + q < 230, "{c} + {q}");
    let question = model.tokenizer.decode(&prompt.question).unwrap();
    assert!(question.trim_start().starts_with("What is"), "{question}");
    let cells: Vec<Cell> = [
        ("full", None),
        ("snapkv:window=8", Some(24)),
        ("h2o", Some(24)),
        ("expected", Some(32)),
        ("momentkv:window=8", Some(24)),
        ("laprox:window=8", Some(24)),
    ]
    .into_iter()
    .map(|(p, b)| Cell {
        policy: p.into(),
        budget: b,
        compression: None,
    })
    .collect();
    let options = model.options(6);
    for protocol in [Protocol::QueryAgnostic, Protocol::QueryAware] {
        let read = match protocol {
            Protocol::QueryAgnostic => prompt.clone(),
            Protocol::QueryAware => prompt.query_aware(),
        };
        let mut swept = Vec::new();
        answer_cells(
            &model,
            &read,
            &cells,
            Pipeline::Default,
            6,
            |cell, text, bytes, _| {
                swept.push((cell.clone(), text, bytes));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(swept.len(), cells.len());
        for (cell, text, bytes) in swept {
            let policy = cell
                .policy
                .parse::<PolicySpec>()
                .unwrap()
                .build::<B>()
                .unwrap();
            let budget = cell
                .budget
                .map_or(Budget::compression(0.0), Budget::tokens)
                .unwrap();
            let mut cache = EvictingCache::new(
                model.transformer.cache_context(),
                policy,
                budget,
                EvictAt::PREFILL,
            )
            .unwrap();
            let all = [&prompt.context[..], &prompt.question[..]].concat();
            let (context, question) = match protocol {
                Protocol::QueryAgnostic => (prompt.context.clone(), prompt.question.clone()),
                Protocol::QueryAware => {
                    (all[..all.len() - 1].to_vec(), all[all.len() - 1..].to_vec())
                }
            };
            let out = answer(
                &model.transformer,
                &mut cache,
                &context,
                &question,
                &options,
                &mut Sampler::greedy(),
                |_| {},
            )
            .unwrap();
            let want = model.tokenizer.decode(&out.tokens).unwrap();
            assert_eq!(text, want, "{cell:?} {protocol:?}");
            assert_eq!(
                bytes,
                momentkv::cache::KvCache::bytes(&cache),
                "{cell:?} {protocol:?}"
            );
        }
    }
}

/// kvpress's protocol on the fixture (ChatML): the template's head is prefilled and compressed with
/// the context, each KV head keeping ⌊n·(1 − r)⌋ of the n prefilled ids, and a fork of the sweep
/// answers as a fresh cache decoding kvpress's way.
pub fn kvpress_prompts_compress_the_template_head_with_the_context<B: KernelBackend>(
    device: B::Device,
    _tol: f32,
) {
    let model = load::<B>(&fixture("llama-tied"), &device).unwrap();
    let input = "A special magic number is hidden within the following text.\nThe sky is blue.\n\
                 One of the special magic numbers for tiny-fox is: 4821.\nWhat is the special \
                 magic number for tiny-fox? The special magic number for tiny-fox is";
    let parts = kvpress_parts(Task::NiahSingle1, input).unwrap();
    let prompt = kvpress::prompt(&model.tokenizer, &parts, Protocol::QueryAgnostic).unwrap();
    let head = model.tokenizer.encode("<|im_start|>user\n", false).unwrap();
    assert_eq!(prompt.context[..head.len()], head[..]);
    let n = prompt.context.len();
    assert!(n > 64 && n + prompt.question.len() + 6 < 256, "{n}");
    for (policy, r) in [("knorm", 0.5), ("streaming", 0.75), ("tova", 0.875)] {
        let cell = Column::Compression(Ratio::new(r).unwrap()).cell(policy);
        let (built, budget) = cell.build::<B>().unwrap();
        let mut cache = EvictingCache::new(
            model.transformer.cache_context(),
            built,
            budget,
            EvictAt::PREFILL,
        )
        .unwrap();
        model
            .transformer
            .forward(
                std::slice::from_ref(&prompt.context),
                Phase::Prefill,
                &mut cache,
            )
            .unwrap();
        let kept = (n as f64 * (1.0 - r)) as usize;
        for layer in 0..model.transformer.config().num_hidden_layers {
            for positions in cache.kept_positions(layer).unwrap() {
                assert_eq!(positions.len(), kept, "{cell} layer {layer}");
            }
        }
        let tokens = kvpress::answer(&model, &mut cache, &prompt.question, 6).unwrap();
        let mut swept = Vec::new();
        answer_cells(
            &model,
            &prompt,
            std::slice::from_ref(&cell),
            Pipeline::Kvpress,
            6,
            |_, text, _, _| {
                swept.push(text);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(swept, [model.tokenizer.decode(&tokens).unwrap()], "{cell}");
    }
}

backend_tests!(
    forks_answer_like_fresh_caches,
    kvpress_prompts_compress_the_template_head_with_the_context
);
