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

use crate::{moment_attention_reference, KernelBackend, Moments};

/// Most units per cube the kernel asks for; `d` above it falls back to the reference.
const MAX_WIDTH: usize = 256;

/// Chunk weights held in shared memory per cube (`W · g · per_unit`, 8 KB of f32): a chunk costs
/// two tree reductions (barriers), so larger chunks mean fewer.
const CHUNK_FLOATS: usize = 2048;

/// The launch's shape: cube width `W`, query heads per KV head `g`, keys per unit and chunk.
#[derive(Debug, Clone, Copy)]
struct Plan {
    width: usize,
    group: usize,
    per_unit: usize,
}

impl Plan {
    /// Shared memory the kernel declares: queries, reduction buffer and chunk weights.
    fn shared_bytes(self) -> usize {
        4 * self.width * self.group * (2 + self.per_unit)
    }
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> KernelBackend
    for CubeBackend<R, F, I, BT>
{
    fn moment_attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        bias: Option<Tensor<Self, 4>>,
        moments: Moments<Self>,
    ) -> Tensor<Self, 4> {
        let client = R::client(&q.device());
        let hardware = &client.properties().hardware;
        let plan = plan(&q, &k, &bias, &moments).filter(|p| {
            p.width as u32 <= hardware.max_units_per_cube
                && p.shared_bytes() <= hardware.max_shared_memory_size
        });
        let Some(plan) = plan else {
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
            plan,
        );
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    fn kernel_engine() -> &'static str {
        "cubecl"
    }
}

/// The launch for these inputs, `None` where the kernel does not apply: mixed or unsupported
/// dtypes, `heads` not a multiple of `kv_heads`, `t < s`, `d` over [`MAX_WIDTH`], a query group
/// too large for shared memory (`W · g > CHUNK_FLOATS`), or summary tensors whose shapes
/// disagree.
fn plan<B: burn::tensor::backend::Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    bias: &Option<Tensor<B, 4>>,
    m: &Moments<B>,
) -> Option<Plan> {
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
    let width = d.next_power_of_two().max(32);
    let group = heads / kv_heads.max(1);
    (fits && width * group <= CHUNK_FLOATS).then(|| Plan {
        width,
        group,
        per_unit: CHUNK_FLOATS / (width * group),
    })
}

/// Launches the kernel: `inputs` are `[q, k, v, count, key_mean, value_mean, cross]`.
fn launch<R: CubeRuntime>(
    inputs: [CubeTensor<R>; 7],
    bias: Option<CubeTensor<R>>,
    key_sq: Option<CubeTensor<R>>,
    plan: Plan,
) -> CubeTensor<R> {
    let [q, k, v, count, key_mean, value_mean, cross] = inputs.map(into_contiguous);
    let [batch, heads, s, d] = q.shape().dims::<4>();
    let kv_heads = k.shape().dims::<4>()[1];
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
        CubeCount::Static(s as u32, kv_heads as u32, batch as u32),
        CubeDim::new_1d(plan.width as u32),
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
        plan.width,
        plan.group,
        plan.per_unit,
        has_bias,
        second_order,
        dtype.into(),
    );
    out
}
