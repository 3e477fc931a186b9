//! `consist query`, `views`, `preview`: SQL over the provenance tables and over artifact files,
//! answered by the library ([`crate::Catalog::query`], [`crate::Catalog::artifact_views`],
//! [`crate::Catalog::preview`]); this file parses and prints.

use clap::Args;
use serde_json::Value as Json;

use super::error::Result;
use super::{Cli, print_json, table};
use crate::store::{QueryAccess, QueryRows};

/// Print rows as a table, or as `{"columns": [...], "rows": [[...]]}` with `--json`.
fn print_rows(rows: &QueryRows, json: bool) {
    if json {
        print_json(rows);
        return;
    }
    let header: Vec<&str> = rows.columns.iter().map(String::as_str).collect();
    let mut t = table::new(&header);
    for row in &rows.rows {
        t.add_row(row.iter().map(|v| match v {
            Json::String(s) => s.clone(),
            Json::Null => String::new(),
            other => other.to_string(),
        }));
    }
    println!("{t}");
    println!("{} row(s)", rows.rows.len());
}

/// Options of `consist query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL (read-only). Tables: run, artifact, run_artifact_link, artifact_content,
    /// config_facet, run_config_kv; plus one view per artifact key mentioned (see `views`).
    pub sql: String,
    /// Print `{"columns": [...], "rows": [[...]]}` instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Let the query read files other than the catalog's artifacts, attach other databases and
    /// change settings (`read_csv('...')`, `ATTACH`, `COPY ... TO`...). Without it, such a
    /// statement is refused. The catalog stays read-only either way.
    #[arg(long)]
    pub allow_external: bool,
}

pub(super) fn query(cli: &Cli, args: &QueryArgs) -> Result<()> {
    let access = if args.allow_external { QueryAccess::External } else { QueryAccess::CatalogOnly };
    let catalog = cli.catalog()?;
    print_rows(&catalog.query_with(&args.sql, access)?, args.json);
    let pending = catalog.pending_count();
    if pending > 0 {
        eprintln!(
            "note: {pending} run(s) still pending (e.g. cache hits of a process that only hit) are not in the \
             database yet; `consist db sync` writes them"
        );
    }
    Ok(())
}

/// Options of `consist views`.
#[derive(Debug, Args)]
pub struct ViewsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn views(cli: &Cli, args: &ViewsArgs) -> Result<()> {
    let infos = cli.catalog()?.artifact_views()?;
    if args.json {
        print_json(&infos);
        return Ok(());
    }
    let mut t = table::new(&["view", "artifact key", "files", "missing", "producing runs"]);
    for v in &infos {
        t.add_row([v.view.clone(), v.key.clone(), v.files.to_string(), v.missing.to_string(), v.runs.to_string()]);
    }
    println!("{t}");
    println!("use them in `consist query`, e.g. SELECT consist_iteration, avg(...) FROM <view> GROUP BY 1");
    Ok(())
}

/// Options of `consist preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// Artifact id, or an artifact key (its newest artifact).
    pub artifact: String,
    /// How many rows.
    #[arg(long, default_value_t = 10)]
    pub rows: usize,
    /// Print `{"columns": [...], "rows": [[...]]}` instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn preview(cli: &Cli, args: &PreviewArgs) -> Result<()> {
    let (artifact, rows) = cli.catalog()?.preview(&args.artifact, args.rows)?;
    if !args.json {
        println!("{} ({}) from {}", artifact.key, artifact.id, artifact.path.display());
    }
    print_rows(&rows, args.json);
    Ok(())
}
