//! LaProx-style output-aware scoring (Mai & Kim, arXiv 2605.07234): a token is worth what it
//! contributes to the layer's output after the output projection, summed over the heads that read
//! it, not its attention weight alone.
//!
//! A layer's attention output, projected, is a sum of rank-one terms, one per (query head `h`,
//! token `j`): `O = Σ_h Σ_j A_h[:, j] (W_O^h v_j)ᵀ`, with `A_h` the attention of the window's
//! queries and `W_O^h` `[hidden, head_dim]` head `h`'s block of the output projection. Evicting
//! token `j` from KV head `k` removes, for the query heads `h ∈ G(k)` of its group, the matrix
//! `C_j = Σ_{h∈G(k)} A_h[:, j] (W_O^h v_j)ᵀ` from the product, so the score is its size:
//!
//! ```text
//! ‖C_j‖_F² = Σ_{h,h' ∈ G(k)} (A_h[:, j] · A_h'[:, j]) (v_jᵀ W_O^hᵀ W_O^h' v_j)
//! ```
//!
//! The cross terms `h ≠ h'` are the dependency between heads: two heads that attend a token and
//! write opposite directions cancel, two that write the same direction add up. The head-group
//! Gram `W_O^hᵀ W_O^h'` is computed once per layer ([`output_gram`]). Scores are in the units of
//! the layer's output, so they compare across heads and the policy shares each layer's budget
//! among its heads by them ([`crate::Allocation::Adaptive`]). As in SnapKV, scores are then pooled
//! over neighbouring positions.

use burn::config::Config;
use burn::tensor::{backend::Backend, Tensor};

use super::adakv::ALPHA;
use super::snapkv::SnapKv;
use super::{Entry, KERNEL, PRESET, WINDOW};
use crate::params::Args;
use crate::scorer::{host, Inputs, Observation, QueryNeed, Scorer};
use crate::{Allocation, CacheError, Geometry, ModelContext, Policy};

pub static ENTRY: Entry = Entry {
    name: "laprox",
    aliases: &["output_aware"],
    summary: "LaProx-style output-aware scoring: each token's contribution to the layer's \
              projected output over the window, cross-head terms included, with the layer's \
              budget shared among heads by score",
    params: &[WINDOW, KERNEL, PRESET, ALPHA],
    plain_scorer: false,
    kvpress: &[],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    let (SnapKv { window, kernel }, preset) = SnapKv::read(args)?;
    let alpha = args.real("alpha")?;
    Ok(preset.protect(
        window,
        Policy {
            allocation: Allocation::Adaptive { alpha },
            ..Policy::scored(LaProx { window, kernel })
        },
    ))
}

/// Output-aware scores of the last `window` queries, pooled with odd width `kernel`.
#[derive(Config, Debug)]
pub struct LaProx {
    pub window: usize,
    pub kernel: usize,
}

/// The head-group Gram of an output projection: for each KV head `k` and query head `g` of its
/// group, `W_O^{g}ᵀ [W_O^{0} … W_O^{G−1}]`, `[kv_heads, group, head_dim, group · head_dim]`.
///
/// `weight` is the projection in the checkpoint's layout, `[hidden, heads · head_dim]`, query head
/// `h = k · group + g` owning columns `h · head_dim..(h + 1) · head_dim`.
pub fn output_gram<B: Backend>(
    layer: usize,
    weight: &Tensor<B, 2>,
    geometry: &Geometry,
) -> Result<Tensor<B, 4>, CacheError> {
    let (kv, g, d) = (geometry.kv_heads, geometry.group(), geometry.head_dim);
    let [hidden, cols] = weight.dims();
    if cols != kv * g * d {
        return Err(CacheError::Shape {
            layer,
            what: "output projection",
            found: vec![hidden, cols],
            expected: vec![hidden, kv * g * d],
        });
    }
    let w = weight.clone().transpose().reshape([kv, g * d, hidden]);
    Ok(w.clone()
        .matmul(w.swap_dims(1, 2))
        .reshape([kv, g, d, g * d]))
}

impl<B: Backend> Scorer<B> for LaProx {
    fn inputs(&self) -> Inputs {
        Inputs {
            queries: QueryNeed::Recent(self.window),
            ..Inputs::NONE
        }
    }

    fn layer_state(
        &self,
        layer: usize,
        model: &ModelContext<B>,
    ) -> Result<Option<Tensor<B, 4>>, CacheError> {
        let weight = model
            .output_projection(layer)
            .ok_or(CacheError::NoOutputProjection {
                layer,
                policy: ENTRY.name.into(),
            })?;
        output_gram(layer, weight, &model.geometry).map(Some)
    }

    fn score(&self, obs: &Observation<B>) -> Vec<f32> {
        let gram = obs
            .state
            .expect("the cache shows LaProx the output Gram it built");
        let weights = obs.window_weights(self.window, "LaProx");
        let [b, kv, rows, t] = weights.dims();
        let (g, d) = (obs.geometry.group(), obs.geometry.head_dim);
        let w = rows / g;
        // Attention overlaps A_h[:, j] · A_h'[:, j], [batch · kv_heads, t, group, group].
        let a = weights.reshape([b * kv, g, w, t]).permute([0, 3, 1, 2]);
        let overlap = a.clone().matmul(a.swap_dims(2, 3));
        let values = obs.values.clone();
        let mut square = Tensor::<B, 3>::zeros([b * kv, t, 1], &values.device());
        for h in 0..g {
            // v_jᵀ W_O^hᵀ W_O^h' v_j for every h' of the group, [batch · kv_heads, t, group].
            let block = gram
                .clone()
                .narrow(1, h, 1)
                .reshape([1, kv, d, g * d])
                .expand([b, kv, d, g * d]);
            let projected = values.clone().matmul(block).reshape([b, kv, t, g, d]);
            let energy = (projected * values.clone().unsqueeze_dim::<5>(3))
                .sum_dim(4)
                .reshape([b * kv, t, g]);
            let row = overlap.clone().narrow(2, h, 1).reshape([b * kv, t, g]);
            square = square + (row * energy).sum_dim(2);
        }
        let norm = square.clamp_min(0.0).sqrt().reshape([b * kv, 1, t]);
        host(obs.pool_slots(norm, w, self.kernel))
    }
}
