use burn::tensor::{backend::Backend, Tensor};

use crate::Geometry;

/// What a cache knows of the model it serves, fixed when the cache is built: the attention
/// [`Geometry`] and the per-layer weights that policies read (LaProx's output projections).
///
/// Policies derive what they need from it once ([`crate::Scorer::layer_state`]), so models call
/// no policy-specific hook while they run. A cache built from a bare [`Geometry`] (tensors without
/// a model) has no weights; a policy that needs them then fails to build, naming them.
#[derive(Debug, Clone)]
pub struct ModelContext<B: Backend> {
    pub geometry: Geometry,
    /// Per layer, the attention output projection `[hidden, heads · head_dim]` in the
    /// checkpoint's layout (query head `h` owns columns `h · head_dim..(h + 1) · head_dim`);
    /// empty when not given.
    pub output_projections: Vec<Tensor<B, 2>>,
}

impl<B: Backend> ModelContext<B> {
    /// Layer `layer`'s output projection, if the context has them.
    pub fn output_projection(&self, layer: usize) -> Option<&Tensor<B, 2>> {
        self.output_projections.get(layer)
    }
}

impl<B: Backend> From<Geometry> for ModelContext<B> {
    fn from(geometry: Geometry) -> Self {
        Self {
            geometry,
            output_projections: Vec::new(),
        }
    }
}
