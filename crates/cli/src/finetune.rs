//! `momentkv finetune`: LoRA fine-tuning of a checkpoint on a text or JSONL file, on the chosen
//! backend wrapped in burn's `Autodiff` (the data formats, the loop and what is saved are
//! `momentkv_train`'s).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use burn::backend::Autodiff;
use momentkv::backend::{dispatch, BackendKind, WithBackend};
use momentkv::kernels::KernelBackend;
use momentkv::transformer::{AdapterTarget, LoraConfig, ModelError};
use momentkv::{hub, load, Error};
use momentkv_train::data::check_file;
use momentkv_train::{
    prepare_out_dir, Dataset, FinetuneConfig, Progress, Summary, TrainError, Trainer,
};
use serde_json::{json, Map, Value};

use crate::model_args::ModelArgs;

#[derive(clap::Args)]
pub struct FinetuneArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Training data: plain text (tokenized once, packed into --seq-len windows), or a .jsonl
    /// file of {"text": ...} rows or chat {"messages": [{"role", "content"}, ...]} rows (rendered
    /// with the model's chat template, scored on the assistant's turns only).
    #[arg(long)]
    pub data: PathBuf,
    /// Held-out data in the same formats: its loss is measured at the start, every --eval-every
    /// steps and at the end.
    #[arg(long)]
    pub eval_data: Option<PathBuf>,
    /// Optimizer steps to train for.
    #[arg(long)]
    pub steps: usize,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = FinetuneConfig::default().batch)]
    pub batch: usize,
    /// Tokens per sequence (at most the model's context window).
    #[arg(long, default_value_t = FinetuneConfig::default().seq_len)]
    pub seq_len: usize,
    /// Peak learning rate (AdamW, β = (0.9, 0.999), ε = 1e-8, no weight decay).
    #[arg(long, default_value_t = FinetuneConfig::default().lr)]
    pub lr: f64,
    /// Steps of linear warmup before the cosine decay to 0.
    #[arg(long, default_value_t = FinetuneConfig::default().warmup)]
    pub warmup: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = FinetuneConfig::default().grad_accum)]
    pub grad_accum: usize,
    /// Clip the gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = FinetuneConfig::default().max_grad_norm)]
    pub max_grad_norm: f64,
    /// Rank of the LoRA adapter.
    #[arg(long, default_value_t = FinetuneConfig::default().lora.rank)]
    pub lora_rank: usize,
    /// LoRA's alpha: the update is scaled by alpha / rank.
    #[arg(long, default_value_t = FinetuneConfig::default().lora.alpha)]
    pub lora_alpha: f64,
    /// Dropout on the adapter's input during training.
    #[arg(long, default_value_t = FinetuneConfig::default().lora.dropout)]
    pub lora_dropout: f64,
    /// The projections that get an adapter, comma-separated, among q_proj, k_proj, v_proj,
    /// o_proj, gate_proj, up_proj and down_proj.
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = AdapterTarget::ALL.map(|t| t.name().to_string())
    )]
    pub lora_targets: Vec<String>,
    /// Output directory: the adapter in PEFT's layout, loss.svg, checkpoint/.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run whose checkpoint is in --out (with the same settings).
    #[arg(long)]
    pub resume: bool,
    /// Measure the held-out loss every N steps (0: at the start and the end only).
    #[arg(long, default_value_t = FinetuneConfig::default().eval_every)]
    pub eval_every: usize,
    /// Save a checkpoint every N steps (0: at the end only).
    #[arg(long, default_value_t = FinetuneConfig::default().save_every)]
    pub save_every: usize,
    /// Seeds the adapter's initialisation, the data order and dropout.
    #[arg(long, default_value_t = FinetuneConfig::default().seed)]
    pub seed: u64,
    /// Print one JSON object at the end instead of the summary lines.
    #[arg(long)]
    pub json: bool,
}

impl FinetuneArgs {
    /// The run's settings, checked.
    fn config(&self) -> Result<FinetuneConfig, Error> {
        let mut targets = self
            .lora_targets
            .iter()
            .map(|name| name.trim().parse::<AdapterTarget>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(ModelError::from)?;
        targets.sort();
        let config = FinetuneConfig {
            steps: self.steps,
            batch: self.batch,
            seq_len: self.seq_len,
            lr: self.lr,
            warmup: self.warmup,
            grad_accum: self.grad_accum,
            max_grad_norm: self.max_grad_norm,
            eval_every: self.eval_every,
            save_every: self.save_every,
            seed: self.seed,
            lora: LoraConfig::new(self.lora_rank, self.lora_alpha)
                .with_dropout(self.lora_dropout)
                .with_targets(targets),
        };
        config.validate().map_err(from_train)?;
        Ok(config)
    }
}

/// A training error as the command's error, in the matching variant where there is one.
fn from_train(e: TrainError) -> Error {
    match e {
        TrainError::Model(e) => Error::Model(e),
        TrainError::Tokenizer(e) => Error::Tokenizer(e),
        TrainError::Io { path, reason }
        | TrainError::Data { path, reason }
        | TrainError::Checkpoint { path, reason } => Error::Io { path, reason },
        other => Error::Unsupported(other.to_string()),
    }
}

struct Finetune {
    args: FinetuneArgs,
    backend: BackendKind,
}

impl WithBackend for Finetune {
    type Output = Result<(), Error>;

    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), Error> {
        let Finetune { args, backend } = self;
        // Bad settings, missing data and an unusable --out fail before the model loads.
        if args.model.adapter.is_some() {
            return Err(Error::Unsupported(
                "finetune trains a fresh adapter; starting from --adapter is not supported yet"
                    .into(),
            ));
        }
        let config = args.config()?;
        check_file(&args.data).map_err(from_train)?;
        if let Some(eval) = &args.eval_data {
            check_file(eval).map_err(from_train)?;
        }
        prepare_out_dir(&args.out, args.resume).map_err(from_train)?;
        let path = hub::resolve(&args.model.model)?;
        let model = load::load::<Autodiff<B>>(&path, &device)?;
        let vocab = model.transformer.config().vocab_size;
        let base_model = Some(args.model.model.clone());
        let trainer = if args.resume {
            Trainer::resume(model.transformer, config.clone(), &args.out, base_model)
        } else {
            Trainer::new(model.transformer, config.clone(), &args.out, base_model)
        }
        .map_err(from_train)?;
        let read = |path: &PathBuf| {
            Dataset::read(path, &model.tokenizer, config.seq_len, vocab).map_err(from_train)
        };
        let train = read(&args.data)?;
        let eval = args.eval_data.as_ref().map(read).transpose()?;
        describe(&train, eval.as_ref(), trainer.step());
        let summary = trainer
            .run(&train, eval.as_ref(), |event| {
                show(event);
                ControlFlow::Continue(())
            })
            .map_err(|e| {
                noteln!();
                from_train(e)
            })?;
        noteln!();
        if args.json {
            let mut object = Map::new();
            object.insert("model".into(), json!(args.model.model));
            object.insert("backend".into(), json!(backend.name()));
            if let Ok(Value::Object(fields)) = serde_json::to_value(&summary) {
                object.extend(fields);
            }
            outln!("{}", Value::Object(object));
        } else {
            report(&summary)?;
        }
        Ok(())
    }
}

/// One stderr line on the data and where the run starts.
fn describe(train: &Dataset, eval: Option<&Dataset>, step: usize) {
    let cut = match train.truncated {
        0 => String::new(),
        n => format!(", {n} rows cut to --seq-len"),
    };
    let skipped = match train.skipped {
        0 => String::new(),
        n => format!(", {n} rows with nothing to score left out"),
    };
    let held_out = eval.map_or_else(
        || "no held-out data".to_string(),
        |e| format!("{} held-out sequences", e.examples.len()),
    );
    let start = match step {
        0 => String::new(),
        s => format!("; resuming after step {s}"),
    };
    noteln!(
        "{} training sequences ({} scored tokens{cut}{skipped}), {held_out}{start}",
        train.examples.len(),
        train.targets()
    );
}

/// The progress line (rewritten in place) and a line per held-out loss and checkpoint.
fn show(event: Progress<'_>) {
    match event {
        Progress::Step { record, steps, eta } => crate::out::note(format_args!(
            "\r\x1b[2K[{}/{steps}] loss {:.4} · lr {:.2e} · {:.0} tok/s · {} left",
            record.step,
            record.loss,
            record.lr,
            record.tokens as f64 / record.seconds.max(1e-9),
            minutes(eta)
        )),
        Progress::Eval(record) => noteln!(
            "\r\x1b[2Kstep {}: held-out loss {:.4}",
            record.step,
            record.loss
        ),
        Progress::Saved { step, dir } => noteln!(
            "\r\x1b[2Kstep {step}: checkpoint saved in {}",
            dir.display()
        ),
    }
}

/// `3m05s`.
fn minutes(duration: Duration) -> String {
    let seconds = duration.as_secs();
    format!("{}m{:02}s", seconds / 60, seconds % 60)
}

/// The summary on standard output.
fn report(summary: &Summary) -> Result<(), Error> {
    let loss = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{a:.4} → {b:.4}"),
        _ => "-".into(),
    };
    outln!(
        "{} steps: training loss {}, held-out loss {}",
        summary.steps,
        loss(summary.train_loss_first, summary.train_loss_last),
        loss(summary.eval_loss_start, summary.eval_loss_end)
    );
    let speed = summary
        .tokens_per_s
        .map_or_else(|| "-".into(), |s| format!("{s:.0}"));
    let memory = summary.peak_memory_bytes.map_or_else(
        || "-".into(),
        |b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64),
    );
    outln!(
        "{speed} training tokens/s, peak memory {memory}, {} trainable parameters",
        summary.trainable_params
    );
    outln!(
        "adapter (PEFT layout) in {}, loss curve {}",
        summary.adapter,
        summary.loss_plot
    );
    Ok(())
}

pub fn run(args: FinetuneArgs) -> Result<(), Error> {
    let backend = args.model.backend()?;
    dispatch(backend, Finetune { args, backend })?
}
