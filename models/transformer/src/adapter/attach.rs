use burn::module::Module;
use momentkv_kernels::KernelBackend;

use super::{AdapterError, AdapterTarget, LoraConfig, LoraPair};
use crate::dense::Dense;
use crate::layer::DecoderLayer;
use crate::{ModelError, Transformer};

impl<B: KernelBackend> DecoderLayer<B> {
    /// The projection `target` names.
    pub(crate) fn projection(&self, target: AdapterTarget) -> &Dense<B> {
        match target {
            AdapterTarget::QProj => &self.self_attn.q_proj,
            AdapterTarget::KProj => &self.self_attn.k_proj,
            AdapterTarget::VProj => &self.self_attn.v_proj,
            AdapterTarget::OProj => &self.self_attn.o_proj,
            AdapterTarget::GateProj => &self.mlp.gate_proj,
            AdapterTarget::UpProj => &self.mlp.up_proj,
            AdapterTarget::DownProj => &self.mlp.down_proj,
        }
    }

    fn projection_mut(&mut self, target: AdapterTarget) -> &mut Dense<B> {
        match target {
            AdapterTarget::QProj => &mut self.self_attn.q_proj,
            AdapterTarget::KProj => &mut self.self_attn.k_proj,
            AdapterTarget::VProj => &mut self.self_attn.v_proj,
            AdapterTarget::OProj => &mut self.self_attn.o_proj,
            AdapterTarget::GateProj => &mut self.mlp.gate_proj,
            AdapterTarget::UpProj => &mut self.mlp.up_proj,
            AdapterTarget::DownProj => &mut self.mlp.down_proj,
        }
    }
}

impl<B: KernelBackend> Transformer<B> {
    /// The configuration of the adapter attached as side paths, `None` without one (or once it is
    /// merged).
    pub fn adapter(&self) -> Option<&LoraConfig> {
        self.adapter_config.as_ref()
    }

    /// Freezes every weight of the model and attaches a fresh LoRA adapter of `config` to the
    /// targeted projections of every layer, initialised as PEFT does ([`LoraPair::init`]: `B = 0`,
    /// so the model's output is unchanged). Only the adapters' factors require gradients, so under
    /// autodiff the backward pass computes no gradient for the base weights and an optimizer keeps
    /// no state for them.
    pub fn with_adapter(self, config: &LoraConfig) -> Result<Self, ModelError> {
        self.attach(config, |shape, device| {
            LoraPair::init(shape, config, device)
        })
    }

    /// Freezes every weight and attaches `make([out, in], device)` to each projection `config`
    /// targets, after checking `config` and that no adapter is attached yet.
    pub(crate) fn attach(
        self,
        config: &LoraConfig,
        make: impl Fn([usize; 2], &B::Device) -> LoraPair<B>,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if self.adapter_config.is_some() {
            return Err(AdapterError::AlreadyAttached.into());
        }
        let device = self.device();
        let mut model = self.no_grad();
        for layer in &mut model.layers {
            for &target in &config.targets {
                let dense = layer.projection_mut(target);
                dense.adapter = Some(make(dense.shape(), &device));
            }
        }
        model.adapter_config = Some(config.clone());
        Ok(model)
    }

    /// Folds the adapter into the weights (`W ← W + s·B·A` for each adapted projection) and drops
    /// the side paths, so inference runs at the base model's cost. The weights stay frozen. A model
    /// without an adapter is returned as it is.
    pub fn merge_adapter(mut self) -> Self {
        for layer in &mut self.layers {
            for target in AdapterTarget::ALL {
                layer.projection_mut(target).merge_adapter();
            }
        }
        self.adapter_config = None;
        self
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::module::{Module, ParamId};
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    use burn::tensor::Tensor;

    use super::*;
    use crate::testing::{batch, configs, max_diff, model, rows, Fill, B, IGNORED, PAD};

    /// The ids of every adapter factor of `model`.
    fn factor_ids(model: &Transformer<B>) -> Vec<ParamId> {
        model
            .layers
            .iter()
            .flat_map(|layer| AdapterTarget::ALL.map(|target| layer.projection(target)))
            .filter_map(|dense| dense.adapter.as_ref())
            .flat_map(|adapter| [adapter.lora_a.id, adapter.lora_b.id])
            .collect()
    }

    /// Logits `[batch, seq, vocab]` of the training forward pass on the test rows.
    fn logits(model: &Transformer<B>) -> Tensor<B, 3> {
        model
            .forward_train(batch(&rows(), 7, PAD, &[]))
            .unwrap()
            .logits
    }

    /// PEFT's initialisation: `A` within ±1/√in and not zero, `B` zero, so the model's output is
    /// unchanged.
    #[test]
    fn a_fresh_adapter_changes_nothing() {
        for (family, config) in configs() {
            let base = model(&config);
            let adapted = base.clone().with_adapter(&LoraConfig::new(3, 6.0)).unwrap();
            for layer in &adapted.layers {
                for target in AdapterTarget::ALL {
                    let dense = layer.projection(target);
                    let adapter = dense.adapter.as_ref().unwrap();
                    let bound = 1.0 / (dense.shape()[1] as f32).sqrt();
                    let a = adapter.lora_a.val().abs().max().into_scalar();
                    assert!(a > 0.0 && a <= bound, "{family} {target}: |A| max {a}");
                    assert_eq!(adapter.lora_b.val().abs().max().into_scalar(), 0.0);
                    assert_eq!(adapter.lora_a.dims()[0], 3);
                }
            }
            assert_eq!(max_diff(logits(&adapted), logits(&base)), 0.0, "{family}");
        }
    }

    /// The side path and the merged weights give the same logits, and merging leaves no adapter.
    #[test]
    fn merged_adapter_gives_the_side_paths_logits() {
        for (family, config) in configs() {
            let lora = LoraConfig::new(2, 5.0)
                .with_targets(vec![AdapterTarget::KProj, AdapterTarget::DownProj])
                .with_use_rslora(true);
            let adapted = model(&config)
                .with_adapter(&lora)
                .unwrap()
                .map(&mut Fill(7));
            let merged = adapted.clone().merge_adapter();
            assert!(merged.adapter().is_none() && factor_ids(&merged).is_empty());
            let diff = max_diff(logits(&merged), logits(&adapted));
            assert!(diff < 1e-5, "{family}: merged logits differ by {diff}");
        }
    }

    /// Under autodiff only the adapters' factors get gradients, an AdamW step keeps state for them
    /// alone and leaves the base weights as they were.
    #[test]
    fn only_adapter_factors_are_trained() {
        for (family, config) in configs() {
            let model = model(&config)
                .with_adapter(&LoraConfig::new(2, 4.0))
                .unwrap()
                .map(&mut Fill(11));
            let factors = factor_ids(&model);
            assert_eq!(factors.len(), config.num_hidden_layers * 7 * 2, "{family}");
            let loss = model
                .forward_train(batch(&rows(), 7, PAD, &IGNORED))
                .unwrap()
                .loss;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            assert_eq!(grads.len(), factors.len(), "{family}");
            for &id in &factors {
                let grad = grads.get::<NdArray, 2>(id).unwrap();
                assert!(grad.abs().max().into_scalar() > 0.0, "{family}");
            }

            let before = model.layers[0].self_attn.q_proj.weight.val();
            let mut optim = AdamWConfig::new().init::<B, Transformer<B>>();
            let stepped = optim.step(1e-2, model, grads);
            assert_eq!(optim.to_record().len(), factors.len(), "{family}");
            let after = stepped.layers[0].self_attn.q_proj.weight.val();
            assert_eq!(max_diff(after, before), 0.0, "{family}");
        }
    }

    #[test]
    fn a_second_adapter_is_refused() {
        let (_, config) = configs().into_iter().next().unwrap();
        let lora = LoraConfig::new(2, 4.0);
        let adapted = model(&config).with_adapter(&lora).unwrap();
        assert_eq!(adapted.adapter(), Some(&lora));
        let err = adapted.with_adapter(&lora).unwrap_err().to_string();
        assert!(err.contains("already has an adapter"), "{err}");
        let err = model(&config)
            .with_adapter(&LoraConfig::new(0, 4.0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rank (0)"), "{err}");
    }
}
