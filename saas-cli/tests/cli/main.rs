//! The `saas` binary driven as a user drives it, in temporary folders: `saas new` and its
//! refusals, the generators, `saas doctor`, and the template rendered by cargo-generate's own
//! binary. (The generated app built, tested and served: `tests/e2e.rs`.)

mod doctor;
mod equivalence;
mod generate;
mod new;
mod support;
