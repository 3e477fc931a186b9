//! `consist db ...`: inspecting and maintaining the provenance database.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::error::{CliError, Result};
use super::{Cli, print_json, table};
use crate::catalog::Catalog;
use crate::error::Error;
use crate::location::CatalogLocation;
use crate::maintenance::{MergeReport, OnConflict, PurgeOptions, PurgeReport};
use crate::run::RunStatus;
use crate::store::RunQuery;

/// Database maintenance commands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Table counts, runs left `running` (zombies), orphaned rows, runs still pending.
    Inspect {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Mark runs left `running` by a process that is gone (zombies, see `inspect`) as failed.
    FailZombies,
    /// Write the runs still pending into the database now: the hits of processes that deferred
    /// them (`CONSIST_DEFER_HITS=1`), or of one that could not write at its exit, wait in the
    /// pending queue (the listings show them meanwhile; `query`, `summary` and `db export` read
    /// the database alone); run this before SQL or another program, such as Python Consist or
    /// the duckdb shell, should see them.
    Sync,
    /// Write the runs of the JSON snapshots under a directory into the database (one
    /// transaction), and remove this host's runs under it whose snapshots are gone. Runs of
    /// other run dirs and hosts, and rows without a snapshot, stay.
    Rebuild {
        /// Where to look for snapshots, recursively [default: the database's directory].
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// Replace the whole catalog with what the snapshots hold: every other run is removed,
        /// whoever recorded it (asks first; --yes to confirm without asking).
        #[arg(long)]
        replace_all: bool,
        /// Do not ask for confirmation (required with --replace-all when stdin is not a terminal).
        #[arg(long, short)]
        yes: bool,
    },
    /// Write every provenance table as a Parquet file into a directory.
    Export {
        /// The target directory (created if needed).
        dir: PathBuf,
    },
    /// Reclaim space: rewrite the database file without its free blocks (e.g. after a purge).
    Compact,
    /// Copy another database's runs into this one (rows, snapshot copies, cache entries).
    Merge {
        /// The catalog to merge from (left unchanged): a DuckDB path or a postgres:// URL.
        other: String,
        /// What to do with a run id recorded in both with different content.
        #[arg(long, value_enum, default_value_t = ConflictArg::Error)]
        conflict: ConflictArg,
        /// Show what would be merged; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove runs for good: database rows, snapshots, cache entries and, optionally, files.
    Purge(PurgeArgs),
    /// Copy a whole catalog into another, DuckDB and PostgreSQL both ways (`db merge` of every
    /// finished run, then each checked in the destination). --db-path is not used.
    Copy {
        /// The catalog to copy from (left unchanged): a DuckDB path or a postgres:// URL.
        from: String,
        /// The catalog to copy into (created if needed).
        to: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `--conflict` of `db merge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConflictArg {
    /// Merge nothing; name the conflicting runs.
    Error,
    /// Keep this database's runs and merge the others.
    Skip,
}

/// Arguments of `consist db purge`.
#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Runs to purge (ids or unique prefixes); or select with --status / --model.
    runs: Vec<String>,
    /// Also purge every run with this status (e.g. failed).
    #[arg(long, value_parser = super::parse_status)]
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
    removal: super::Removal,
}

fn inspect(cli: &Cli, json: bool) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let report = catalog.inspect()?;
    if json {
        print_json(&report);
        return Ok(());
    }
    let mut t = table::new(&["table", "rows"]);
    for (name, count) in &report.tables {
        t.add_row([name.clone(), count.to_string()]);
    }
    println!("{t}");
    println!("database         {}", catalog.location());
    println!(
        "pending runs     {}{}",
        report.pending,
        if report.pending == 0 {
            ""
        } else {
            " (written with the next tracker that writes the database, or by `consist db sync`)"
        }
    );
    println!("orphan artifacts {}", report.orphan_artifacts);
    println!("dangling links   {}", report.dangling_links);
    println!("purged producers {}", report.missing_producers);
    println!(
        "zombie runs      {}{}",
        report.zombies.len(),
        if report.zombies.is_empty() { "" } else { " (status running, but their process on this host is gone):" }
    );
    for id in &report.zombies {
        println!("  {id}");
    }
    if !report.zombies.is_empty() {
        println!("  (mark them failed with `consist db fail-zombies`)");
    }
    println!(
        "damaged runs     {}{}",
        report.damaged.len(),
        if report.damaged.is_empty() { "" } else { " (their pending snapshot is unreadable; not in the catalog):" }
    );
    for d in &report.damaged {
        println!("  {} (run {}): {}", d.file.display(), d.run_id.as_deref().unwrap_or("?"), d.reason);
    }
    println!(
        "not portable     {}{}",
        report.not_portable_count,
        if report.not_portable.is_empty() {
            ""
        } else {
            " (recorded by absolute path: outside the run dir and every mount; add a mount to record such files portably):"
        }
    );
    for (key, uri) in &report.not_portable {
        println!("  {key}: {uri}");
    }
    if report.not_portable_count > report.not_portable.len() as i64 {
        println!("  ... and {} more", report.not_portable_count - report.not_portable.len() as i64);
    }
    Ok(())
}

pub(super) fn run(cli: &Cli, cmd: &DbCommand) -> Result<()> {
    match cmd {
        DbCommand::Inspect { json } => inspect(cli, *json),
        DbCommand::Rebuild { run_dir, replace_all, yes } => {
            let catalog = cli.catalog()?;
            let root = match run_dir {
                Some(dir) => dir.clone(),
                None if catalog.location().duckdb_path().is_none() => {
                    return Err(CliError::Usage(format!(
                        "{} is a server catalog, with no folder of its own; pass --run-dir with the run directory \
                         whose snapshots to restore",
                        catalog.location()
                    )));
                }
                None => std::path::absolute(catalog.db_path())
                    .ok()
                    .and_then(|p| p.parent().map(PathBuf::from))
                    .unwrap_or_else(|| PathBuf::from(".")),
            };
            let report = match replace_all {
                true => {
                    let go = confirm(
                        *yes,
                        &format!(
                            "replace every run of {} with the snapshots under {}? Runs of other run dirs and hosts, \
                             and rows without a snapshot, are removed",
                            catalog.location(),
                            root.display()
                        ),
                        "db rebuild --replace-all removes every run it does not find a snapshot for; pass --yes to \
                         confirm, or leave out --replace-all to keep them",
                    )?;
                    if !go {
                        return Ok(());
                    }
                    catalog.rebuild_replacing_all(&root)?
                }
                false => catalog.rebuild(&root)?,
            };
            println!(
                "restored {} run(s) from snapshots under {} into {}",
                report.restored,
                root.display(),
                catalog.location()
            );
            if !report.removed.is_empty() {
                println!("removed {} run(s) whose snapshots are gone", report.removed.len());
            }
            if report.untouched > 0 {
                println!(
                    "left {} other run(s) as they were (other run dirs or hosts, or rows without a snapshot)",
                    report.untouched
                );
            }
            if report.indexed > 0 {
                println!("re-indexed {} cache entr(ies) missing from the signature index", report.indexed);
            }
            for d in &report.damaged {
                let line = d.line.map(|l| format!(":{l}")).unwrap_or_default();
                let run = d.run_id.as_deref().unwrap_or("unknown run");
                let fate = if report.lost.contains(d) {
                    "NOT restored"
                } else if d.run_id.as_ref().is_some_and(|id| report.kept.contains(id)) {
                    "its database rows are kept"
                } else {
                    "restored from another copy of its snapshot"
                };
                eprintln!("warning: {}{line} cannot be read ({}); {run}: {fate}", d.file.display(), d.reason);
            }
            match report.lost.len() {
                0 => Ok(()),
                n => Err(CliError::Incomplete(format!(
                    "{n} run(s) could not be restored from their damaged snapshots (listed above); restore those \
                     files from a backup and run `consist db rebuild` again"
                ))),
            }
        }
        DbCommand::Export { dir } => {
            std::fs::create_dir_all(dir).map_err(Error::io("creating export directory", dir))?;
            for path in cli.existing_catalog()?.export_parquet(dir)? {
                println!("{}", path.display());
            }
            Ok(())
        }
        DbCommand::Merge { other, conflict, dry_run, json } => {
            let source = Catalog::open(&CatalogLocation::parse(other)?, cli.timeout())?;
            let on_conflict = match conflict {
                ConflictArg::Error => OnConflict::Error,
                ConflictArg::Skip => OnConflict::Skip,
            };
            let catalog = cli.catalog()?;
            if crate::maintenance::same_file(catalog.db_path(), source.db_path()) {
                return Err(CliError::Usage(format!(
                    "{} is the database given by --db-path; merge another database into it",
                    source.db_path().display()
                )));
            }
            let report = catalog.merge(&source, on_conflict, *dry_run)?;
            if *json {
                print_json(&report);
            } else {
                print_merge(&report, catalog.location());
            }
            Ok(())
        }
        DbCommand::Purge(args) => purge(cli, args),
        DbCommand::Copy { from, to, json } => {
            let source = Catalog::open(&CatalogLocation::parse(from)?, cli.timeout())?;
            let target = Catalog::open(&CatalogLocation::parse(to)?, cli.timeout())?;
            if crate::maintenance::same_file(target.db_path(), source.db_path()) {
                return Err(CliError::Usage(format!("{from} and {to} are the same catalog; copy into another")));
            }
            target.store().init()?;
            let report = target.copy_from(&source)?;
            if *json {
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
        DbCommand::Sync => {
            let catalog = cli.existing_catalog()?;
            let written = catalog.sync()?;
            println!("{}: {written} pending run(s) written", catalog.location());
            Ok(())
        }
        DbCommand::FailZombies => {
            let marked = cli.existing_catalog()?.fail_zombies()?;
            println!("marked {} zombie run(s) failed", marked.len());
            for id in marked {
                println!("  {id}");
            }
            Ok(())
        }
        DbCommand::Compact => {
            let catalog = cli.existing_catalog()?;
            let (before, after) = catalog.store().compact()?;
            println!("{}: {before} -> {after} bytes", catalog.location());
            Ok(())
        }
    }
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

fn purge(cli: &Cli, args: &PurgeArgs) -> Result<()> {
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

/// Whether to go on: `yes`, or the user answers yes to `question` at a terminal (another answer
/// is `false`, and says nothing was changed). Without a terminal, a usage error saying `refusal`.
pub(super) fn confirm(yes: bool, question: &str, refusal: &str) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(refusal.to_owned()));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(Error::io("reading the answer from", "stdin"))?;
    let go = matches!(answer.trim(), "y" | "Y" | "yes");
    if !go {
        eprintln!("nothing was changed");
    }
    Ok(go)
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
