//! `consist db merge` and `consist db copy`: another catalog's runs brought into this one.

use super::super::error::Result;
use super::super::{Cli, print_json};
use super::ConflictArg;
use crate::catalog::Catalog;
use crate::catalog::maintenance::{MergeReport, OnConflict};
use crate::location::CatalogLocation;

pub(super) fn merge(cli: &Cli, other: &str, conflict: ConflictArg, dry_run: bool, json: bool) -> Result<()> {
    let source = Catalog::open(&CatalogLocation::parse(other)?, cli.timeout())?;
    let on_conflict = match conflict {
        ConflictArg::Error => OnConflict::Error,
        ConflictArg::Skip => OnConflict::Skip,
    };
    let catalog = cli.catalog()?;
    let report = catalog.merge(&source, on_conflict, dry_run)?;
    if json {
        print_json(&report);
    } else {
        print_merge(&report, catalog.location());
    }
    Ok(())
}

pub(super) fn copy(cli: &Cli, from: &str, to: &str, json: bool) -> Result<()> {
    let source = Catalog::open(&CatalogLocation::parse(from)?, cli.timeout())?;
    let target = Catalog::open(&CatalogLocation::parse(to)?, cli.timeout())?;
    let report = target.copy_from(&source)?;
    if json {
        print_json(&report);
    } else {
        print_merge(&report.merge, target.location());
        println!(
            "checked: {} run(s) and {} artifact link(s) of {} are in {}",
            report.runs_checked,
            report.links_checked,
            source.location(),
            target.location()
        );
    }
    Ok(())
}

fn print_merge(report: &MergeReport, into: &crate::CatalogLocation) {
    let verb = if report.dry_run { "would merge" } else { "merged" };
    println!(
        "{verb} {} run(s) from {} into {} ({} artifact link(s), {} new cache entr{})",
        report.merged.len(),
        report.source,
        into,
        report.artifact_links,
        report.index_entries,
        if report.index_entries == 1 { "y" } else { "ies" }
    );
    for (label, ids) in [
        ("already present", &report.already_present),
        ("conflicts skipped (kept this database's)", &report.conflicts_skipped),
        ("still running in the source, skipped", &report.running_skipped),
    ] {
        if !ids.is_empty() {
            println!("{label}: {}", ids.len());
            for id in ids {
                println!("  {id}");
            }
        }
    }
}
