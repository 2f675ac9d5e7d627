//! AdaKV (Feng et al., 2024): any plain scorer's scores, with per-head budgets from a top-k across
//! the layer's heads ([`crate::Allocation::Adaptive`]).

use burn::tensor::backend::Backend;

use super::Entry;
use crate::params::{Args, Kind, Param};
use crate::{Allocation, CacheError, Policy};

/// Each head's guaranteed share of the uniform budget, declared once for the policies that share
/// a layer's budget among heads by score.
pub(crate) const ALPHA: Param = Param::real(
    "alpha",
    0.2,
    0.0,
    1.0,
    "each head keeps at least this share of the uniform budget; the rest goes to the layer's \
     best scores across heads",
);

pub static ENTRY: Entry = Entry {
    name: "adakv",
    aliases: &[],
    summary:
        "AdaKV: any scorer, with per-head budgets from a global top-k across the layer's heads",
    params: &[
        Param {
            key: "scorer",
            kind: Kind::Scorer { default: "snapkv" },
            doc: "the policy whose scores are shared out (its parameters may follow)",
        },
        ALPHA,
    ],
    plain_scorer: false,
    kvpress: &[
        ("adakv_snapkv", "adakv:preset=kvpress"),
        (
            "adakv_expected_attention",
            "adakv:scorer=expected,epsilon=0.01",
        ),
    ],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    let scorer = args.scorer("scorer")?;
    let alpha = args.real("alpha")?;
    args.declare(scorer.params);
    Ok(Policy {
        allocation: Allocation::Adaptive { alpha },
        ..super::build(scorer, args)?
    })
}
