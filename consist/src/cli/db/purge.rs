//! `consist db purge`: runs removed for good, after a confirmation.

use std::io::IsTerminal;

use super::super::error::{CliError, Result};
use super::super::{Cli, print_json};
use super::confirm;
use crate::catalog::Catalog;
use crate::catalog::maintenance::{PurgeOptions, PurgeReport};
use crate::run::RunStatus;
use crate::store::RunQuery;

/// Arguments of `consist db purge`.
#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Runs to purge (ids or unique prefixes); or select with --status / --model.
    runs: Vec<String>,
    /// Also purge every run with this status (e.g. failed).
    #[arg(long, value_parser = super::super::parse_status)]
    status: Option<RunStatus>,
    /// Also purge every run of this model (step or scenario name).
    #[arg(long)]
    model: Option<String>,
    /// Keep the runs whose parent is purged (a scenario's steps); by default they go too.
    #[arg(long)]
    no_children: bool,
    /// Delete the files of removed artifacts that lie in their run's own output directory.
    #[arg(long)]
    delete_files: bool,
    /// Purge runs still marked running even though their process may be alive.
    #[arg(long)]
    force: bool,
    /// --dry-run, --yes, --json.
    #[command(flatten)]
    removal: super::super::Removal,
}

/// The runs `consist db purge` selects: the ones named (prefixes resolved) and those matching
/// the filters.
fn purge_selection(catalog: &Catalog, args: &PurgeArgs) -> Result<Vec<String>> {
    if args.runs.is_empty() && args.status.is_none() && args.model.is_none() {
        return Err(CliError::Usage("name the runs to purge, or select them with --status or --model".into()));
    }
    let mut ids = Vec::new();
    for prefix in &args.runs {
        ids.push(catalog.resolve_run(prefix)?.id);
    }
    if args.status.is_some() || args.model.is_some() {
        let query = RunQuery { status: args.status, model: args.model.clone(), ..RunQuery::default() };
        ids.extend(catalog.find_runs(&query)?.into_iter().map(|r| r.id));
    }
    Ok(ids)
}

pub(super) fn run(cli: &Cli, args: &PurgeArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let ids = purge_selection(&catalog, args)?;
    let options = PurgeOptions {
        include_children: !args.no_children,
        delete_files: args.delete_files,
        force: args.force,
        dry_run: true,
    };
    if !args.removal.dry_run && !args.removal.yes {
        let plan = catalog.purge(&ids, options)?;
        if !plan.runs.is_empty() {
            if std::io::stdin().is_terminal() {
                print_purge(&plan);
            }
            let question = format!("purge these {} run(s)?", plan.runs.len());
            let refusal = format!(
                "db purge would remove {} run(s) for good; pass --yes to confirm, or --dry-run to see them",
                plan.runs.len()
            );
            if !confirm(false, &question, &refusal)? {
                return Ok(());
            }
        }
    }
    let report = catalog.purge(&ids, PurgeOptions { dry_run: args.removal.dry_run, ..options })?;
    if args.removal.json {
        print_json(&report);
    } else {
        print_purge(&report);
    }
    Ok(())
}

fn print_purge(report: &PurgeReport) {
    let verb = if report.dry_run { "would purge" } else { "purged" };
    println!(
        "{verb} {} run(s) ({} as children of purged runs), {} artifact(s), {} snapshot(s), {} cache entr{}",
        report.runs.len(),
        report.children.len(),
        report.artifacts.len(),
        report.snapshots.len(),
        report.index_entries,
        if report.index_entries == 1 { "y" } else { "ies" }
    );
    for id in &report.runs {
        println!("  {id}");
    }
    if !report.files_deleted.is_empty() {
        let verb = if report.dry_run { "would delete" } else { "deleted" };
        println!("{verb} {} file(s)", report.files_deleted.len());
        for path in &report.files_deleted {
            println!("  {}", path.display());
        }
    }
    if !report.files_kept.is_empty() {
        println!("{} file(s) left on disk:", report.files_kept.len());
        for kept in &report.files_kept {
            println!("  {}  ({})", kept.path.display(), kept.reason);
        }
    }
}
