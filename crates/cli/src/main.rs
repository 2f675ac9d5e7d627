//! `momentkv`: generate text, fetch models, measure speed, fine-tune.

#[macro_use]
mod out;

mod analyze;
mod bench;
mod cache_args;
mod eval;
mod finetune;
mod generate;
mod kernel_bench;
mod model_args;
mod passkey;
mod perplexity;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
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

#[derive(Subcommand)]
enum Command {
    /// Generate a continuation of a prompt, streamed to the terminal.
    Generate(generate::GenerateArgs),
    /// Fetch a known model or data file ahead of time.
    Fetch {
        /// Model or data file name.
        #[arg(required_unless_present = "list")]
        name: Option<String>,
        /// List the known models and where they are kept.
        #[arg(long)]
        list: bool,
    },
    /// Measure prefill and decode speed and the KV cache's size.
    Bench(bench::BenchArgs),
    /// List the KV-cache eviction policies and their parameters.
    Policies,
    /// Passkey retrieval from essay text: which policies and budgets still find the key.
    Passkey(passkey::PasskeyArgs),
    /// Attention error per layer of evicting policies against the full cache (MomentKV's
    /// diagnostics): relative error, evicted mass, moment-estimate and directional cosines.
    Analyze(analyze::AnalyzeArgs),
    /// RULER's long-context tasks over policies and budgets: results.jsonl, summary.md, plots.
    Eval(eval::EvalArgs),
    /// Perplexity under compression: the NLL of a long text read while the cache holds each
    /// budget, against the full cache's on the same tokens.
    Perplexity(perplexity::PerplexityArgs),
    /// Fine-tune a LoRA adapter on a text or JSONL file; the adapter is saved in PEFT's layout,
    /// with the loss curve and resumable checkpoints.
    Finetune(finetune::FinetuneArgs),
}

fn policies() -> Result<(), momentkv::Error> {
    use momentkv::cache::{Param, COMMON_PARAMS, POLICIES};
    let param = |p: &Param| -> Result<(), momentkv::Error> {
        outln!(
            "    {:<13} {:<9} {} ({})",
            p.key,
            p.default_text(),
            p.doc,
            p.range_text()
        );
        Ok(())
    };
    outln!("Pass as --policy NAME[:key=value,...] with --budget N or --compression R.\n");
    for p in POLICIES {
        let aliases = if p.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also {})", p.aliases.join(", "))
        };
        outln!("{}{aliases}\n    {}", p.name, p.summary);
        p.params.iter().try_for_each(param)?;
    }
    outln!("\nEvery policy but full also takes:");
    COMMON_PARAMS.iter().try_for_each(param)?;
    outln!(
        "\nAppend +moments to any evicting policy (snapkv+moments:window=32) to keep the moments \
         of the evicted tokens and correct attention with them (MomentKV's first-order correction; \
         order=2 adds the key variance)."
    );
    Ok(())
}

fn fetch(name: Option<String>, list: bool) -> Result<(), momentkv::Error> {
    if list {
        for m in hub::KNOWN.iter().chain(hub::DATA) {
            let state = if m.is_fetched() {
                "fetched"
            } else {
                "not fetched"
            };
            outln!(
                "{:<22} {} [{state}: {}]",
                m.name,
                m.description,
                m.path().display()
            );
        }
        return Ok(());
    }
    let name = name.unwrap_or_default();
    let model = hub::known_file(&name).ok_or_else(|| momentkv::Error::UnknownModel {
        name: name.clone(),
        known: hub::KNOWN
            .iter()
            .chain(hub::DATA)
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    hub::fetch(model)?;
    Ok(())
}

fn main() -> ExitCode {
    // clap exits 2 on bad arguments; momentkv exits 1 on every bad input.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Fetch { name, list } => fetch(name, list),
        Command::Bench(args) => bench::run(args),
        Command::Passkey(args) => passkey::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Perplexity(args) => perplexity::run(args),
        Command::Finetune(args) => finetune::run(args),
        Command::Policies => policies(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            noteln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
