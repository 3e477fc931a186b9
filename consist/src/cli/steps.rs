//! `consist steps`: the steps linked into this binary and whether their code changed.

use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Cli;
use crate::error::Result;
use crate::registry::step_report;

/// Options of `consist steps`.
#[derive(Debug, Args)]
pub struct StepsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(cli: &Cli, args: &StepsArgs) -> Result<()> {
    let report = step_report(&cli.catalog())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
        return Ok(());
    }
    if report.is_empty() {
        println!(
            "no #[step] functions are linked into this binary; call consist::cli::main() from your own binary to list yours"
        );
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["step", "code hash", "last executed run", "code changed since", "defined at"]);
    for s in &report {
        let changed = match s.changed {
            Some(true) => "yes",
            Some(false) => "no",
            None => "never ran",
        };
        table.add_row([
            s.name.to_owned(),
            s.code_hash[..12].to_owned(),
            s.last_run.clone().unwrap_or_default(),
            changed.to_owned(),
            s.location.clone(),
        ]);
    }
    println!("{table}");
    Ok(())
}
