//! `momentkv`: generate text, fetch models, measure speed.

mod bench;
mod generate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use momentkv::backend::BackendKind;
use momentkv::hub;

#[derive(Parser)]
#[command(
    name = "momentkv",
    version,
    about = "Long-context LLM inference in burn with a budgeted KV cache"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every model-running command takes.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// A known model name (see `momentkv fetch --list`), a Hugging Face directory or a .gguf file.
    #[arg(long, default_value = hub::SMOLLM2_135M.name)]
    pub model: String,
    /// Backend to run on, among those compiled in (default: the first of flex, ndarray, wgpu, cuda).
    #[arg(long)]
    pub backend: Option<String>,
}

impl ModelArgs {
    pub fn backend(&self) -> Result<BackendKind, momentkv::Error> {
        match &self.backend {
            Some(name) => name.parse(),
            None => Ok(BackendKind::default_compiled()),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Generate a continuation of a prompt, streamed to the terminal.
    Generate(generate::GenerateArgs),
    /// Fetch a known model ahead of time.
    Fetch {
        /// Model name.
        #[arg(required_unless_present = "list")]
        name: Option<String>,
        /// List the known models and where they are kept.
        #[arg(long)]
        list: bool,
    },
    /// Measure prefill and decode speed and the KV cache's size.
    Bench(bench::BenchArgs),
}

fn fetch(name: Option<String>, list: bool) -> Result<(), momentkv::Error> {
    if list {
        for m in hub::KNOWN {
            let state = if m.path().is_file() {
                "fetched"
            } else {
                "not fetched"
            };
            println!(
                "{:<14} {} [{state}: {}]",
                m.name,
                m.description,
                m.path().display()
            );
        }
        return Ok(());
    }
    let name = name.unwrap_or_default();
    let model = hub::known(&name).ok_or_else(|| momentkv::Error::UnknownModel {
        name: name.clone(),
        known: hub::KNOWN
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let path = model.path();
    if path.is_file() {
        println!("{} is already at {}", model.name, path.display());
    } else {
        hub::fetch(model)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Fetch { name, list } => fetch(name, list),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
