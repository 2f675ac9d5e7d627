/// The shape of the attention a cache serves: what policies need to know about the model,
/// as plain numbers, so the cache depends on no model crate.
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// Attention layers.
    pub layers: usize,
    /// Query heads per layer.
    pub heads: usize,
    /// Key/value heads per layer (`heads` is a multiple of it).
    pub kv_heads: usize,
    pub head_dim: usize,
    /// RoPE inverse frequencies `θ_i`, `head_dim / 2` of them, in the `rotate_half` layout
    /// (frequency `i` rotates channels `i` and `i + head_dim / 2`).
    pub inv_freq: Vec<f64>,
}

impl Geometry {
    /// Query heads per KV head.
    pub fn group(&self) -> usize {
        self.heads / self.kv_heads
    }
}
