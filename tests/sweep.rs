//! The evaluation protocol's one-prefill sweep gives each (policy, budget) the answer it would give
//! on its own: every cell of `answer_cells` (forks of one recorded prefill) against a fresh cache
//! that prefills the same context and reads the same question, on the tiny fixture model.

use momentkv::cache::{Budget, EvictAt, EvictingCache, PolicySpec};
use momentkv::kernels::KernelBackend;
use momentkv::load::load;
use momentkv::transformer::{answer, Sampler};
use momentkv_eval::passkey::Protocol;
use momentkv_eval::ruler::split;
use momentkv_eval::sweep::{answer_cells, Cell};

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
    })
    .collect();
    let options = model.options(6);
    for protocol in [Protocol::QueryAgnostic, Protocol::QueryAware] {
        let mut swept = Vec::new();
        answer_cells(
            &model,
            &prompt,
            &cells,
            protocol,
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

backend_tests!(forks_answer_like_fresh_caches);
