//! The user guide (docs/guide/), compiled as documentation so that every Rust snippet in it is a doctest.

#[doc = include_str!("../../docs/guide/01-workflows-and-steps.md")]
pub mod workflows_and_steps {}

#[doc = include_str!("../../docs/guide/02-scenarios-and-iteration.md")]
pub mod scenarios_and_iteration {}

#[doc = include_str!("../../docs/guide/03-cli.md")]
pub mod cli {}

#[doc = include_str!("../../docs/guide/04-postgresql.md")]
pub mod postgresql {}

#[doc = include_str!("../../docs/guide/05-object-store.md")]
pub mod object_store {}

#[doc = include_str!("../../docs/guide/06-portability-and-mounts.md")]
pub mod portability_and_mounts {}

#[doc = include_str!("../../docs/guide/07-exports.md")]
pub mod exports {}

#[doc = include_str!("../../docs/guide/08-performance.md")]
pub mod performance {}

#[doc = include_str!("../../docs/guide/09-reliability.md")]
pub mod reliability {}

#[doc = include_str!("../../docs/guide/10-upgrading.md")]
pub mod upgrading {}
