//! One layer's held tokens: keys, values and bookkeeping, padded to the widest head.

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

use crate::{Moments, Order, Selection, MAX_SUMMARIES};

/// What one layer of an [`crate::EvictingCache`] holds.
///
/// Heads may hold different numbers of tokens (AdaKV): the layout is padded to the widest head,
/// `[batch, kv_heads, t, head_dim]`, with padding slots marked invalid and masked out of
/// attention by an additive bias. Memory is therefore `t` slots per head, where `t` is the widest
/// head's count (plus new tokens since the last eviction), not the context length.
pub(crate) struct LayerStore<B: Backend> {
    /// `[batch, kv_heads, t, head_dim]`, post-RoPE.
    pub keys: Tensor<B, 4>,
    /// `[batch, kv_heads, t, head_dim]`.
    pub values: Tensor<B, 4>,
    /// Original position of each slot, `[batch, kv_heads, t]` row-major.
    pub positions: Vec<u32>,
    /// Whether each slot holds a token, same layout.
    pub valid: Vec<bool>,
    /// `[batch, kv_heads, 1, t]`: 0 for valid slots, −∞ for padding; `None` when nothing is padded.
    pub bias: Option<Tensor<B, 4>>,
    /// Attention mass received per slot, `[batch, kv_heads, t]`, for policies that read it.
    pub mass: Option<Tensor<B, 3>>,
    /// The most recent queries, `[batch, heads, w, head_dim]`, for policies that read them.
    pub queries: Option<Tensor<B, 4>>,
    /// Moments of every token evicted so far, for policies that correct attention with them.
    pub moments: Option<Moments<B>>,
}

impl<B: Backend> LayerStore<B> {
    /// A store holding the first pass's tokens, positions `start..start + t`.
    pub fn new(keys: Tensor<B, 4>, values: Tensor<B, 4>, start: usize) -> Self {
        let [b, kv, t, _] = keys.dims();
        Self {
            keys,
            values,
            positions: (0..b * kv)
                .flat_map(|_| (start..start + t).map(|p| p as u32))
                .collect(),
            valid: vec![true; b * kv * t],
            bias: None,
            mass: None,
            queries: None,
            moments: None,
        }
    }

    /// Slots per head, `t`.
    pub fn slots(&self) -> usize {
        self.keys.dims()[2]
    }

    /// Appends `new` tokens at positions `start..`, valid in every head.
    pub fn append(&mut self, keys: Tensor<B, 4>, values: Tensor<B, 4>, start: usize) {
        let [b, kv, new, _] = keys.dims();
        let t = self.slots();
        self.keys = Tensor::cat(vec![self.keys.clone(), keys], 2);
        self.values = Tensor::cat(vec![self.values.clone(), values], 2);
        let mut positions = Vec::with_capacity(b * kv * (t + new));
        let mut valid = Vec::with_capacity(b * kv * (t + new));
        for row in 0..b * kv {
            positions.extend_from_slice(&self.positions[row * t..(row + 1) * t]);
            positions.extend((start..start + new).map(|p| p as u32));
            valid.extend_from_slice(&self.valid[row * t..(row + 1) * t]);
            valid.extend(std::iter::repeat_n(true, new));
        }
        self.positions = positions;
        self.valid = valid;
        if let Some(bias) = self.bias.take() {
            let zeros = Tensor::zeros([b, kv, 1, new], &bias.device());
            self.bias = Some(Tensor::cat(vec![bias, zeros], 3));
        }
    }

    /// Drops every slot from `t` on (the tokens of a replay pass), keeping the first `t`.
    pub fn truncate(&mut self, t: usize) {
        let slots = self.slots();
        if t >= slots {
            return;
        }
        fn head<T: Copy>(rows: &[T], slots: usize, t: usize) -> Vec<T> {
            rows.chunks(slots).flat_map(|r| &r[..t]).copied().collect()
        }
        self.keys = self.keys.clone().narrow(2, 0, t);
        self.values = self.values.clone().narrow(2, 0, t);
        self.positions = head(&self.positions, slots, t);
        self.valid = head(&self.valid, slots, t);
        self.bias = self.bias.take().map(|x| x.narrow(3, 0, t));
        self.mass = self.mass.take().map(|x| x.narrow(2, 0, t));
    }

    /// Tokens held per `[batch, kv_heads]` row.
    pub fn held(&self) -> Vec<usize> {
        self.valid
            .chunks(self.slots())
            .map(|row| row.iter().filter(|&&v| v).count())
            .collect()
    }

    /// Folds the slots `selection` does not keep into the moments (starting them if absent):
    /// the evicted tokens of each row are gathered, padded to the row with most, and weighted 0/1;
    /// with `segment = L > 0`, a token at position `p` goes to summary `min(p / L, S − 1)`, at
    /// most [`MAX_SUMMARIES`] `S` of them, so the state stays bounded however long the context.
    pub fn absorb_evicted(&mut self, selection: &Selection, order: Order, segment: usize) {
        let [b, kv, t, d] = self.keys.dims();
        let evicted: Vec<Vec<usize>> = selection
            .kept
            .iter()
            .enumerate()
            .map(|(row, kept)| {
                (0..t)
                    .filter(|&s| self.valid[row * t + s] && kept.binary_search(&s).is_err())
                    .collect()
            })
            .collect();
        let width = evicted.iter().map(Vec::len).max().unwrap_or(0);
        if width == 0 {
            return;
        }
        let summary_of = |row: usize, slot: usize| match segment {
            0 => 0,
            l => (self.positions[row * t + slot] as usize / l).min(MAX_SUMMARIES - 1),
        };
        let summaries = evicted
            .iter()
            .enumerate()
            .flat_map(|(row, slots)| slots.iter().map(move |&s| summary_of(row, s) + 1))
            .max()
            .unwrap_or(1);
        let mut index = Vec::with_capacity(b * kv * width);
        // weights[s]: 1 where the gathered token belongs to summary s.
        let mut weights = vec![Vec::with_capacity(b * kv * width); summaries];
        for (row, slots) in evicted.iter().enumerate() {
            for w in 0..width {
                let slot = slots.get(w).copied();
                index.push(slot.or(slots.first().copied()).unwrap_or(0) as i64);
                let owner = slot.map(|s| summary_of(row, s));
                for (s, weight) in weights.iter_mut().enumerate() {
                    weight.push(if owner == Some(s) { 1f32 } else { 0.0 });
                }
            }
        }
        let device = self.keys.device();
        let index = Tensor::<B, 3, Int>::from_data(TensorData::new(index, [b, kv, width]), &device)
            .unsqueeze_dim::<4>(3)
            .repeat_dim(3, d);
        let (keys, values) = (
            self.keys.clone().gather(2, index.clone()),
            self.values.clone().gather(2, index),
        );
        let batch = weights
            .into_iter()
            .map(|w| {
                let w = Tensor::from_data(TensorData::new(w, [b, kv, width, 1]), &device);
                Moments::of(keys.clone(), values.clone(), w, order)
            })
            .reduce(Moments::concat)
            .expect("at least one summary");
        self.moments = Some(match self.moments.take() {
            None => batch,
            Some(m) => m.merge(batch),
        });
    }

    /// Keeps the selected slots of each row, padding rows to the widest with invalid slots.
    pub fn retain(&mut self, selection: &Selection) {
        let [b, kv, t, d] = self.keys.dims();
        let width = selection.widest().max(1);
        let mut index = Vec::with_capacity(b * kv * width);
        let mut positions = Vec::with_capacity(b * kv * width);
        let mut valid = Vec::with_capacity(b * kv * width);
        for (row, kept) in selection.kept.iter().enumerate() {
            for w in 0..width {
                let slot = kept.get(w).copied();
                let source = slot.or(kept.first().copied()).unwrap_or(0);
                index.push(source as i64);
                positions.push(self.positions[row * t + source]);
                valid.push(slot.is_some());
            }
        }
        let device = self.keys.device();
        let index = Tensor::<B, 3, Int>::from_data(TensorData::new(index, [b, kv, width]), &device);
        let index4 = index.clone().unsqueeze_dim::<4>(3).repeat_dim(3, d);
        self.keys = self.keys.clone().gather(2, index4.clone());
        self.values = self.values.clone().gather(2, index4);
        self.mass = self.mass.take().map(|m| m.gather(2, index));
        self.bias = valid.contains(&false).then(|| {
            let bias: Vec<f32> = valid
                .iter()
                .map(|&v| if v { 0.0 } else { f32::NEG_INFINITY })
                .collect();
            Tensor::from_data(TensorData::new(bias, [b, kv, 1, width]), &device)
        });
        self.positions = positions;
        self.valid = valid;
    }

    /// Bytes held: every tensor (keys, values, mask bias, attention mass, query buffer, moments)
    /// at its element size, plus 4 bytes of position and 1 of validity per slot.
    pub fn bytes(&self) -> usize {
        fn size<B: Backend, const D: usize>(x: &Tensor<B, D>) -> usize {
            x.shape().num_elements() * x.dtype().size()
        }
        size(&self.keys)
            + size(&self.values)
            + self.bias.as_ref().map_or(0, size)
            + self.mass.as_ref().map_or(0, size)
            + self.queries.as_ref().map_or(0, size)
            + self.moments.as_ref().map_or(0, Moments::bytes)
            + self.positions.len() * 5
    }
}
