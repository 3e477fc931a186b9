//! `consist db ...`: inspecting and maintaining the provenance database.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use super::sql::TABLES;
use super::{Cli, print_json, table};
use crate::error::{Error, Result};
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
    /// Recreate the database content from the JSON snapshots (one transaction).
    Rebuild {
        /// Where to look for snapshots, recursively [default: the database's directory].
        #[arg(long)]
        run_dir: Option<PathBuf>,
    },
    /// Write every provenance table as a Parquet file into a directory.
    Export {
        /// The target directory (created if needed).
        dir: PathBuf,
    },
    /// Reclaim space: checkpoint the database file.
    Compact,
}

/// The output of `consist db inspect --json`.
#[derive(Debug, Serialize)]
struct Inspection {
    tables: Vec<(String, i64)>,
    /// Runs still `running` whose process, on this host, is gone: they will never finish.
    zombies: Vec<String>,
    /// Artifacts no run links to.
    orphan_artifacts: i64,
    /// Links whose run or artifact is missing.
    dangling_links: i64,
    /// Runs recorded in snapshots but not yet in the database.
    pending: usize,
}

fn inspect(cli: &Cli, json: bool) -> Result<()> {
    let store = cli.duckdb()?;
    let conn = store.connect_read_only()?;
    let one =
        |sql: &str| -> Result<i64> { conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map_err(|e| store.error(e)) };
    let mut tables = Vec::new();
    for t in TABLES {
        tables.push((t.to_owned(), one(&format!("SELECT count(*) FROM {t}"))?));
    }
    let orphan_artifacts = one(
        "SELECT count(*) FROM artifact a WHERE NOT EXISTS (SELECT 1 FROM run_artifact_link l WHERE l.artifact_id = a.id)",
    )?;
    let dangling_links =
        one("SELECT count(*) FROM run_artifact_link l WHERE NOT EXISTS (SELECT 1 FROM run r WHERE r.id = l.run_id)
           OR NOT EXISTS (SELECT 1 FROM artifact a WHERE a.id = l.artifact_id)")?;
    drop(conn);
    let catalog = cli.catalog();
    let running = catalog.find_runs(&RunQuery::default().status(RunStatus::Running))?;
    let zombies: Vec<String> = running.into_iter().filter(|r| r.is_orphaned()).map(|r| r.id).collect();
    let report = Inspection { tables, zombies, orphan_artifacts, dangling_links, pending: catalog.pending_count() };
    if json {
        print_json(&report);
        return Ok(());
    }
    let mut t = table::new(&["table", "rows"]);
    for (name, count) in &report.tables {
        t.add_row([name.clone(), count.to_string()]);
    }
    println!("{t}");
    println!("database         {}", cli.db_path().display());
    println!("pending runs     {}", report.pending);
    println!("orphan artifacts {}", report.orphan_artifacts);
    println!("dangling links   {}", report.dangling_links);
    println!(
        "zombie runs      {}{}",
        report.zombies.len(),
        if report.zombies.is_empty() { "" } else { " (status running, but their process on this host is gone):" }
    );
    for id in &report.zombies {
        println!("  {id}");
    }
    Ok(())
}

pub(super) fn run(cli: &Cli, cmd: &DbCommand) -> Result<()> {
    match cmd {
        DbCommand::Inspect { json } => inspect(cli, *json),
        DbCommand::Rebuild { run_dir } => {
            let catalog = cli.catalog();
            let root = match run_dir {
                Some(dir) => dir.clone(),
                None => std::path::absolute(catalog.db_path())
                    .ok()
                    .and_then(|p| p.parent().map(PathBuf::from))
                    .unwrap_or_else(|| PathBuf::from(".")),
            };
            let restored = catalog.rebuild(&root)?;
            println!(
                "restored {restored} run(s) from snapshots under {} into {}",
                root.display(),
                catalog.db_path().display()
            );
            Ok(())
        }
        DbCommand::Export { dir } => {
            std::fs::create_dir_all(dir).map_err(Error::io("creating export directory", dir))?;
            let store = cli.duckdb()?;
            let conn = store.connect_read_only()?;
            for t in TABLES {
                let path = dir.join(format!("{t}.parquet"));
                let sql = format!("COPY {t} TO '{}' (FORMAT parquet)", path.to_string_lossy().replace('\'', "''"));
                conn.execute_batch(&sql).map_err(|e| store.error(e))?;
                println!("{}", path.display());
            }
            Ok(())
        }
        DbCommand::Compact => {
            let store = cli.duckdb()?;
            let before = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
            let conn = store.connect()?;
            conn.execute_batch("FORCE CHECKPOINT;").map_err(|e| store.error(e))?;
            drop(conn);
            let after = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
            println!("{}: {before} -> {after} bytes", store.path().display());
            Ok(())
        }
    }
}
