//! [`KernelBackend::moment_attention`] inside burn's fusion stream.
//!
//! The op is registered as a custom operation (burn-vision's pattern for custom ops under
//! fusion): the stream flushes the fused element-wise work that produces its inputs, then runs the
//! inner backend's `moment_attention` on their handles.

use std::marker::PhantomData;

use burn::tensor::{Shape, Tensor, TensorPrimitive};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionBackend, FusionRuntime};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use crate::{KernelBackend, Moments};

impl<B: FusionBackend + KernelBackend> KernelBackend for Fusion<B> {
    fn moment_attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        bias: Option<Tensor<Self, 4>>,
        moments: Moments<Self>,
    ) -> Tensor<Self, 4> {
        let [batch, heads, s, d] = q.dims();
        let (has_bias, second_order) = (bias.is_some(), moments.key_sq.is_some());
        let inputs: Vec<_> = [q, k, v, moments.count, moments.key_mean]
            .into_iter()
            .chain([moments.value_mean, moments.cross])
            .chain(bias)
            .chain(moments.key_sq)
            .map(|t| t.into_primitive().tensor())
            .collect();
        let client = inputs[0].client.clone();
        let streams = OperationStreams::with_inputs(&inputs);
        let out = TensorIr::uninit(
            client.create_empty_handle(),
            Shape::new([batch, heads, s, d]),
            inputs[0].dtype,
        );
        let inputs: Vec<_> = inputs.into_iter().map(|t| t.into_ir()).collect();
        let desc = CustomOpIr::new("momentkv_moment_attention", &inputs, &[out]);
        let op = MomentAttention::<B> {
            desc: desc.clone(),
            has_bias,
            second_order,
            backend: PhantomData,
        };
        let out = client
            .register(streams, OperationIr::Custom(desc), op)
            .output();
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    fn kernel_engine() -> &'static str {
        B::kernel_engine()
    }
}

/// The recorded op: inputs `[q, k, v, count, key_mean, value_mean, cross, bias?, key_sq?]`.
#[derive(Debug)]
struct MomentAttention<B> {
    desc: CustomOpIr,
    has_bias: bool,
    second_order: bool,
    backend: PhantomData<B>,
}

impl<B: FusionBackend + KernelBackend> Operation<B::FusionRuntime> for MomentAttention<B> {
    fn execute(
        &self,
        handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
    ) {
        let mut inputs = self.desc.inputs.iter().map(|ir| {
            Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(
                handles.get_float_tensor::<B>(ir),
            ))
        });
        let mut next = || inputs.next().expect("inputs as registered");
        let (q, k, v) = (next(), next(), next());
        let (count, key_mean, value_mean, cross) = (next(), next(), next(), next());
        let bias = self.has_bias.then(&mut next);
        let key_sq = self.second_order.then(&mut next);
        let moments = Moments {
            count,
            key_mean,
            value_mean,
            cross,
            key_sq,
        };
        let out = B::moment_attention(q, k, v, bias, moments);
        let [out_ir] = &self.desc.outputs[..] else {
            unreachable!("one output registered")
        };
        handles.register_float_tensor::<B>(&out_ir.id, out.into_primitive().tensor());
    }
}
