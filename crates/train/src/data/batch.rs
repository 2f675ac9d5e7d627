use std::iter::repeat_n;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use momentkv_transformer::{TrainBatch, IGNORE_INDEX};

use super::Example;

/// A right-padded batch on the host, `[batch, seq]` with `seq` the longest sequence's length:
/// each row its tokens then padding (id 0, label [`IGNORE_INDEX`], mask false). The counts the
/// loop needs (scored targets, real tokens) are known here without reading the device.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    pub shape: [usize; 2],
    /// `[batch · seq]` token ids, row-major.
    pub tokens: Vec<i64>,
    /// `[batch · seq]` labels aligned with the tokens.
    pub labels: Vec<i64>,
    /// `[batch · seq]` true at real tokens.
    pub mask: Vec<bool>,
    /// The targets the loss averages over, `Σ_rows` [`Example::targets`].
    pub targets: usize,
    /// The real (unpadded) tokens.
    pub real_tokens: usize,
}

impl HostBatch {
    /// `rows` right-padded to the longest.
    pub fn new(rows: &[&Example]) -> Self {
        let seq = rows.iter().map(|e| e.tokens.len()).max().unwrap_or(0);
        let cells = rows.len() * seq;
        let mut batch = Self {
            shape: [rows.len(), seq],
            tokens: Vec::with_capacity(cells),
            labels: Vec::with_capacity(cells),
            mask: Vec::with_capacity(cells),
            targets: rows.iter().map(|e| e.targets()).sum(),
            real_tokens: rows.iter().map(|e| e.tokens.len()).sum(),
        };
        for row in rows {
            let padding = seq - row.tokens.len();
            let tokens = row.tokens.iter().map(|&t| i64::from(t));
            batch.tokens.extend(tokens.chain(repeat_n(0, padding)));
            let labels = row.labels.iter().copied();
            batch
                .labels
                .extend(labels.chain(repeat_n(IGNORE_INDEX, padding)));
            let real = repeat_n(true, row.tokens.len());
            batch.mask.extend(real.chain(repeat_n(false, padding)));
        }
        batch
    }

    /// The batch as the model's [`TrainBatch`] on `device`.
    pub fn to_device<B: Backend>(&self, device: &B::Device) -> TrainBatch<B> {
        TrainBatch {
            tokens: Tensor::from_data(TensorData::new(self.tokens.clone(), self.shape), device),
            labels: Tensor::from_data(TensorData::new(self.labels.clone(), self.shape), device),
            mask: Tensor::from_data(TensorData::new(self.mask.clone(), self.shape), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;

    #[test]
    fn rows_are_right_padded_and_counted() {
        let long = Example::all_scored(vec![3, 1, 4, 1]);
        let short = Example {
            tokens: vec![5, 9],
            labels: vec![IGNORE_INDEX, 9],
        };
        let batch = HostBatch::new(&[&long, &short]);
        assert_eq!(batch.shape, [2, 4]);
        assert_eq!(batch.tokens, [3, 1, 4, 1, 5, 9, 0, 0]);
        assert_eq!(
            batch.labels,
            [3, 1, 4, 1, IGNORE_INDEX, 9, IGNORE_INDEX, IGNORE_INDEX]
        );
        assert_eq!(
            batch.mask,
            [true, true, true, true, true, true, false, false]
        );
        assert_eq!((batch.targets, batch.real_tokens), (4, 6));
        let device = Default::default();
        let on_device = batch.to_device::<NdArray>(&device);
        assert_eq!(on_device.mask.dims(), [2, 4]);
        let labels: Vec<i64> = on_device.labels.into_data().iter::<i64>().collect();
        assert_eq!(labels, batch.labels);
    }
}
