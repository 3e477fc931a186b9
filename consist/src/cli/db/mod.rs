//! `consist db ...`: inspecting and maintaining the provenance database, one file per command
//! that decides anything (`inspect`, `rebuild`, `merge` and `copy`, `purge`, `gc` and `pin`); the library does
//! the work, these files parse, confirm and print.

pub(super) mod gc;
mod inspect;
mod merge;
mod purge;
mod rebuild;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::Cli;
use super::error::{CliError, Result};
use crate::error::Error;

pub use purge::PurgeArgs;

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
    /// Keep the cache within bounds: free the output files of the least recently used runs
    /// (executed or hit), keeping every record, pinned runs (`consist pin`), tagged ones
    /// (--keep-tag), running scenarios' and files other runs link. A later call with an evicted
    /// run's signature executes again.
    Gc(gc::GcArgs),
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

pub(super) fn run(cli: &Cli, cmd: &DbCommand) -> Result<()> {
    match cmd {
        DbCommand::Inspect { json } => inspect::run(cli, *json),
        DbCommand::Rebuild { run_dir, replace_all, yes } => rebuild::run(cli, run_dir.as_deref(), *replace_all, *yes),
        DbCommand::Merge { other, conflict, dry_run, json } => merge::merge(cli, other, *conflict, *dry_run, *json),
        DbCommand::Copy { from, to, json } => merge::copy(cli, from, to, *json),
        DbCommand::Purge(args) => purge::run(cli, args),
        DbCommand::Gc(args) => gc::run(cli, args),
        DbCommand::Export { dir } => {
            std::fs::create_dir_all(dir).map_err(Error::io("creating export directory", dir))?;
            for path in cli.existing_catalog()?.export_parquet(dir)? {
                println!("{}", path.display());
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
