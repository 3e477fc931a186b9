//! `consist export`: the catalog's runs as OpenLineage events, a PROV-JSON document or a Workflow
//! Run RO-Crate (the library's [`crate::Catalog::export`] builds them).

use std::path::PathBuf;

use super::error::Result;
use super::{Cli, print_json};
use crate::export::{ExportFormat, ExportScope};

/// Arguments of `consist export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Export one run (an id or a unique prefix) instead of every run.
    #[arg(long, conflicts_with = "scenario")]
    run: Option<String>,
    /// Export one scenario: its header run and every run in it.
    #[arg(long)]
    scenario: Option<String>,
    /// Where to write: a file for openlineage (JSON lines) and prov-json, a directory for ro-crate.
    #[arg(long)]
    out: PathBuf,
    /// For ro-crate: copy the artifacts' files into the crate (else they are named by path).
    #[arg(long)]
    with_files: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(cli: &Cli, args: &ExportArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let scope = match (&args.run, &args.scenario) {
        (Some(run), _) => ExportScope::Run(run.clone()),
        (None, Some(scenario)) => ExportScope::Scenario(scenario.clone()),
        (None, None) => ExportScope::All,
    };
    let report = catalog.export(args.format, &scope, &args.out, args.with_files)?;
    if args.json {
        print_json(&report);
        return Ok(());
    }
    let what = match args.format {
        ExportFormat::Openlineage => "events",
        ExportFormat::ProvJson => "statements",
        ExportFormat::RoCrate => "entities",
    };
    println!("exported {} runs: {} {what} -> {}", report.runs, report.records, report.path.display());
    if report.files_copied > 0 {
        println!("copied {} artifact files into the crate", report.files_copied);
    }
    Ok(())
}
