//! Tiny models and batches the unit tests share (training, adapters), differentiated under
//! `Autodiff<NdArray>`.

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::{RopeScaling, TrainBatch, Transformer, TransformerConfig, IGNORE_INDEX};

pub(crate) type B = Autodiff<NdArray>;

const VOCAB: usize = 13;
/// What the test batches' padding holds, unless a test says otherwise.
pub(crate) const PAD: u32 = 12;

/// Two-layer models of each family: Llama (untied head, no biases), Qwen2 (q/k/v biases, tied
/// head) and Qwen3 (q/k norms, `head_dim` 6 where hidden / heads is 2).
pub(crate) fn configs() -> [(&'static str, TransformerConfig); 3] {
    let base = TransformerConfig {
        vocab_size: VOCAB,
        hidden_size: 8,
        intermediate_size: 12,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 4,
        rms_norm_eps: 1e-6,
        rope_theta: 10000.0,
        rope_scaling: RopeScaling::None,
        max_position_embeddings: 32,
        tie_word_embeddings: false,
        attention_bias: false,
        output_bias: false,
        qk_norm: false,
    };
    let qwen2 = TransformerConfig {
        tie_word_embeddings: true,
        attention_bias: true,
        ..base.clone()
    };
    let qwen3 = TransformerConfig {
        head_dim: 6,
        qk_norm: true,
        ..base.clone()
    };
    [("llama", base), ("qwen2", qwen2), ("qwen3", qwen3)]
}

/// Fills every parameter with uniform values in `[−0.5, 0.5)` from a xorshift generator seeded
/// with the field, so the models do not depend on the backend's shared random state. Whether a
/// parameter requires gradients is kept.
pub(crate) struct Fill(pub u64);

impl Fill {
    fn sample(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

impl<Bk: Backend> ModuleMapper<Bk> for Fill {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<Bk, D>>) -> Param<Tensor<Bk, D>> {
        let (id, tensor, mapper) = param.consume();
        let values: Vec<f32> = (0..tensor.shape().num_elements())
            .map(|_| self.sample())
            .collect();
        let value = Tensor::<Bk, 1>::from_floats(values.as_slice(), &tensor.device())
            .reshape(tensor.dims())
            .set_require_grad(tensor.is_require_grad());
        Param::from_mapped_value(id, value, mapper)
    }
}

/// A model of `config` with every parameter filled by [`Fill`].
pub(crate) fn model(config: &TransformerConfig) -> Transformer<B> {
    Transformer::<B>::new(config, &Default::default())
        .unwrap()
        .map(&mut Fill(0x9E37_79B9_7F4A_7C15))
}

/// `rows` right-padded with `pad` to `seq` positions, labels equal to the tokens except
/// [`IGNORE_INDEX`] at the `(row, position)` pairs of `ignore`.
pub(crate) fn batch(
    rows: &[Vec<u32>],
    seq: usize,
    pad: u32,
    ignore: &[(usize, usize)],
) -> TrainBatch<B> {
    let shape = [rows.len(), seq];
    let (mut tokens, mut labels, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    for (r, row) in rows.iter().enumerate() {
        for i in 0..seq {
            let id = i64::from(row.get(i).copied().unwrap_or(pad));
            tokens.push(id);
            labels.push(if ignore.contains(&(r, i)) {
                IGNORE_INDEX
            } else {
                id
            });
            mask.push(i < row.len());
        }
    }
    let device = Default::default();
    TrainBatch {
        tokens: Tensor::from_data(TensorData::new(tokens, shape), &device),
        labels: Tensor::from_data(TensorData::new(labels, shape), &device),
        mask: Tensor::from_data(TensorData::new(mask, shape), &device),
    }
}

/// Two rows, the second padded from 4 to 7 positions; label 3 of the first is ignored.
pub(crate) fn rows() -> Vec<Vec<u32>> {
    vec![vec![3, 1, 4, 1, 5, 9, 2], vec![6, 5, 3, 5]]
}

pub(crate) const IGNORED: [(usize, usize); 1] = [(0, 3)];

/// The largest absolute difference between two tensors of the same shape.
pub(crate) fn max_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar()
}
