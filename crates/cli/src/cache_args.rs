//! The KV-cache options every model-running command takes: `--policy`, `--budget` or
//! `--compression`, `--evict-during`.

use momentkv::cache::{Budget, CacheError, EvictAt, EvictingCache, PolicySpec};
use momentkv::kernels::KernelBackend;
use momentkv::transformer::Transformer;
use momentkv::Error;

#[derive(clap::Args, Clone)]
pub struct CacheArgs {
    /// Eviction policy, `NAME[:key=value,...]` (see `momentkv policies`).
    #[arg(long, default_value = "full")]
    pub policy: String,
    /// Tokens each KV head keeps.
    #[arg(long, conflicts_with = "compression")]
    pub budget: Option<usize>,
    /// Fraction of the context removed, in [0, 1) (kvpress's compression ratio).
    #[arg(long)]
    pub compression: Option<f64>,
    /// When to evict: a comma list of `prefill` (once after the prompt), `chunked[=N]` (after
    /// each N-token prompt chunk), `decode` (keep the budget while generating).
    #[arg(long, default_value = "prefill")]
    pub evict_during: String,
}

impl CacheArgs {
    /// The cache these options describe, for `model`.
    pub fn build<B: KernelBackend>(
        &self,
        model: &Transformer<B>,
    ) -> Result<EvictingCache<B>, Error> {
        let spec: PolicySpec = self.policy.parse()?;
        let policy = spec.build::<B>()?;
        if !policy.evicts() && (self.budget.is_some() || self.compression.is_some()) {
            return Err(CacheError::BadBudget(format!(
                "policy '{}' keeps every token, so --budget and --compression do nothing: pick an \
                 evicting --policy (momentkv policies) or drop them",
                spec.name
            ))
            .into());
        }
        let budget = match (self.budget, self.compression) {
            (Some(n), _) => Budget::tokens(n)?,
            (None, Some(r)) => Budget::compression(r)?,
            (None, None) if !policy.evicts() => Budget::compression(0.0)?,
            (None, None) => {
                return Err(CacheError::BadBudget(format!(
                    "policy '{}' evicts to a budget: give --budget N (tokens per KV head) or \
                     --compression R",
                    spec.name
                ))
                .into())
            }
        };
        // What the user asked to protect (a policy's own window, protected by its definition,
        // gives way to a smaller budget as in kvpress).
        let given = |key: &str, value: usize| {
            let named = spec.params.iter().any(|(k, _)| k == key);
            if named {
                value
            } else {
                0
            }
        };
        let (sinks, recent) = (given("sinks", policy.sinks), given("recent", policy.recent));
        let protected = sinks.saturating_add(recent);
        if let Some(n) = self.budget.filter(|&n| protected > n) {
            return Err(CacheError::BadBudget(format!(
                "'{}' protects {protected} tokens (sinks {sinks} + recent {recent}), more than \
                 --budget {n}: lower them or raise the budget",
                policy.spec
            ))
            .into());
        }
        let at: EvictAt = self.evict_during.parse()?;
        Ok(EvictingCache::new(
            model.cache_context(),
            policy,
            budget,
            at,
        )?)
    }
}

/// A one-line note when an evicting policy evicted nothing (the budget covered the context).
pub fn nothing_evicted_note<B: KernelBackend>(cache: &EvictingCache<B>) -> Option<String> {
    (cache.policy().evicts() && cache.evicted() == 0).then(|| {
        format!(
            "note: the budget ({}) covers the whole context, so '{}' evicted nothing",
            cache.budget(),
            cache.policy().spec
        )
    })
}

/// The policies and budgets a command measures against the full cache, every policy at every
/// budget (`analyze`, `perplexity`).
#[derive(clap::Args)]
pub struct PolicyGrid {
    /// Policies, `NAME[:key=value,...]`, separated by `;` or `,` between names (the full cache is
    /// always measured, as the reference).
    #[arg(
        long = "policy",
        visible_alias = "policies",
        value_delimiter = ';',
        required = true
    )]
    pub policies: Vec<String>,
    /// Budgets in tokens per KV head.
    #[arg(
        long = "budget",
        visible_alias = "budgets",
        value_delimiter = ',',
        required = true
    )]
    pub budgets: Vec<usize>,
}

impl PolicyGrid {
    /// Every (policy, budget), policy-major, without `full` (the reference, measured anyway).
    pub fn cells(&self) -> Vec<(String, usize)> {
        split_policies(&self.policies)
            .into_iter()
            .filter(|p| p != "full")
            .flat_map(|p| self.budgets.iter().map(move |&b| (p.clone(), b)))
            .collect()
    }
}

/// `snapkv,tova;adakv:scorer=knorm,alpha=0.3` → names split at `,` unless a `:` parameter list
/// is open; `;` always splits.
pub fn split_policies(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let first = out.len();
        for part in item.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let continues = out.len() > first && part.contains('=') && !part.contains(':');
            match out.last_mut() {
                Some(last) if continues && last.contains(':') => {
                    last.push(',');
                    last.push_str(part);
                }
                _ => out.push(part.to_string()),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_policies;

    #[test]
    fn policy_lists_split_between_names_not_parameters() {
        let got = split_policies(&[
            "snapkv,tova,adakv:scorer=knorm,alpha=0.3".into(),
            "snapkv:window=32".into(),
            "snapkv:kernel=7,window=8,h2o".into(),
        ]);
        assert_eq!(
            got,
            vec![
                "snapkv",
                "tova",
                "adakv:scorer=knorm,alpha=0.3",
                "snapkv:window=32",
                "snapkv:kernel=7,window=8",
                "h2o"
            ]
        );
    }
}
