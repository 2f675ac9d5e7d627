//! A run's output directory: the adapter in PEFT's layout (`adapter_config.json`,
//! `adapter_model.safetensors`), the loss curve (`loss.svg`) and the checkpoints
//! (`checkpoint/`). A fresh run refuses a directory that already holds any of them, so nothing
//! saved is overwritten; `--resume` continues the run whose checkpoint is there.

use std::path::Path;

use momentkv_transformer::{ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};

use crate::files::ensure_writable_dir;
use crate::{Checkpoints, TrainError};

/// The loss curve's file in the output directory.
pub const LOSS_PLOT_FILE: &str = "loss.svg";

/// Checks the output directory `out` before anything is loaded: it can be created and written
/// in; for a fresh run it holds no checkpoint, adapter or loss curve; for a resumed one
/// (`resume`) it holds a checkpoint.
pub fn prepare_out_dir(out: &Path, resume: bool) -> Result<(), TrainError> {
    ensure_writable_dir(out)?;
    let checkpoints = Checkpoints::of_run(out);
    let latest = checkpoints.latest()?;
    if resume {
        if latest.is_none() {
            return Err(TrainError::checkpoint(
                checkpoints.dir(),
                "holds no checkpoint to resume from",
            ));
        }
        return Ok(());
    }
    if let Some((step, _)) = latest {
        return Err(TrainError::io(
            out,
            format!(
                "already holds a checkpoint of step {step}: pass --resume to continue that run, \
                 or choose another output directory"
            ),
        ));
    }
    for file in [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, LOSS_PLOT_FILE] {
        if out.join(file).exists() {
            return Err(TrainError::io(
                out,
                format!(
                    "already holds {file} from an earlier run: choose another output directory \
                     (nothing is overwritten)"
                ),
            ));
        }
    }
    Ok(())
}
