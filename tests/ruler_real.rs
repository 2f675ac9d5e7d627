//! RULER on the default model: needle-in-a-haystack over 1k tokens of essays, generated in the
//! model's own tokens, is answered with the full cache, through the evaluation's one-prefill
//! sweep. Skipped, saying how to fetch them, without the model, the essays or the word lists, and
//! failed instead where data is required (`MOMENTKV_REQUIRE_DATA=1` or `CI=true`); CI fetches them.

use momentkv::hub;
use momentkv::load::load;
use momentkv_eval::passkey::Protocol;
use momentkv_eval::ruler::{sample, sources, split, Pipeline};
use momentkv_eval::sweep::{answer_cells, Cell};
use momentkv_ruler::Task;

#[cfg(feature = "flex")]
type B = burn::backend::Flex;
#[cfg(all(not(feature = "flex"), feature = "ndarray"))]
type B = burn::backend::NdArray;

#[cfg(any(feature = "flex", feature = "ndarray"))]
#[test]
fn niah_at_1k_is_answered_with_the_full_cache() {
    let needed = [
        hub::SMOLLM2_135M,
        hub::PAUL_GRAHAM_ESSAYS,
        hub::WONDERWORDS_ADJECTIVES,
        hub::WONDERWORDS_NOUNS,
        hub::WONDERWORDS_VERBS,
    ];
    if needed.iter().any(|f| hub::if_present(f).is_none()) {
        return;
    }
    let model = load::<B>(&hub::SMOLLM2_135M.path(), &Default::default()).unwrap();
    let task = Task::NiahSingle2;
    let data = sources(&[task]).unwrap();
    for index in 0..1 {
        let s = sample(task, 1024, 42, index, &data, &model.tokenizer).unwrap();
        assert!(
            (1004..=1024).contains(&s.length),
            "sample {index}: {} tokens",
            s.length
        );
        let prompt = split(&s.input, &model.tokenizer).unwrap();
        let mut answers = Vec::new();
        answer_cells(
            &model,
            &prompt,
            &[Cell::full()],
            Pipeline::Default,
            s.tokens_to_generate,
            |_, text, _, _| {
                answers.push(text);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            s.score(&answers[0]),
            100.0,
            "{:?} not in {}",
            s.outputs,
            answers[0]
        );
        // kvpress's protocol: SmolLM2's chat template (its system turn first, no BOS) around the
        // context, the question read after it with the end of the turn and the answer prefix.
        let kvpress = Pipeline::Kvpress
            .prompt(&s, &model.tokenizer, Protocol::QueryAgnostic)
            .unwrap();
        let decode = |ids: &[u32]| model.tokenizer.decode(ids).unwrap();
        assert!(
            decode(&kvpress.context).starts_with("system\nYou are a helpful AI assistant"),
            "{}",
            decode(&kvpress.context[..20])
        );
        assert_eq!(
            kvpress.context[0],
            model.tokenizer.token_id("<|im_start|>").unwrap()
        );
        let question = decode(&kvpress.question);
        assert!(
            question.starts_with("What is the special magic number for ")
                && question.contains("text? \nassistant\nThe special magic number for ")
                && question.ends_with("mentioned in the provided text is"),
            "{question}"
        );
        assert!(kvpress.context.len() > prompt.context.len());
    }
}
