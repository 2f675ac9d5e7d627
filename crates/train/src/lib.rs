//! LoRA fine-tuning of momentkv's transformers (Llama, Qwen2, Qwen3) in burn, on any backend
//! wrapped in burn's `Autodiff`: what `momentkv finetune` runs.
//!
//! - [`Dataset`]: plain text packed into windows, JSONL `text` rows, or JSONL chat `messages`
//!   scored on the assistant's turns only ([`data`]);
//! - [`WarmupCosine`]: `transformers`' warmup-then-cosine schedule as a burn `LrScheduler`;
//! - [`clip`]: gradient clipping by the global norm, as PyTorch's `clip_grad_norm_`;
//! - [`Trainer`]: the step loop on burn-optim's AdamW and `GradientsAccumulator`, held-out
//!   losses, [`Checkpoints`] of adapter, optimizer record and schedule written atomically,
//!   `--resume`, and a [`Summary`] with the loss curve ([`History::plot`]).
//!
//! # Why the loop is not burn-train's `Learner`
//!
//! burn 0.21's training machinery (`burn-train`: `Learner`, `SupervisedTraining`) is built around
//! epochs, and a fine-tuning run is counted in optimizer steps (`--steps`, `--eval-every`,
//! `--save-every`, `--resume` at any step). Read in its sources (`docs/notes/finetune.md`, §2):
//!
//! - validation, checkpoints, early stopping and resume happen once per **epoch**, so a held-out
//!   loss every N steps or a checkpoint every N steps would need an epoch redefined as N steps
//!   through a custom data loader;
//! - `lr_step` runs before every **micro-batch**, also under gradient accumulation, so a schedule
//!   would count micro-batches rather than optimizer steps, and accumulated gradients are summed,
//!   not weighted by each micro-batch's share of the scored tokens;
//! - the stock `SequenceOutput` syncs the **whole logits tensor** `[batch, seq, vocab]` to the host
//!   every step for its metrics;
//! - checkpoints are written by `File::create` on the final path, not through a temporary file and
//!   a rename, and the checkpointer `expect`s every save, so a full disk **panics** and can leave a
//!   half-written checkpoint where the good one was;
//! - nothing stops a run on a non-finite loss while keeping the last good checkpoint.
//!
//! So the loop here ([`Trainer::run`]) is written on burn-optim directly, keeping everything of
//! burn's that fits: `AdamW` through `OptimizerAdaptor`, `GradientsParams` and
//! `GradientsAccumulator`, the `LrScheduler` trait, and burn's record and recorder for the
//! optimizer state.

pub mod clip;
pub mod data;

mod checkpoint;
mod config;
mod error;
mod files;
mod history;
mod out_dir;
mod params;
mod schedule;
mod trainer;

use burn::backend::Autodiff;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::AdamW;
use momentkv_transformer::Transformer;

pub use checkpoint::{Checkpoints, TrainerState, CHECKPOINT_DIR};
pub use config::FinetuneConfig;
pub use data::{Dataset, Example, Format};
pub use error::TrainError;
pub use history::{EvalRecord, History, StepRecord};
pub use out_dir::{prepare_out_dir, LOSS_PLOT_FILE};
pub use params::Trainable;
pub use schedule::WarmupCosine;
pub use trainer::{Progress, Summary, Trainer};

/// The model being trained: a transformer on burn's autodiff backend over `B`.
pub type TrainingModel<B> = Transformer<Autodiff<B>>;

/// AdamW over the trainable parameters of a [`TrainingModel`].
pub(crate) type Optim<B> = OptimizerAdaptor<AdamW, TrainingModel<B>, Autodiff<B>>;

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    /// The tiny Llama checkpoint with a tied head, a byte-level BPE tokenizer and a ChatML
    /// template (`tests/fixtures/llama-tied`).
    pub(crate) fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/llama-tied")
    }
}
