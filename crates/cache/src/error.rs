/// Misuse of a cache or a bad policy setting: each variant names the layer, shape or setting at
/// fault.
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
    #[error(
        "policy '{policy}' scores tokens by layer {layer}'s output projection, which the cache's \
         model context lacks: build the cache from the model's (Transformer::cache_context)"
    )]
    NoOutputProjection { layer: usize, policy: String },
    #[error("unknown policy '{name}'; known policies: {known}")]
    UnknownPolicy { name: String, known: String },
    #[error("policy '{policy}' has no parameter '{key}'; its parameters: {known}")]
    UnknownParameter {
        policy: String,
        key: String,
        known: String,
    },
    #[error("policy '{policy}': parameter '{key}' = '{value}' is invalid: {reason}")]
    BadParameter {
        policy: String,
        key: String,
        value: String,
        reason: String,
    },
    #[error("invalid budget: {0}")]
    BadBudget(String),
    #[error("invalid eviction schedule: {0}")]
    BadSchedule(String),
    #[error("cannot fork this prefill record: {0}")]
    Fork(String),
    #[error("replay: {0}")]
    Replay(String),
}
