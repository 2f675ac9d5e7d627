use std::time::Instant;

use momentkv::backend::{dispatch, WithBackend};
use momentkv::kernels::KernelBackend;
use momentkv::{hub, Error};
use momentkv_eval::haystack::Essays;
use momentkv_eval::passkey::{ask, samples, Protocol, Template};

use crate::cache_args::{split_policies, CacheArgs};
use crate::model_args::ModelArgs;

#[derive(clap::Args)]
pub struct PasskeyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Policies to compare, each `NAME[:key=value,...]`, separated by `;` or `,` between names
    /// (the full cache is always measured first).
    #[arg(long, default_value = "snapkv", value_delimiter = ';')]
    pub policies: Vec<String>,
    /// Budgets in tokens per KV head.
    #[arg(long, value_delimiter = ',', default_value = "64,128,256")]
    pub budgets: Vec<usize>,
    /// Context length in model tokens.
    #[arg(long, default_value_t = 1500)]
    pub length: usize,
    /// Samples (needle depths spread evenly from near the start to near the end).
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
    /// Seed of the keys.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// When to evict (as for `generate`).
    #[arg(long, default_value = "prefill")]
    pub evict_during: String,
    /// Compress the question with the context (SnapKV's original setting) instead of reading it
    /// after compression.
    #[arg(long)]
    pub query_aware: bool,
    /// The essay JSON (RULER's PaulGrahamEssays.json); fetched when not given.
    #[arg(long)]
    pub essays: Option<std::path::PathBuf>,
    /// Print one JSON object per (policy, budget) instead of the table.
    #[arg(long)]
    pub json: bool,
}

struct Passkey(PasskeyArgs);

impl WithBackend for Passkey {
    type Output = Result<(), Error>;

    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), Error> {
        let args = self.0;
        if args.samples == 0 {
            return Err(Error::Unsupported("--samples must be at least 1".into()));
        }
        let model = args.model.load::<B>(&device)?;
        let essays = match &args.essays {
            Some(p) => p.clone(),
            None => hub::ensure(&hub::PAUL_GRAHAM_ESSAYS)?,
        };
        let essays = Essays::load(&essays)?;
        let template = Template::builtin();
        let set = samples(
            &essays,
            &model.tokenizer,
            &template,
            args.length,
            args.samples,
            args.seed,
        )?;
        let policies = split_policies(&args.policies);
        let mut cells = vec![("full".to_string(), None)];
        for p in policies.iter().filter(|p| *p != "full") {
            cells.extend(args.budgets.iter().map(|&b| (p.clone(), Some(b))));
        }
        // Check every policy and budget before the first long run.
        for (policy, budget) in &cells {
            cache(policy, *budget, &args.evict_during).build(&model.transformer)?;
        }
        let mut results: Vec<(String, Option<usize>, usize)> = Vec::new();
        for (policy, budget) in &cells {
            let started = Instant::now();
            let mut found = 0;
            let mut answers = Vec::new();
            for sample in &set {
                let mut kv =
                    cache(policy, *budget, &args.evict_during).build(&model.transformer)?;
                let protocol = if args.query_aware {
                    Protocol::QueryAware
                } else {
                    Protocol::QueryAgnostic
                };
                let out = ask(&model, &mut kv, sample, protocol)?;
                found += out.found as usize;
                answers.push(serde_json::json!({
                    "key": sample.key, "depth": sample.depth, "found": out.found,
                    "answer": out.answer, "context_tokens": sample.context.len(),
                }));
            }
            if args.json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "policy": policy, "budget": budget, "found": found,
                        "samples": set.len(), "seconds": started.elapsed().as_secs_f64(),
                        "answers": answers,
                    })
                );
            } else {
                noteln!(
                    "{policy} @ {}: {found}/{} ({:.1} s)",
                    budget.map_or("all".into(), |b| b.to_string()),
                    set.len(),
                    started.elapsed().as_secs_f64()
                );
            }
            results.push((policy.clone(), *budget, found));
        }
        if !args.json {
            let protocol = if args.query_aware {
                "query-aware"
            } else {
                "query-agnostic"
            };
            print_table(
                &results,
                &args.budgets,
                set.len(),
                set[0].context.len(),
                protocol,
            )?;
        }
        Ok(())
    }
}

fn cache(policy: &str, budget: Option<usize>, at: &str) -> CacheArgs {
    CacheArgs {
        policy: policy.into(),
        budget,
        compression: None,
        evict_during: at.into(),
    }
}

/// A Markdown table: one row per policy, one column per budget, cells `found/samples`.
fn print_table(
    results: &[(String, Option<usize>, usize)],
    budgets: &[usize],
    n: usize,
    len: usize,
    protocol: &str,
) -> Result<(), Error> {
    outln!("\nPasskey found (of {n} samples, context ≈ {len} tokens, {protocol})\n");
    let head: Vec<String> = budgets.iter().map(|b| format!("budget {b}")).collect();
    outln!("| policy | {} |", head.join(" | "));
    outln!("|---|{}", "---|".repeat(budgets.len()));
    for (policy, budget, found) in results {
        if budget.is_none() {
            let cell = format!("{found}/{n}");
            outln!("| {policy} | {} |", vec![cell; budgets.len()].join(" | "));
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (policy, budget, _) in results {
        if budget.is_some() && !seen.contains(&policy.as_str()) {
            seen.push(policy);
        }
    }
    for policy in seen {
        let row: Vec<String> = budgets
            .iter()
            .map(|b| {
                results
                    .iter()
                    .find(|(p, bb, _)| p == policy && *bb == Some(*b))
                    .map_or("-".into(), |(_, _, f)| format!("{f}/{n}"))
            })
            .collect();
        outln!("| {policy} | {} |", row.join(" | "));
    }
    Ok(())
}

pub fn run(args: PasskeyArgs) -> Result<(), Error> {
    let backend = args.model.backend()?;
    dispatch(backend, Passkey(args))?
}
