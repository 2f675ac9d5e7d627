//! The training objective: mean next-token cross-entropy of a right-padded batch, through the
//! cache-free entry point of the model ([`Transformer::forward_causal`]).
//!
//! Labels follow Hugging Face `transformers`' causal-LM convention: `labels` is aligned with
//! `tokens` (usually a copy of them) and shifted here, so position `i` is scored against
//! `labels[i + 1]`. With `V` the positions `(b, i)`, `i < seq − 1`, whose target `labels[b, i + 1]`
//! is a real token (`mask[b, i + 1]`) and not [`IGNORE_INDEX`],
//!
//! ```text
//! ℓ(b, i) = −ln softmax(z[b, i])[labels[b, i + 1]]      z: logits [batch, seq, vocab]
//! loss    = 1/|V| · Σ_{(b, i) ∈ V} ℓ(b, i)                (0 when V is empty)
//! ```
//!
//! which is `transformers`' `ForCausalLMLoss` with mean reduction once the padding's labels are
//! set to −100. Right padding leaves every real position's logits as they are without it: causal
//! attention lets a real token see only earlier positions, which are real too.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};
use momentkv_kernels::KernelBackend;

use crate::{ModelError, Transformer};

/// The label of a position that is not scored, as in PyTorch and `transformers` (a prompt's
/// tokens when only the answer is trained, say).
pub const IGNORE_INDEX: i64 = -100;

/// A right-padded batch of token sequences to train on.
///
/// Each row holds its real tokens first, then padding. Ids and labels must lie below the
/// vocabulary size (labels may also be [`IGNORE_INDEX`]); the batcher checks that on the host,
/// since reading them back here would stall the device.
#[derive(Debug, Clone)]
pub struct TrainBatch<B: Backend> {
    /// `[batch, seq]` token ids; what padding positions hold is never read.
    pub tokens: Tensor<B, 2, Int>,
    /// `[batch, seq]` labels aligned with `tokens` (position `i` is scored against
    /// `labels[i + 1]`); [`IGNORE_INDEX`] where no loss is wanted.
    pub labels: Tensor<B, 2, Int>,
    /// `[batch, seq]` true at real tokens, false at padding.
    pub mask: Tensor<B, 2, Bool>,
}

impl<B: Backend> TrainBatch<B> {
    /// Checks that `labels` and `mask` have the tokens' shape and that a row has at least two
    /// positions (one target).
    fn check(&self) -> Result<(), ModelError> {
        let expected = self.tokens.dims();
        for (what, found) in [("labels", self.labels.dims()), ("mask", self.mask.dims())] {
            if found != expected {
                return Err(ModelError::BatchShape {
                    what,
                    found,
                    expected,
                });
            }
        }
        if expected[1] < 2 {
            return Err(ModelError::ShortBatch(expected[1]));
        }
        Ok(())
    }
}

/// What the training forward pass returns.
#[derive(Debug, Clone)]
pub struct CausalLmOutput<B: Backend> {
    /// `[batch, seq, vocab]` logits at every position, padding included.
    pub logits: Tensor<B, 3>,
    /// `[1]` the mean next-token cross-entropy over the scored targets, in nats.
    pub loss: Tensor<B, 1>,
    /// `[1]` how many targets were scored (`|V|`), as a float: the weight of this batch's loss
    /// when losses of several batches are averaged per token (gradient accumulation).
    pub targets: Tensor<B, 1>,
}

impl<B: KernelBackend> Transformer<B> {
    /// Logits and mean next-token cross-entropy of `batch`, with full causal attention over each
    /// row and no KV cache (see the module's documentation for the loss).
    ///
    /// Tensor ops only, with nothing read back to the host, so under burn's `Autodiff` the loss
    /// differentiates with respect to every parameter. The logits of each row's real positions
    /// equal those of [`Transformer::forward`] on the row alone with an empty full cache.
    pub fn forward_train(&self, batch: TrainBatch<B>) -> Result<CausalLmOutput<B>, ModelError> {
        batch.check()?;
        let TrainBatch {
            tokens,
            labels,
            mask,
        } = batch;
        // Padding reads token 0, a valid id, whatever the batcher filled in.
        let tokens = tokens.mask_fill(mask.clone().bool_not(), 0);
        let logits = self.logits(self.forward_causal(tokens)?);
        let (loss, targets) = next_token_loss(logits.clone(), labels, mask);
        Ok(CausalLmOutput {
            logits,
            loss,
            targets,
        })
    }
}

/// The masked mean cross-entropy of the module's documentation and the number of targets it
/// averages over, both `[1]`.
///
/// - `logits`: `[batch, seq, vocab]`, `seq ≥ 2`
/// - `labels`: `[batch, seq]`, aligned with the positions of `logits`
/// - `mask`: `[batch, seq]`, true at real tokens
fn next_token_loss<B: Backend>(
    logits: Tensor<B, 3>,
    labels: Tensor<B, 2, Int>,
    mask: Tensor<B, 2, Bool>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [batch, seq, _] = logits.dims();
    let n = seq - 1;
    let targets = labels.narrow(1, 1, n);
    let scored = mask
        .narrow(1, 1, n)
        .bool_and(targets.clone().not_equal_elem(IGNORE_INDEX));
    // Unscored targets point at id 0 so the gather stays in bounds; their weight is 0.
    let index = targets
        .mask_fill(scored.clone().bool_not(), 0)
        .unsqueeze_dim::<3>(2);
    let log_p = log_softmax(logits.narrow(1, 0, n), 2)
        .gather(2, index)
        .reshape([batch, n]);
    let weight = scored.float();
    let count = weight.clone().sum();
    let loss = (log_p * weight).sum().neg() / count.clone().clamp_min(1.0);
    (loss, count)
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, ModuleMapper, Param, ParamId};
    use burn::tensor::backend::AutodiffBackend;
    use momentkv_cache::{FullCache, Phase};

    use super::*;
    use crate::testing::{batch, configs, max_diff, model, rows, B, IGNORED, PAD};

    type Grads = <B as AutodiffBackend>::Gradients;

    /// Adds `delta` to element `index` (row-major) of the parameter `id`.
    struct Nudge {
        id: ParamId,
        index: usize,
        delta: f32,
    }

    impl<Bk: Backend> ModuleMapper<Bk> for Nudge {
        fn map_float<const D: usize>(
            &mut self,
            param: Param<Tensor<Bk, D>>,
        ) -> Param<Tensor<Bk, D>> {
            if param.id != self.id {
                return param;
            }
            let (id, tensor, mapper) = param.consume();
            let mut step = vec![0f32; tensor.shape().num_elements()];
            step[self.index] = self.delta;
            let step = Tensor::<Bk, 1>::from_floats(step.as_slice(), &tensor.device())
                .reshape(tensor.dims());
            Param::from_mapped_value(id, tensor + step, mapper)
        }
    }

    fn loss(model: &Transformer<B>, batch: TrainBatch<B>) -> f32 {
        model.forward_train(batch).unwrap().loss.into_scalar()
    }

    /// The loss written out on the host from the logits: −ln softmax at each scored target,
    /// averaged, in f64.
    fn host_loss(logits: Tensor<B, 3>, rows: &[Vec<u32>], ignore: &[(usize, usize)]) -> f64 {
        let [_, seq, vocab] = logits.dims();
        let z = logits.into_data().to_vec::<f32>().unwrap();
        let mut terms = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            for (i, &label) in row.iter().enumerate().skip(1) {
                if ignore.contains(&(r, i)) {
                    continue;
                }
                let at = &z[(r * seq + i - 1) * vocab..(r * seq + i) * vocab];
                let max = at.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let log_sum = at.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln() + max;
                terms.push(log_sum - at[label as usize] as f64);
            }
        }
        terms.iter().sum::<f64>() / terms.len() as f64
    }

    /// The training logits at every real position equal the cache path's (a prefill of the row
    /// alone into an empty full cache), the padded row's included.
    #[test]
    fn training_logits_are_the_cache_paths() {
        for (family, config) in configs() {
            let model = model(&config);
            let rows = rows();
            let out = model.forward_train(batch(&rows, 7, PAD, &[])).unwrap();
            for (r, row) in rows.iter().enumerate() {
                let mut cache = FullCache::<B>::new(config.num_hidden_layers);
                let hidden = model
                    .forward(std::slice::from_ref(row), Phase::Prefill, &mut cache)
                    .unwrap();
                let got = out.logits.clone().narrow(0, r, 1).narrow(1, 0, row.len());
                let diff = max_diff(got, model.logits(hidden));
                assert!(diff < 1e-4, "{family}, row {r}: logits differ by {diff}");
            }
        }
    }

    /// The loss is the definition evaluated on the host; right padding, whatever it holds, leaves
    /// a row's loss as it is alone; a batch's loss is its rows' losses weighted by their scored
    /// targets.
    #[test]
    fn padding_and_ignored_labels_are_not_scored() {
        for (family, config) in configs() {
            let model = model(&config);
            let rows = rows();
            let out = model.forward_train(batch(&rows, 7, PAD, &IGNORED)).unwrap();
            let got = f64::from(out.loss.into_scalar());
            let want = host_loss(out.logits, &rows, &IGNORED);
            assert!((got - want).abs() < 1e-5, "{family}: {got} vs {want}");
            // 6 targets in the first row less the ignored one, 3 in the second.
            assert_eq!(out.targets.into_scalar(), 8.0, "{family}");

            let second = [rows[1].clone()];
            let alone = loss(&model, batch(&second, 4, PAD, &[]));
            for pad in [PAD, 0] {
                let padded = loss(&model, batch(&second, 7, pad, &[]));
                assert!(
                    (padded - alone).abs() < 1e-5,
                    "{family}, padding {pad}: {padded} vs {alone}"
                );
            }
            let first = loss(&model, batch(&rows[..1], 7, PAD, &IGNORED));
            let both = loss(&model, batch(&rows, 7, PAD, &IGNORED));
            let weighted = (5.0 * first + 3.0 * alone) / 8.0;
            assert!(
                (both - weighted).abs() < 1e-5,
                "{family}: {both} vs {weighted}"
            );
        }
    }

    /// The flattened gradient of a parameter.
    fn grad<const D: usize>(param: &Param<Tensor<B, D>>, grads: &Grads) -> Vec<f32> {
        param.grad(grads).unwrap().into_data().to_vec().unwrap()
    }

    /// The loss's gradient with respect to weights of the attention, the MLP, the embeddings and
    /// what each family adds (Llama's untied head, Qwen2's query bias, Qwen3's query norm)
    /// equals central finite differences at the two largest entries of each.
    #[test]
    fn gradients_match_finite_differences() {
        let eps = 1e-2;
        for (family, config) in configs() {
            let model = model(&config);
            let rows = rows();
            let grads = model
                .forward_train(batch(&rows, 7, PAD, &IGNORED))
                .unwrap()
                .loss
                .backward();
            let layer = &model.layers[0];
            let mut checked = vec![
                (
                    "embed_tokens",
                    model.embed_tokens.weight.id,
                    grad(&model.embed_tokens.weight, &grads),
                ),
                (
                    "k_proj",
                    layer.self_attn.k_proj.weight.id,
                    grad(&layer.self_attn.k_proj.weight, &grads),
                ),
                (
                    "down_proj",
                    model.layers[1].mlp.down_proj.weight.id,
                    grad(&model.layers[1].mlp.down_proj.weight, &grads),
                ),
            ];
            if let Some(head) = &model.lm_head {
                checked.push(("lm_head", head.weight.id, grad(&head.weight, &grads)));
            }
            if let Some(bias) = &layer.self_attn.q_proj.bias {
                checked.push(("q_proj.bias", bias.id, grad(bias, &grads)));
            }
            if let Some(norm) = &layer.self_attn.q_norm {
                checked.push(("q_norm", norm.weight.id, grad(&norm.weight, &grads)));
            }
            assert!(checked.len() > 3, "{family} checks none of its own parameters");
            for (name, id, analytic) in checked {
                let mut order: Vec<usize> = (0..analytic.len()).collect();
                order.sort_by(|&a, &b| analytic[b].abs().total_cmp(&analytic[a].abs()));
                for &index in &order[..2] {
                    let at = |delta: f32| {
                        let nudged = model.clone().map(&mut Nudge { id, index, delta });
                        loss(&nudged, batch(&rows, 7, PAD, &IGNORED))
                    };
                    let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                    let want = analytic[index];
                    assert!(
                        (numeric - want).abs() <= 1e-2 * want.abs() + 1e-4,
                        "{family} {name}[{index}]: {want} analytic vs {numeric} numeric"
                    );
                }
            }
        }
    }
}
