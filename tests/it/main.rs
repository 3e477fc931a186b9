//! End-to-end tests of the public API, the CLI and the examples (one binary: one link step).

mod cache;
mod cli;
mod conformance;
mod crash;
mod examples;
mod export;
mod failure;
mod identity;
mod iterative;
mod maintenance;
mod outputs;
mod parallel;
mod pg;
mod places;
mod portable;
mod postgres;
mod process;
mod queries;
mod reliability;
mod scenario;
mod snapshots;
mod steps;
mod store;
mod toolchain;
mod util;
