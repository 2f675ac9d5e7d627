use crate::adapter::LoraConfig;
use crate::dense::Dense;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{Int, Tensor, TensorData};
use momentkv_cache::{Geometry, KvCache, ModelContext, Phase};
use momentkv_kernels::KernelBackend;

use crate::layer::DecoderLayer;
use crate::norm::RmsNorm;
use crate::{ModelError, Rope, TransformerConfig};

/// A decoder-only transformer. Field names follow Hugging Face's checkpoint names (without the
/// `model.` prefix), so weights load without a renaming table.
#[derive(Module, Debug)]
pub struct Transformer<B: KernelBackend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// `None` when the output head is tied to `embed_tokens`.
    pub lm_head: Option<Dense<B>>,
    #[module(skip)]
    rope: Rope,
    #[module(skip)]
    config: TransformerConfig,
    /// The configuration of the adapter attached as side paths, if any ([`Transformer::adapter`]).
    #[module(skip)]
    pub(crate) adapter_config: Option<LoraConfig>,
}

impl<B: KernelBackend> Transformer<B> {
    /// A model with lazily initialised parameters, to be filled by a weight loader.
    pub fn new(config: &TransformerConfig, device: &B::Device) -> Result<Self, ModelError> {
        config.validate()?;
        let c = config;
        Ok(Self {
            embed_tokens: EmbeddingConfig::new(c.vocab_size, c.hidden_size).init(device),
            layers: (0..c.num_hidden_layers)
                .map(|_| DecoderLayer::new(c, device))
                .collect(),
            norm: RmsNorm::new(c.hidden_size, c.rms_norm_eps, device),
            lm_head: (!c.tie_word_embeddings)
                .then(|| Dense::new(c.hidden_size, c.vocab_size, false, device)),
            rope: Rope::new(c.head_dim, c.rope_theta, &c.rope_scaling),
            config: c.clone(),
            adapter_config: None,
        })
    }

    pub fn config(&self) -> &TransformerConfig {
        &self.config
    }

    pub fn device(&self) -> B::Device {
        self.norm.weight.device()
    }

    /// What a KV cache needs to know about this model: its attention geometry and the per-layer
    /// weights that policies read (the output projections as applied, an unmerged adapter's update
    /// included; handles, not copies, without one).
    pub fn cache_context(&self) -> ModelContext<B> {
        let c = &self.config;
        ModelContext {
            geometry: Geometry {
                layers: c.num_hidden_layers,
                heads: c.num_attention_heads,
                kv_heads: c.num_key_value_heads,
                head_dim: c.head_dim,
                inv_freq: self.rope.inv_freq().to_vec(),
            },
            output_projections: self
                .layers
                .iter()
                .map(|l| l.self_attn.o_proj.effective_weight())
                .collect(),
        }
    }

    /// Runs `tokens` (`[batch, seq]` ids) through every layer, continuing from what `cache` holds,
    /// and returns the final-norm hidden states `[batch, seq, hidden]`. `phase` tells the cache
    /// whether these are prompt or generated tokens.
    pub fn forward(
        &self,
        tokens: &[Vec<u32>],
        phase: Phase,
        cache: &mut impl KvCache<B>,
    ) -> Result<Tensor<B, 3>, ModelError> {
        let batch = tokens.len();
        let seq = tokens.first().map_or(0, Vec::len);
        if seq == 0 {
            return Err(ModelError::EmptyPrompt);
        }
        let limit = self.config.max_position_embeddings;
        if cache.seen() + seq > limit {
            return Err(ModelError::ContextOverflow {
                tokens: cache.seen() + seq,
                limit,
            });
        }
        let vocab = self.config.vocab_size;
        let mut ids = Vec::with_capacity(batch * seq);
        for row in tokens {
            if row.len() != seq {
                return Err(ModelError::RaggedBatch);
            }
            for &id in row {
                if id as usize >= vocab {
                    return Err(ModelError::TokenOutOfRange { id, vocab });
                }
                ids.push(id as i64);
            }
        }
        let device = self.device();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch, seq]), &device);

        let start = cache.prepare(seq, phase)?;
        let (cos, sin) = self.rope.tables::<B>(start, seq, &device);
        let mut x = self.embed_tokens.forward(ids);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x, i, &cos, &sin, cache)?;
        }
        Ok(self.norm.forward(x))
    }

    /// Runs `tokens` (`[batch, seq]` ids, each below `vocab_size`) through every layer with
    /// causal attention over the sequence itself and no cache, at positions `0..seq`, and returns
    /// the final-norm hidden states `[batch, seq, hidden]`: the training entry point, sharing
    /// every layer's weights and attention code with [`Transformer::forward`]. Only tensor ops,
    /// so it differentiates under burn's `Autodiff`; the ids are not read back to check their
    /// range (the caller's batcher does that on the host).
    pub fn forward_causal(&self, tokens: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>, ModelError> {
        let [_, seq] = tokens.dims();
        if seq == 0 {
            return Err(ModelError::EmptyPrompt);
        }
        let limit = self.config.max_position_embeddings;
        if seq > limit {
            return Err(ModelError::ContextOverflow { tokens: seq, limit });
        }
        let (cos, sin) = self.rope.tables::<B>(0, seq, &tokens.device());
        let mut x = self.embed_tokens.forward(tokens);
        for layer in &self.layers {
            x = layer.forward_causal(x, &cos, &sin);
        }
        Ok(self.norm.forward(x))
    }

    /// Output logits `[batch, seq, vocab]` of hidden states `[batch, seq, hidden]`.
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => {
                let [b, s, h] = hidden.dims();
                let weight = self.embed_tokens.weight.val();
                B::dense(hidden.reshape([b * s, h]), weight).reshape([b, s, self.config.vocab_size])
            }
        }
    }

    /// Logits of the last position only, `[batch, vocab]`: what generation needs, without the
    /// output head's cost over the whole prompt.
    pub fn last_logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let [b, s, _] = hidden.dims();
        self.logits(hidden.narrow(1, s - 1, 1))
            .reshape([b, self.config.vocab_size])
    }
}
