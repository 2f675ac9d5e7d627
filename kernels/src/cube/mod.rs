//! CubeCL fast paths for burn's cube backends (wgpu, cuda), and their fusion wrapper.
//!
//! [`CubeBackend`] runs [`crate::KernelBackend::moment_attention`] as one fused kernel
//! ([`kernel`]); `Fusion<B>` records it as a custom operation in the fusion stream and runs `B`'s
//! implementation when the stream executes. burn's `Wgpu` and `Cuda` are
//! `Fusion<CubeBackend<..>>`, so both impls are what they use. Shapes the kernel does not cover
//! fall back to the tensor-op reference.

mod fusion;
mod kernel;

use burn::tensor::{DType, Shape, Tensor, TensorMetadata, TensorPrimitive};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use cubecl::prelude::*;

use crate::{moment_attention_reference, KernelBackend, Summaries};

/// Most units per cube the kernel asks for; `d` above it falls back to the reference.
const MAX_WIDTH: usize = 256;

/// Keys each unit scores per chunk: a chunk of `W · PER_UNIT` keys costs two tree reductions
/// (barriers) and `4 · W · PER_UNIT` bytes of shared memory (8 KB at `W = 256`).
const PER_UNIT: usize = 8;

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> KernelBackend
    for CubeBackend<R, F, I, BT>
{
    fn moment_attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        bias: Option<Tensor<Self, 4>>,
        moments: Summaries<Self>,
    ) -> Tensor<Self, 4> {
        let max_units = R::client(&q.device())
            .properties()
            .hardware
            .max_units_per_cube;
        let width = width(&q, &k, &bias, &moments);
        let Some(width) = width.filter(|&w| w as u32 <= max_units) else {
            return moment_attention_reference(q, k, v, bias, moments);
        };
        let raw = |t: Tensor<Self, 4>| t.into_primitive().tensor();
        let out = launch::<R>(
            [
                raw(q),
                raw(k),
                raw(v),
                raw(moments.count),
                raw(moments.key_mean),
                raw(moments.value_mean),
                raw(moments.cross),
            ],
            bias.map(raw),
            moments.key_sq.map(raw),
            width,
        );
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    fn kernel_engine() -> &'static str {
        "cubecl"
    }
}

/// The cube width for these inputs, `None` where the kernel does not apply: mixed or unsupported
/// dtypes, `heads` not a multiple of `kv_heads`, `t < s`, `d` over [`MAX_WIDTH`], or summary
/// tensors whose shapes disagree.
fn width<B: burn::tensor::backend::Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    bias: &Option<Tensor<B, 4>>,
    m: &Summaries<B>,
) -> Option<usize> {
    let [batch, heads, s, d] = q.dims();
    let [_, kv_heads, t, _] = k.dims();
    let summaries = m.count.dims()[2];
    let dtype = q.dtype();
    let same = [&m.count, &m.key_mean, &m.value_mean, &m.cross, k]
        .into_iter()
        .chain(bias)
        .chain(&m.key_sq)
        .all(|x| x.dtype() == dtype);
    let fits = matches!(dtype, DType::F32 | DType::F16 | DType::BF16)
        && same
        && kv_heads > 0
        && heads.is_multiple_of(kv_heads)
        && s >= 1
        && t >= s
        && d <= MAX_WIDTH
        && m.count.dims() == [batch, kv_heads, summaries, 1]
        && m.key_mean.dims() == [batch, kv_heads, summaries, d]
        && m.value_mean.dims() == [batch, kv_heads, summaries, d]
        && m.cross.dims() == [batch, kv_heads, summaries * d, d]
        && m.key_sq
            .as_ref()
            .is_none_or(|x| x.dims() == [batch, kv_heads, summaries, d])
        && bias
            .as_ref()
            .is_none_or(|x| x.dims() == [batch, kv_heads, 1, t]);
    fits.then(|| d.next_power_of_two().max(32))
}

/// Launches the kernel: `inputs` are `[q, k, v, count, key_mean, value_mean, cross]`.
fn launch<R: CubeRuntime>(
    inputs: [CubeTensor<R>; 7],
    bias: Option<CubeTensor<R>>,
    key_sq: Option<CubeTensor<R>>,
    width: usize,
) -> CubeTensor<R> {
    let [q, k, v, count, key_mean, value_mean, cross] = inputs.map(into_contiguous);
    let [batch, heads, s, d] = q.shape().dims::<4>();
    let client = q.client.clone();
    let dtype = q.dtype;
    let out = empty_device_contiguous_dtype::<R>(
        client.clone(),
        q.device.clone(),
        Shape::new([batch, heads, s, d]),
        dtype,
    );
    let (has_bias, second_order) = (bias.is_some(), key_sq.is_some());
    // Absent optional inputs are bound to another input and never read.
    let bias = bias.map(into_contiguous).unwrap_or_else(|| count.clone());
    let key_sq = key_sq
        .map(into_contiguous)
        .unwrap_or_else(|| key_mean.clone());
    kernel::moment_attention_kernel::launch::<R>(
        &client,
        CubeCount::Static(s as u32, heads as u32, batch as u32),
        CubeDim::new_1d(width as u32),
        q.into_tensor_arg(),
        k.into_tensor_arg(),
        v.into_tensor_arg(),
        bias.into_tensor_arg(),
        count.into_tensor_arg(),
        key_mean.into_tensor_arg(),
        value_mean.into_tensor_arg(),
        cross.into_tensor_arg(),
        key_sq.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        width,
        PER_UNIT,
        has_bias,
        second_order,
        dtype.into(),
    );
    out
}
