/// Misuse of a cache: each variant names the layer or shape at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CacheError {
    #[error("layer {layer} is out of range: the cache has {layers} layers")]
    NoSuchLayer { layer: usize, layers: usize },
    #[error("layer {layer}: attend() was called without prepare() for the new tokens")]
    NotPrepared { layer: usize },
    #[error("layer {layer}: {what} has shape {found:?}, expected {expected:?}")]
    Shape {
        layer: usize,
        what: &'static str,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
}
