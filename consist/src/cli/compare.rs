//! `consist diff` and `consist explain`: what differs between runs, and why a run was (not) a hit.

use clap::Args;

use super::error::Result;
use super::{Cli, print_json};
use crate::catalog::diff::{Changes, RunDiff};

/// Options of `consist diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// First run (id or unique prefix).
    pub run_a: String,
    /// Second run (id or unique prefix).
    pub run_b: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn print_changes(changes: &Changes, what: &str) {
    if changes.is_empty() {
        println!("{what}: same");
        return;
    }
    println!("{what}:");
    for (k, v) in &changes.removed {
        println!("  - {k} = {v}");
    }
    for (k, v) in &changes.added {
        println!("  + {k} = {v}");
    }
    for (k, [x, y]) in &changes.changed {
        println!("  ~ {k}: {x} -> {y}");
    }
}

fn print_diff(d: &RunDiff) {
    println!("{} ({}) -> {} ({})", d.run_a, d.model_a, d.run_b, d.model_b);
    println!(
        "signature: {}",
        if d.same_signature { "same (one would be a cache hit of the other)" } else { "different" }
    );
    println!("code: {}", if d.code_changed { "changed" } else { "same" });
    print_changes(&d.config, "config");
    print_changes(&d.inputs, "inputs");
    print_changes(&d.toolchain, "toolchain");
    if !d.runtime.is_empty() {
        print_changes(&d.runtime, "runtime (recorded, not in the signature)");
    }
}

pub(super) fn diff(cli: &Cli, args: &DiffArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let d = catalog.diff_runs(&args.run_a, &args.run_b)?;
    if args.json {
        print_json(&d);
    } else {
        print_diff(&d);
    }
    Ok(())
}

/// Options of `consist explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Run id, or a unique prefix of one.
    pub run: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn explain(cli: &Cli, args: &ExplainArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let e = catalog.explain_run(&args.run)?;
    if args.json {
        print_json(&e);
        return Ok(());
    }
    match (&e.cache_source, &e.miss) {
        (Some(source), _) => {
            println!("{} was a cache hit: same signature as run {source}, whose outputs it reused", e.run)
        }
        (None, Some(miss)) => println!("{} executed: {}", e.run, miss.summary),
        (None, None) => {
            println!("{} executed; no explanation was recorded (a scenario header, or an older run)", e.run)
        }
    }
    if let Some(d) = &e.diff {
        println!();
        print_diff(d);
    }
    Ok(())
}
