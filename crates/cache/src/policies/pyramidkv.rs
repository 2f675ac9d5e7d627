//! PyramidKV (Cai et al., 2024): SnapKV's scores with per-layer budgets that fall linearly with
//! depth ([`crate::LayerBudget::Pyramid`]).

use burn::tensor::backend::Backend;

use super::snapkv::SnapKv;
use super::{Entry, KERNEL, PRESET, WINDOW};
use crate::params::{Args, Param};
use crate::{CacheError, LayerBudget, Policy};

pub static ENTRY: Entry = Entry {
    name: "pyramidkv",
    aliases: &["pyramid"],
    summary: "PyramidKV: SnapKV scores with per-layer budgets falling linearly with depth",
    params: &[
        WINDOW,
        KERNEL,
        PRESET,
        Param::real(
            "beta",
            20.0,
            1.0,
            1e6,
            "the last layer keeps 1/beta of the mean budget",
        ),
    ],
    plain_scorer: false,
    kvpress: &[("pyramidkv", "pyramidkv:preset=kvpress")],
};

pub fn build<B: Backend>(args: &mut Args) -> Result<Policy<B>, CacheError> {
    let (scorer, preset) = SnapKv::read(args)?;
    let beta = args.real("beta")?;
    let window = scorer.window;
    Ok(preset.protect(
        window,
        Policy {
            layer_budget: LayerBudget::Pyramid { window, beta },
            ..Policy::scored(scorer)
        },
    ))
}
