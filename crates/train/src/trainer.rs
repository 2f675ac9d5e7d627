//! The step loop: micro-batches → training forward → backward → gradients accumulated per scored
//! token → global-norm clipping → AdamW, with held-out losses, checkpoints and progress events.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::backend::Autodiff;
use burn::lr_scheduler::LrScheduler;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::{ElementConversion, Tensor};
use momentkv_kernels::KernelBackend;
use serde::Serialize;

use crate::clip::{clip_global_norm, global_norm};
use crate::data::{Dataset, HostBatch, Order};
use crate::files::write_atomically;
use crate::out_dir::{prepare_out_dir, LOSS_PLOT_FILE};
use crate::{
    Checkpoints, EvalRecord, FinetuneConfig, History, Optim, StepRecord, TrainError, Trainable,
    TrainerState, TrainingModel, WarmupCosine,
};

/// AdamW as PyTorch and `transformers`' Trainer default to it: β = (0.9, 0.999), ε = 10⁻⁸, no
/// weight decay (burn's defaults are ε = 10⁻⁵ and decay 10⁻⁴). Clipping is global, outside the
/// optimizer ([`crate::clip`]).
fn adamw<B: KernelBackend>() -> Optim<B> {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
        .init()
}

/// What the loop reports as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A step was taken; `eta` is the time the remaining steps should take at this run's pace.
    Step {
        record: &'a StepRecord,
        steps: usize,
        eta: Duration,
    },
    /// The held-out loss was measured.
    Eval(&'a EvalRecord),
    /// A checkpoint was saved.
    Saved { step: usize, dir: &'a Path },
}

/// What a run reports at its end (`momentkv finetune --json` prints it as one line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Optimizer steps taken, over every session of the run.
    pub steps: usize,
    /// The training loss of the first and of the last step, in nats per token.
    pub train_loss_first: Option<f64>,
    pub train_loss_last: Option<f64>,
    /// The held-out loss before training and after the last step (`None` without held-out data).
    pub eval_loss_start: Option<f64>,
    pub eval_loss_end: Option<f64>,
    /// Real training tokens per second of training steps, evaluation and saving excluded.
    pub tokens_per_s: Option<f64>,
    /// The process's peak resident memory (`VmHWM`, Linux only; a GPU's memory is not in it).
    pub peak_memory_bytes: Option<u64>,
    /// The adapter's trainable values.
    pub trainable_params: usize,
    pub train_sequences: usize,
    pub eval_sequences: Option<usize>,
    /// The step the run continued from, when it was resumed.
    pub resumed_from: Option<usize>,
    /// The directory holding the adapter in PEFT's layout.
    pub adapter: String,
    pub loss_plot: String,
    pub checkpoint: Option<String>,
}

/// A LoRA fine-tuning run on the autodiff backend over `B`: the model with its adapter, AdamW,
/// the schedule, the settings and the history, with the output directory it writes to.
pub struct Trainer<B: KernelBackend> {
    model: TrainingModel<B>,
    optim: Optim<B>,
    schedule: WarmupCosine,
    config: FinetuneConfig,
    history: History,
    /// Optimizer steps taken.
    step: usize,
    out: PathBuf,
    checkpoints: Checkpoints,
    /// `base_model_name_or_path` of the saved adapters.
    base_model: Option<String>,
    /// The checkpoint a resumed run started from.
    resumed: Option<ResumedFrom>,
    /// The step and directory of the newest checkpoint saved or resumed from.
    last_saved: Option<(usize, PathBuf)>,
}

/// The checkpoint a resumed run started from.
struct ResumedFrom {
    step: usize,
    /// The training sequences of the run that saved it, which fix the order they are drawn in.
    train_sequences: usize,
    dir: PathBuf,
}

impl<B: KernelBackend> Trainer<B> {
    /// A fresh run: `base` (the checkpoint on `Autodiff<B>`) frozen, with a new adapter of
    /// `config.lora` (PEFT's initialisation, drawn after seeding the backend with `config.seed`),
    /// writing to `out`, which must hold no earlier run ([`prepare_out_dir`]).
    pub fn new(
        base: TrainingModel<B>,
        config: FinetuneConfig,
        out: &Path,
        base_model: Option<String>,
    ) -> Result<Self, TrainError> {
        check(&base, &config)?;
        prepare_out_dir(out, false)?;
        B::seed(&base.device(), config.seed);
        let model = base.with_adapter(&config.lora)?;
        let schedule = WarmupCosine::new(config.lr, config.warmup, config.steps);
        Ok(Self {
            model,
            optim: adamw(),
            schedule,
            config,
            history: History::default(),
            step: 0,
            out: out.to_path_buf(),
            checkpoints: Checkpoints::of_run(out),
            base_model,
            resumed: None,
            last_saved: None,
        })
    }

    /// The run whose latest checkpoint is in `out`, continued: its adapter attached to `base`,
    /// its optimizer state, schedule and history restored. `config` must repeat the checkpoint's
    /// settings (`eval_every` and `save_every` may change).
    pub fn resume(
        base: TrainingModel<B>,
        config: FinetuneConfig,
        out: &Path,
        base_model: Option<String>,
    ) -> Result<Self, TrainError> {
        check(&base, &config)?;
        prepare_out_dir(out, true)?;
        let checkpoints = Checkpoints::of_run(out);
        let restored = checkpoints.restore(base, adamw())?;
        check_same_settings(&restored.state.config, &config, &restored.dir)?;
        let state = restored.state;
        let schedule = WarmupCosine::new(config.lr, config.warmup, config.steps)
            .load_record::<B>(state.scheduler);
        Ok(Self {
            model: restored.model,
            optim: restored.optim,
            schedule,
            config,
            history: state.history,
            step: state.step,
            out: out.to_path_buf(),
            checkpoints,
            base_model,
            resumed: Some(ResumedFrom {
                step: state.step,
                train_sequences: state.train_sequences,
                dir: restored.dir.clone(),
            }),
            last_saved: Some((state.step, restored.dir)),
        })
    }

    /// Optimizer steps taken so far.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The learning rate the next step will run at.
    pub fn next_lr(&self) -> f64 {
        self.schedule.at(self.schedule.taken())
    }

    /// The model with its adapter as trained so far.
    pub fn model(&self) -> &TrainingModel<B> {
        &self.model
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Trains on `train` until `config.steps` steps are taken, measuring the loss on `eval` at the
    /// start, every `eval_every` steps and at the end, saving a checkpoint every `save_every`
    /// steps and at the end; then writes the adapter and the loss curve to the output directory.
    ///
    /// `observe` sees every [`Progress`] event; returning `Break` stops the run after the current
    /// step, with a checkpoint of it saved so that [`Trainer::resume`] continues. A non-finite
    /// training loss or gradient norm stops the run with an error naming the step and the last
    /// good checkpoint, saving nothing more.
    pub fn run(
        mut self,
        train: &Dataset,
        eval: Option<&Dataset>,
        mut observe: impl FnMut(Progress<'_>) -> ControlFlow<()>,
    ) -> Result<Summary, TrainError> {
        if let Some(resumed) = &self.resumed {
            if resumed.train_sequences != train.examples.len() {
                return Err(TrainError::ResumeMismatch {
                    path: resumed.dir.clone(),
                    name: "training sequences",
                    saved: resumed.train_sequences.to_string(),
                    given: train.examples.len().to_string(),
                });
            }
        }
        let device = self.model.device();
        let mut order = Order::new(train.examples.len(), self.config.seed);
        let mut stop = false;
        if let Some(eval) = eval {
            if !self.history.evals.iter().any(|e| e.step == self.step) {
                let record = self.evaluate(eval)?;
                stop |= observe(Progress::Eval(&record)).is_break();
            }
        }
        let (session_start, session_first) = (Instant::now(), self.step);
        while self.step < self.config.steps && !stop {
            let record = self.train_step(train, &mut order, &device)?;
            let done = (self.step - session_first) as f64;
            let left = (self.config.steps - self.step) as f64;
            let eta = session_start.elapsed().mul_f64(left / done);
            stop |= observe(Progress::Step {
                record: &record,
                steps: self.config.steps,
                eta,
            })
            .is_break();
            let last = self.step == self.config.steps;
            if let Some(eval) = eval.filter(|_| last || due(self.step, self.config.eval_every)) {
                let record = self.evaluate(eval)?;
                stop |= observe(Progress::Eval(&record)).is_break();
            }
            if last || stop || due(self.step, self.config.save_every) {
                let dir = self.save(train)?;
                stop |= observe(Progress::Saved {
                    step: self.step,
                    dir: &dir,
                })
                .is_break();
            }
        }
        self.save(train)?;
        self.finish(train, eval)
    }

    /// One optimizer step: the step's `grad_accum` micro-batches, their gradients weighted by
    /// their share of the step's scored targets (`n_j / Σ n`, so that the sum is the gradient of
    /// the per-token mean over the step), clipped, and applied by AdamW at the schedule's rate.
    fn train_step(
        &mut self,
        train: &Dataset,
        order: &mut Order,
        device: &B::Device,
    ) -> Result<StepRecord, TrainError> {
        let started = Instant::now();
        let accum = self.config.grad_accum;
        // Dropout draws from the backend's generator: seeded per step, so a resumed run draws
        // what an uninterrupted one does.
        B::seed(device, step_seed(self.config.seed, self.step));
        let lr = self.schedule.step();
        let micro: Vec<HostBatch> = (0..accum)
            .map(|j| train.micro_batch(order, (self.step * accum + j) as u64, self.config.batch))
            .collect();
        let targets: usize = micro.iter().map(|b| b.targets).sum();
        let mut accumulator = GradientsAccumulator::<TrainingModel<B>>::new();
        let mut loss: Option<Tensor<B, 1>> = None;
        for batch in &micro {
            let weight = batch.targets as f64 / targets as f64;
            let out = self.model.forward_train(batch.to_device(device))?;
            let weighted = out.loss.mul_scalar(weight);
            let value = weighted.clone().inner();
            loss = Some(match loss.take() {
                Some(sum) => sum + value,
                None => value,
            });
            let grads = GradientsParams::from_grads(weighted.backward(), &self.model);
            accumulator.accumulate::<Autodiff<B>>(&self.model, grads);
        }
        let loss: f64 = loss.map_or(0.0, |l| l.into_scalar().elem());
        let step = self.step + 1;
        if !loss.is_finite() {
            return Err(self.non_finite("training loss", step));
        }
        let mut grads = accumulator.grads();
        let grad_norm = if self.config.max_grad_norm > 0.0 {
            clip_global_norm::<Autodiff<B>, _>(&self.model, &mut grads, self.config.max_grad_norm)
        } else {
            global_norm::<Autodiff<B>, _>(&self.model, &grads)
        };
        if !grad_norm.is_finite() {
            return Err(self.non_finite("gradient norm", step));
        }
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.step = step;
        let record = StepRecord {
            step,
            loss,
            lr,
            grad_norm,
            tokens: micro.iter().map(|b| b.real_tokens).sum(),
            seconds: started.elapsed().as_secs_f64(),
        };
        self.history.steps.push(record.clone());
        Ok(record)
    }

    /// The mean next-token cross-entropy over every scored target of `data`, by the model as it
    /// is (without autodiff, so dropout is off), in batches of `batch` sequences.
    fn evaluate(&mut self, data: &Dataset) -> Result<EvalRecord, TrainError> {
        let model = self.model.valid();
        let device = model.device();
        let (mut weighted, mut targets) = (0.0, 0usize);
        for rows in data.examples.chunks(self.config.batch) {
            let batch = HostBatch::new(&rows.iter().collect::<Vec<_>>());
            let out = model.forward_train(batch.to_device(&device))?;
            let loss: f64 = out.loss.into_scalar().elem();
            weighted += loss * batch.targets as f64;
            targets += batch.targets;
        }
        let record = EvalRecord {
            step: self.step,
            loss: weighted / targets.max(1) as f64,
        };
        self.history.evals.push(record.clone());
        Ok(record)
    }

    /// Saves the checkpoint of the current step (kept as it is when already saved).
    fn save(&mut self, train: &Dataset) -> Result<PathBuf, TrainError> {
        let state = TrainerState {
            step: self.step,
            scheduler: self.schedule.to_record::<B>(),
            config: self.config.clone(),
            train_sequences: train.examples.len(),
            history: self.history.clone(),
        };
        let dir =
            self.checkpoints
                .save(&self.model, &self.optim, &state, self.base_model.as_deref())?;
        self.last_saved = Some((self.step, dir.clone()));
        Ok(dir)
    }

    /// The error of a non-finite value at `step`, naming the last good checkpoint.
    fn non_finite(&self, what: &'static str, step: usize) -> TrainError {
        TrainError::NonFinite {
            what,
            step,
            last_good: self.last_saved.clone(),
        }
    }

    /// Writes the adapter and the loss curve to the output directory and sums the run up.
    fn finish(self, train: &Dataset, eval: Option<&Dataset>) -> Result<Summary, TrainError> {
        self.model
            .save_adapter(&self.out, self.base_model.as_deref())?;
        let plot = self.out.join(LOSS_PLOT_FILE);
        write_atomically(&plot, self.history.plot().svg().as_bytes())?;
        let steps = &self.history.steps;
        let evals = &self.history.evals;
        Ok(Summary {
            steps: self.step,
            train_loss_first: steps.first().map(|s| s.loss),
            train_loss_last: steps.last().map(|s| s.loss),
            eval_loss_start: evals.first().map(|e| e.loss),
            eval_loss_end: evals.last().map(|e| e.loss),
            tokens_per_s: self.history.tokens_per_s(),
            peak_memory_bytes: peak_memory_bytes(),
            trainable_params: Trainable::of(&self.model).count(),
            train_sequences: train.examples.len(),
            eval_sequences: eval.map(|e| e.examples.len()),
            resumed_from: self.resumed.as_ref().map(|r| r.step),
            adapter: self.out.display().to_string(),
            loss_plot: plot.display().to_string(),
            checkpoint: self.last_saved.map(|(_, dir)| dir.display().to_string()),
        })
    }
}

/// Whether a step count is a multiple of a period (`0`: never).
fn due(step: usize, every: usize) -> bool {
    every > 0 && step.is_multiple_of(every)
}

/// The backend seed of step `step` of a run seeded with `seed`.
fn step_seed(seed: u64, step: usize) -> u64 {
    seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Checks the settings, and the sequence length against the model's context window.
fn check<B: KernelBackend>(
    model: &TrainingModel<B>,
    config: &FinetuneConfig,
) -> Result<(), TrainError> {
    config.validate()?;
    let window = model.config().max_position_embeddings;
    if config.seq_len > window {
        return Err(TrainError::setting(
            "seq_len",
            format!(
                "({}) exceeds the model's context window of {window} (max_position_embeddings)",
                config.seq_len
            ),
        ));
    }
    Ok(())
}

/// Refuses to resume with settings other than the checkpoint's, naming the first that differs;
/// the evaluation and checkpoint periods may change.
fn check_same_settings(
    saved: &FinetuneConfig,
    given: &FinetuneConfig,
    dir: &Path,
) -> Result<(), TrainError> {
    let pairs = [
        ("steps", saved.steps.to_string(), given.steps.to_string()),
        ("batch", saved.batch.to_string(), given.batch.to_string()),
        (
            "seq_len",
            saved.seq_len.to_string(),
            given.seq_len.to_string(),
        ),
        ("lr", saved.lr.to_string(), given.lr.to_string()),
        ("warmup", saved.warmup.to_string(), given.warmup.to_string()),
        (
            "grad_accum",
            saved.grad_accum.to_string(),
            given.grad_accum.to_string(),
        ),
        (
            "max_grad_norm",
            saved.max_grad_norm.to_string(),
            given.max_grad_norm.to_string(),
        ),
        ("seed", saved.seed.to_string(), given.seed.to_string()),
        (
            "lora",
            format!("{:?}", saved.lora),
            format!("{:?}", given.lora),
        ),
    ];
    match pairs.into_iter().find(|(_, saved, given)| saved != given) {
        Some((name, saved, given)) => Err(TrainError::ResumeMismatch {
            path: dir.to_path_buf(),
            name,
            saved,
            given,
        }),
        None => Ok(()),
    }
}

/// The process's peak resident memory in bytes: `VmHWM` of `/proc/self/status`, on Linux.
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use burn::backend::NdArray;
    use momentkv_transformer::LoraConfig;

    use super::*;
    use crate::data::tests::{scratch_file, tokenizer};

    /// Runs that draw from the backend's global generator (the adapter's initialisation) one at a
    /// time, so that parallel tests do not interleave their draws.
    static GENERATOR: Mutex<()> = Mutex::new(());

    /// The tiny fixture checkpoint on `Autodiff<NdArray>`, as `momentkv finetune` loads it.
    fn base() -> TrainingModel<NdArray> {
        momentkv::load::load::<Autodiff<NdArray>>(&crate::tests::fixture(), &Default::default())
            .unwrap()
            .transformer
    }

    /// A repeated sentence packed into 32-token windows.
    fn data(name: &str) -> Dataset {
        let text = "the quick brown fox jumps over the lazy dog. ".repeat(16);
        Dataset::read(&scratch_file(name, &text), &tokenizer(), 32, 300).unwrap()
    }

    fn config(steps: usize) -> FinetuneConfig {
        FinetuneConfig {
            steps,
            batch: 2,
            seq_len: 32,
            lr: 1e-2,
            warmup: 2,
            grad_accum: 2,
            eval_every: 0,
            save_every: 3,
            seed: 5,
            lora: LoraConfig::new(4, 8.0),
            ..FinetuneConfig::default()
        }
    }

    /// An empty scratch output directory.
    fn out_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("momentkv-train-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    /// A few steps on a repeated text lower the training and the held-out loss, and the run
    /// leaves the adapter, the loss curve and its checkpoint in the output directory.
    #[test]
    fn training_lowers_the_loss_on_a_repeated_text() {
        let _one_at_a_time = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
        let (train, eval) = (data("lower-train.txt"), data("lower-eval.txt"));
        let out = out_dir("lower");
        let trainer = Trainer::new(base(), config(8), &out, Some("tiny".into())).unwrap();
        let mut events = Vec::new();
        let summary = trainer
            .run(&train, Some(&eval), |event| {
                events.push(match event {
                    Progress::Step { record, .. } => format!("step {}", record.step),
                    Progress::Eval(record) => format!("eval {}", record.step),
                    Progress::Saved { step, .. } => format!("saved {step}"),
                });
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(summary.steps, 8);
        let (first, last) = (
            summary.train_loss_first.unwrap(),
            summary.train_loss_last.unwrap(),
        );
        let (start, end) = (
            summary.eval_loss_start.unwrap(),
            summary.eval_loss_end.unwrap(),
        );
        assert!(last < first, "training loss {first} → {last}");
        assert!(end < start - 1e-3, "held-out loss {start} → {end}");
        assert_eq!(events[0], "eval 0");
        assert_eq!(events[1..4], ["step 1", "step 2", "step 3"]);
        assert_eq!(events[4], "saved 3");
        assert_eq!(events[events.len() - 3..], ["step 8", "eval 8", "saved 8"]);
        assert!(summary.tokens_per_s.unwrap() > 0.0 && summary.trainable_params > 0);
        for file in [
            "adapter_config.json",
            "adapter_model.safetensors",
            LOSS_PLOT_FILE,
        ] {
            assert!(out.join(file).is_file(), "{file}");
        }
        let err = prepare_out_dir(&out, false).unwrap_err().to_string();
        assert!(
            err.contains("already holds a checkpoint of step 8"),
            "{err}"
        );
        std::fs::remove_dir_all(&out).ok();
    }

    /// A run stopped after step 3 and resumed from its checkpoint takes the steps an uninterrupted
    /// run takes: the same step counter, learning rates and losses.
    #[test]
    fn a_resumed_run_continues_as_the_uninterrupted_one() {
        let _one_at_a_time = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
        let train = data("resume.txt");
        let whole_out = out_dir("whole");
        let whole = Trainer::new(base(), config(6), &whole_out, None).unwrap();
        let initial_lr = whole.next_lr();
        let whole = whole
            .run(&train, None, |_| ControlFlow::Continue(()))
            .unwrap();

        let split_out = out_dir("split");
        let err = prepare_out_dir(&split_out, true).unwrap_err().to_string();
        assert!(err.contains("holds no checkpoint to resume from"), "{err}");
        let first = Trainer::new(base(), config(6), &split_out, None).unwrap();
        assert_eq!(first.next_lr(), initial_lr);
        let stopped = first
            .run(&train, None, |event| match event {
                Progress::Step { record, .. } if record.step == 3 => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
            .unwrap();
        assert_eq!(stopped.steps, 3);

        let resumed = Trainer::resume(base(), config(6), &split_out, None).unwrap();
        assert_eq!(resumed.step(), 3);
        let history = resumed.history().clone();
        assert_eq!(resumed.next_lr(), WarmupCosine::new(1e-2, 2, 6).at(3));
        let resumed = resumed
            .run(&train, None, |_| ControlFlow::Continue(()))
            .unwrap();
        assert_eq!((resumed.steps, resumed.resumed_from), (6, Some(3)));
        assert_eq!(history.steps.len(), 3);

        let checkpoint = |out: &Path| {
            let state =
                std::fs::read_to_string(out.join("checkpoint/step-000006/trainer_state.json"))
                    .unwrap();
            serde_json::from_str::<TrainerState>(&state).unwrap()
        };
        let (whole_state, split_state) = (checkpoint(&whole_out), checkpoint(&split_out));
        assert_eq!(whole.steps, 6);
        assert_eq!(whole_state.scheduler, split_state.scheduler);
        assert_eq!(split_state.history.steps.len(), 6);
        for (a, b) in whole_state
            .history
            .steps
            .iter()
            .zip(&split_state.history.steps)
        {
            assert_eq!((a.step, a.lr, a.tokens), (b.step, b.lr, b.tokens));
            assert!(
                (a.loss - b.loss).abs() <= 1e-6 * a.loss.abs().max(1.0),
                "{a:?} vs {b:?}"
            );
        }
        assert!(!split_out.join("checkpoint/step-000003").exists());
        let err = Trainer::resume(base(), config(7), &split_out, None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("steps = 6, this run has 7"), "{err}");
        std::fs::remove_dir_all(&whole_out).ok();
        std::fs::remove_dir_all(&split_out).ok();
    }
}
