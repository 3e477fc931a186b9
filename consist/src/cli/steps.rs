//! `consist steps`: the steps linked into this binary and whether their code changed.

use super::error::Result;
use super::{Cli, print_json, table};
use crate::registry::step_report;
use clap::Args;

/// Options of `consist steps`.
#[derive(Debug, Args)]
pub struct StepsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(cli: &Cli, args: &StepsArgs) -> Result<()> {
    let report = step_report(&cli.catalog()?)?;
    if args.json {
        print_json(&report);
        return Ok(());
    }
    if report.is_empty() {
        println!(
            "no #[step] functions are linked into this binary; call consist::cli::main() from your own binary to list yours"
        );
        return Ok(());
    }
    let mut t = table::new(&[
        "step",
        "version",
        "epoch",
        "code hash",
        "last executed run",
        "code changed since",
        "uses but cannot follow",
        "defined at",
    ]);
    for s in &report {
        let changed = match s.changed {
            Some(true) if s.changed_items.is_empty() => table::problem("yes"),
            Some(true) => table::problem(&format!("yes: {}", s.changed_items.join(", "))),
            Some(false) => table::cell("no"),
            None => table::cell("never ran"),
        };
        t.add_row([
            table::cell(s.name),
            table::cell(if s.version.is_empty() { "-" } else { s.version }),
            table::cell(s.epoch.map_or_else(|| "-".to_owned(), |e| e.to_string())),
            table::cell(table::short(&s.code_hash)),
            table::cell(s.last_run.clone().unwrap_or_default()),
            changed,
            if s.not_followed.is_empty() { table::cell("-") } else { table::problem(&s.not_followed.join(", ")) },
            table::cell(&s.location),
        ]);
    }
    println!("{t}");
    Ok(())
}
