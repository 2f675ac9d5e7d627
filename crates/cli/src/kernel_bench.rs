//! `momentkv bench --kernel`: one decode step of attention on synthetic tensors, four ways, timed
//! in one run: tensor ops (unfused) and `KernelBackend::moment_attention` (the fused kernel on
//! wgpu and cuda), each without and with the moment correction.

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use momentkv::kernels::{attention_reference, moment_attention_reference, KernelBackend, Moments};
use momentkv::Error;

/// Attention geometry and timing options of the kernel benchmark.
#[derive(clap::Args, Clone)]
pub struct KernelShape {
    /// Query heads (`bench --kernel`).
    #[arg(long, default_value_t = 32)]
    pub heads: usize,
    /// KV heads (`bench --kernel`).
    #[arg(long, default_value_t = 8)]
    pub kv_heads: usize,
    /// Head dimension (`bench --kernel`).
    #[arg(long, default_value_t = 128)]
    pub head_dim: usize,
    /// Timed calls per measurement (`bench --kernel`), after as many untimed ones.
    #[arg(long, default_value_t = 50)]
    pub iters: usize,
    /// The device's memory bandwidth in GB/s, to print the fraction of the roofline reached.
    #[arg(long)]
    pub peak_gbs: Option<f64>,
}

/// Budgets measured when `--budgets` is not given.
const BUDGETS: [usize; 6] = [128, 256, 512, 1024, 2048, 4096];

/// One decode step's inputs: `q` `[1, heads, 1, d]`, `k`, `v` `[1, kv_heads, budget, d]`, and
/// one moment summary per KV head (all counts 0 in `empty`, so the kernel skips the correction).
struct Step<B: KernelBackend> {
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    moments: Moments<B>,
    empty: Moments<B>,
}

impl<B: KernelBackend> Step<B> {
    fn new(shape: &KernelShape, budget: usize, device: &B::Device) -> Self {
        let (h, kv, d) = (shape.heads, shape.kv_heads, shape.head_dim);
        let normal =
            |dims: [usize; 4]| Tensor::random(dims, Distribution::Normal(0.0, 1.0), device);
        let moments = Moments {
            count: Tensor::full([1, kv, 1, 1], 1000.0, device),
            key_mean: normal([1, kv, 1, d]),
            value_mean: normal([1, kv, 1, d]),
            cross: normal([1, kv, d, d]),
            key_sq: None,
        };
        let empty = Moments {
            count: Tensor::zeros([1, kv, 1, 1], device),
            ..moments.clone()
        };
        Self {
            q: normal([1, h, 1, d]),
            k: normal([1, kv, budget, d]),
            v: normal([1, kv, budget, d]),
            moments,
            empty,
        }
    }

    /// The step by [`KernelBackend::moment_attention`] with `moments`.
    fn fused(&self, moments: &Moments<B>) -> Tensor<B, 4> {
        B::moment_attention(
            self.q.clone(),
            self.k.clone(),
            self.v.clone(),
            None,
            moments.clone(),
        )
    }

    /// Bytes one step must read at least: q, k, v, one summary, and the output written.
    fn bytes(&self) -> usize {
        let size = |t: &Tensor<B, 4>| t.shape().num_elements() * t.dtype().size();
        2 * size(&self.q)
            + size(&self.k)
            + size(&self.v)
            + [&self.moments.count, &self.moments.key_mean]
                .into_iter()
                .chain([&self.moments.value_mean, &self.moments.cross])
                .map(size)
                .sum::<usize>()
    }
}

/// Mean seconds per call of `op` after as many untimed calls, synchronising the device around
/// the timed loop.
fn time<B: KernelBackend>(
    device: &B::Device,
    iters: usize,
    op: impl Fn() -> Tensor<B, 4>,
) -> Result<f64, Error> {
    let sync =
        || B::sync(device).map_err(|e| Error::Unsupported(format!("the device failed: {e:?}")));
    for _ in 0..iters {
        drop(op());
    }
    sync()?;
    let started = Instant::now();
    let mut outs = Vec::with_capacity(iters);
    for _ in 0..iters {
        outs.push(op());
    }
    sync()?;
    let seconds = started.elapsed().as_secs_f64() / iters as f64;
    drop(outs);
    Ok(seconds)
}

/// Runs the benchmark on `B` and prints one row per budget.
pub fn run<B: KernelBackend>(
    shape: &KernelShape,
    budgets: &[usize],
    device: &B::Device,
) -> Result<(), Error> {
    if shape.kv_heads == 0 || !shape.heads.is_multiple_of(shape.kv_heads) || shape.head_dim == 0 {
        return Err(Error::Unsupported(format!(
            "bench --kernel needs heads ({}) a multiple of kv-heads ({}) and head-dim ({}) > 0",
            shape.heads, shape.kv_heads, shape.head_dim
        )));
    }
    let budgets = if budgets.is_empty() {
        &BUDGETS[..]
    } else {
        budgets
    };
    if let Some(zero) = budgets.iter().find(|&&b| b == 0) {
        return Err(Error::Unsupported(format!(
            "budget {zero}: bench --kernel needs budgets of at least 1 token"
        )));
    }
    outln!(
        "backend      {} (kernels: {})",
        B::name(device),
        B::kernel_engine()
    );
    outln!(
        "decode step  1 query × {} heads over {} KV heads, head_dim {}, f32; mean of {} calls",
        shape.heads,
        shape.kv_heads,
        shape.head_dim,
        shape.iters
    );
    outln!(
        "\n{:>7} {:>12} {:>12} {:>12} {:>12} {:>9} {:>11} {:>9}{}",
        "budget",
        "unfused µs",
        "unf+corr µs",
        "fused µs",
        "fus+corr µs",
        "speedup",
        "corr cost",
        "GB/s",
        if shape.peak_gbs.is_some() {
            "  roofline"
        } else {
            ""
        }
    );
    for &budget in budgets {
        let step = Step::<B>::new(shape, budget, device);
        let iters = shape.iters.max(1);
        let unfused = time(device, iters, || {
            attention_reference(step.q.clone(), step.k.clone(), step.v.clone())
        })?;
        let unfused_corrected = time(device, iters, || {
            moment_attention_reference(
                step.q.clone(),
                step.k.clone(),
                step.v.clone(),
                None,
                step.moments.clone(),
            )
        })?;
        let fused = time(device, iters, || step.fused(&step.empty))?;
        let fused_corrected = time(device, iters, || step.fused(&step.moments))?;
        let gbs = step.bytes() as f64 / fused_corrected / 1e9;
        let roofline = shape
            .peak_gbs
            .map(|peak| format!("  {:>7.1}%", 100.0 * gbs / peak))
            .unwrap_or_default();
        outln!(
            "{budget:>7} {:>12.1} {:>12.1} {:>12.1} {:>12.1} {:>8.2}× {:>+10.1}% {gbs:>9.2}{roofline}",
            unfused * 1e6,
            unfused_corrected * 1e6,
            fused * 1e6,
            fused_corrected * 1e6,
            unfused_corrected / fused_corrected,
            100.0 * (fused_corrected / fused - 1.0),
        );
    }
    outln!(
        "\nspeedup: unfused corrected / fused corrected; corr cost: fused corrected over fused \
         without correction; GB/s: the step's minimum bytes (q, k, v, moments, output) over the \
         fused corrected time"
    );
    Ok(())
}
