//! Checkpoints of a run, in `OUT/checkpoint/`:
//!
//! ```text
//! checkpoint/latest                   the name of the newest complete checkpoint ("step-000200")
//! checkpoint/step-000200/
//!     adapter_config.json             the adapter, in PEFT's layout (Transformer::save_adapter)
//!     adapter_model.safetensors
//!     optimizer.mpk                   AdamW's moments and step counts: burn's optimizer record,
//!                                     written by burn's NamedMpkBytesRecorder at full precision
//!     trainer_state.json              the step, the schedule's record, the settings, the history
//! ```
//!
//! A checkpoint is written into `step-NNNNNN.partial/`, renamed to `step-NNNNNN/`, and only then
//! named in `latest` (itself replaced by a rename), after which older checkpoints are removed. A
//! failed save (a full disk) therefore leaves `latest` naming the previous complete checkpoint.
//!
//! burn keys optimizer state by [`ParamId`], which a model rebuilt from the saved adapter does not
//! share with the model that was saved, so the record is saved keyed by each parameter's position
//! among the trainable ones ([`Trainable`]) and re-keyed on loading, its moments' shapes checked
//! against the parameters'.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::module::ParamId;
use burn::optim::record::{AdaptorRecord, AdaptorRecordV1};
use burn::optim::{AdamW, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use momentkv_kernels::KernelBackend;
use serde::{Deserialize, Serialize};

use crate::files::write_atomically;
use crate::{FinetuneConfig, History, Optim, TrainError, Trainable, TrainingModel};

/// The directory of a run's checkpoints, inside its output directory.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The file naming the newest complete checkpoint.
const LATEST: &str = "latest";
const OPTIMIZER_FILE: &str = "optimizer.mpk";
const STATE_FILE: &str = "trainer_state.json";

/// burn's record of [`Optim`]: per parameter id, its AdamW state.
type OptimRecord<B> = <Optim<B> as Optimizer<TrainingModel<B>, Autodiff<B>>>::Record;
/// The recorder of the optimizer record: MessagePack bytes at full precision, written to disk
/// here (burn's file recorders write the final file in place, not through a temporary one).
type StateRecorder = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// What a checkpoint holds besides the adapter and the optimizer record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps taken.
    pub step: usize,
    /// The learning-rate schedule's burn record ([`crate::WarmupCosine`]: its steps taken).
    pub scheduler: usize,
    /// The run's settings, which a resumed run must repeat.
    pub config: FinetuneConfig,
    /// The number of training sequences, which fixes the order they are drawn in.
    pub train_sequences: usize,
    pub history: History,
}

/// A run's checkpoints, `OUT/checkpoint/`.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

/// A run restored from its latest checkpoint.
pub(crate) struct Restored<B: KernelBackend> {
    pub model: TrainingModel<B>,
    pub optim: Optim<B>,
    pub state: TrainerState,
    pub dir: PathBuf,
}

impl Checkpoints {
    /// The checkpoints of the run writing to `out`.
    pub fn of_run(out: &Path) -> Self {
        Self {
            dir: out.join(CHECKPOINT_DIR),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The step and directory of the newest complete checkpoint, `None` before the first.
    pub fn latest(&self) -> Result<Option<(usize, PathBuf)>, TrainError> {
        let pointer = self.dir.join(LATEST);
        let name = match std::fs::read_to_string(&pointer) {
            Ok(name) => name,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TrainError::checkpoint(&pointer, e)),
        };
        let name = name.trim();
        let step = parse_step_name(name).ok_or_else(|| {
            TrainError::checkpoint(
                &pointer,
                format!("names {name:?}, not a checkpoint (step-NNNNNN)"),
            )
        })?;
        let dir = self.dir.join(name);
        if !dir.is_dir() {
            return Err(TrainError::checkpoint(
                &pointer,
                format!("names {}, which is missing", dir.display()),
            ));
        }
        Ok(Some((step, dir)))
    }

    /// Saves the model's adapter, the optimizer record and `state` as the checkpoint of
    /// `state.step`, as the module describes, and returns its directory. A checkpoint of that
    /// step already named in `latest` is kept as it is.
    pub(crate) fn save<B: KernelBackend>(
        &self,
        model: &TrainingModel<B>,
        optim: &Optim<B>,
        state: &TrainerState,
        base_model: Option<&str>,
    ) -> Result<PathBuf, TrainError> {
        if let Some((step, dir)) = self.latest()? {
            if step == state.step {
                return Ok(dir);
            }
        }
        let name = step_name(state.step);
        let done = self.dir.join(&name);
        let partial = self.dir.join(format!("{name}.partial"));
        let saved = remove_dir(&partial)
            .and_then(|()| write_checkpoint(&partial, model, optim, state, base_model))
            .and_then(|()| remove_dir(&done))
            .and_then(|()| {
                std::fs::rename(&partial, &done).map_err(|e| TrainError::checkpoint(&done, e))
            })
            .and_then(|()| {
                write_atomically(&self.dir.join(LATEST), format!("{name}\n").as_bytes())
            });
        if let Err(e) = saved {
            std::fs::remove_dir_all(&partial).ok();
            return Err(e);
        }
        self.remove_older_than(&name);
        Ok(done)
    }

    /// Removes the checkpoint directories other than `keep`; one that cannot be removed is left.
    fn remove_older_than(&self, keep: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name != keep && name.starts_with("step-") && entry.path().is_dir() {
                std::fs::remove_dir_all(entry.path()).ok();
            }
        }
    }

    /// The run of the latest checkpoint: its adapter attached to `base` (the frozen base model),
    /// `optim` holding its optimizer record, and its state.
    pub(crate) fn restore<B: KernelBackend>(
        &self,
        base: TrainingModel<B>,
        optim: Optim<B>,
    ) -> Result<Restored<B>, TrainError> {
        let (step, dir) = self.latest()?.ok_or_else(|| {
            TrainError::checkpoint(&self.dir, "holds no checkpoint to resume from")
        })?;
        let state_path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&state_path)
            .map_err(|e| TrainError::checkpoint(&state_path, e))?;
        let state: TrainerState = serde_json::from_str(&text).map_err(|e| {
            TrainError::checkpoint(&state_path, format!("is not a trainer state: {e}"))
        })?;
        if state.step != step {
            return Err(TrainError::checkpoint(
                &state_path,
                format!("is the state of step {}, not of step {step}", state.step),
            ));
        }
        let model = base.load_adapter(&dir)?;
        let optimizer_path = dir.join(OPTIMIZER_FILE);
        let bytes = std::fs::read(&optimizer_path)
            .map_err(|e| TrainError::checkpoint(&optimizer_path, e))?;
        let record: OptimRecord<B> =
            Recorder::<Autodiff<B>>::load(&StateRecorder::default(), bytes, &model.device())
                .map_err(|e| {
                    TrainError::checkpoint(
                        &optimizer_path,
                        format!("is not an optimizer record: {e}"),
                    )
                })?;
        let record = keyed_by_id(&model, record, &optimizer_path)?;
        Ok(Restored {
            model,
            optim: optim.load_record(record),
            state,
            dir,
        })
    }
}

/// The directory name of the checkpoint of `step`.
fn step_name(step: usize) -> String {
    format!("step-{step:06}")
}

/// The step of a checkpoint directory name, `None` for any other name.
fn parse_step_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("step-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Removes `dir` and what it holds, if it exists.
fn remove_dir(dir: &Path) -> Result<(), TrainError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::checkpoint(dir, e)),
        _ => Ok(()),
    }
}

/// Writes the files of a checkpoint into `dir`.
fn write_checkpoint<B: KernelBackend>(
    dir: &Path,
    model: &TrainingModel<B>,
    optim: &Optim<B>,
    state: &TrainerState,
    base_model: Option<&str>,
) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::checkpoint(dir, e))?;
    model.save_adapter(dir, base_model)?;
    let optimizer_path = dir.join(OPTIMIZER_FILE);
    let record = keyed_by_position(model, optim.to_record(), &optimizer_path)?;
    let bytes = Recorder::<Autodiff<B>>::record(&StateRecorder::default(), record, ())
        .map_err(|e| TrainError::checkpoint(&optimizer_path, e))?;
    write_atomically(&optimizer_path, &bytes)?;
    let json = serde_json::to_string_pretty(state)
        .map_err(|e| TrainError::checkpoint(&dir.join(STATE_FILE), e))?;
    write_atomically(&dir.join(STATE_FILE), json.as_bytes())
}

/// The optimizer record keyed by each parameter's position among the model's trainable ones.
fn keyed_by_position<B: KernelBackend>(
    model: &TrainingModel<B>,
    record: OptimRecord<B>,
    path: &Path,
) -> Result<OptimRecord<B>, TrainError> {
    let trainable = Trainable::of(model);
    record
        .into_iter()
        .map(|(id, state)| match trainable.position(id) {
            Some(position) => Ok((ParamId::from(position as u64), state)),
            None => Err(TrainError::checkpoint(
                path,
                "the optimizer holds state for a parameter that is not trained",
            )),
        })
        .collect()
}

/// The inverse of [`keyed_by_position`] for `model`: each position's state keyed by the id of the
/// parameter at that position, after checking that its moments have the parameter's shape.
fn keyed_by_id<B: KernelBackend>(
    model: &TrainingModel<B>,
    record: OptimRecord<B>,
    path: &Path,
) -> Result<OptimRecord<B>, TrainError> {
    let trainable = Trainable::of(model);
    record
        .into_iter()
        .map(|(key, state)| {
            let position = key.val() as usize;
            let (Some(&id), Some(shape)) =
                (trainable.ids.get(position), trainable.shapes.get(position))
            else {
                return Err(TrainError::checkpoint(
                    path,
                    format!(
                        "holds state for trainable parameter {position}, but the adapter has {}",
                        trainable.ids.len()
                    ),
                ));
            };
            match moment_shape(&state) {
                Some(found) if found == *shape => Ok((id, state)),
                found => Err(TrainError::checkpoint(
                    path,
                    format!(
                        "the state of trainable parameter {position} has shape {found:?}, the \
                         parameter {shape:?}"
                    ),
                )),
            }
        })
        .collect()
}

/// The shape of an AdamW state's moments (both must agree), for the parameter ranks a
/// transformer has (1 and 2); `None` for any other.
fn moment_shape<B: KernelBackend>(
    record: &AdaptorRecord<AdamW, Autodiff<B>>,
) -> Option<Vec<usize>> {
    let AdaptorRecord::V1(record) = record;
    let (first, second) = match record {
        AdaptorRecordV1::Rank1(state) => (
            state.momentum.moment_1.dims().to_vec(),
            state.momentum.moment_2.dims().to_vec(),
        ),
        AdaptorRecordV1::Rank2(state) => (
            state.momentum.moment_1.dims().to_vec(),
            state.momentum.moment_2.dims().to_vec(),
        ),
        _ => return None,
    };
    (first == second).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_round_trip_and_nothing_else_parses() {
        assert_eq!(step_name(42), "step-000042");
        assert_eq!(parse_step_name("step-000042"), Some(42));
        assert_eq!(parse_step_name("step-1234567"), Some(1_234_567));
        for bad in ["step-", "step-+1", "step-1.partial", "../step-1", "latest"] {
            assert_eq!(parse_step_name(bad), None, "{bad}");
        }
    }
}
