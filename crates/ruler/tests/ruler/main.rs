//! momentkv-ruler's integration tests, one binary. Tests on RULER's data files read them from the
//! directory `MOMENTKV_RULER_DATA` names, and say they skip when it is not set, or fail where data
//! is required (`MOMENTKV_REQUIRE_DATA=1` or `CI=true`).

mod data;
mod jsonl;
mod niah;
mod score;
mod sizing;
mod support;
mod tasks;
