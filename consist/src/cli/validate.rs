//! `consist validate`: artifacts whose file is missing or whose bytes no longer match their hash.

use clap::Args;
use serde::Serialize;

use super::{Cli, print_json, table};
use crate::error::{Error, Result};

/// Options of `consist validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Only check that the files exist, not their content hashes (fast).
    #[arg(long)]
    pub exists_only: bool,
    /// Print JSON (the problems found) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One artifact that failed validation.
#[derive(Debug, Serialize)]
struct Problem {
    id: String,
    key: String,
    run_id: Option<String>,
    path: String,
    problem: &'static str,
}

/// Produced artifacts as (id, key, producing run, path, recorded hash).
type Row = (String, String, Option<String>, String, Option<String>);

/// The produced artifacts in the database, oldest first.
fn stored(cli: &Cli) -> Result<Vec<Row>> {
    let store = cli.duckdb()?;
    let conn = store.connect_read_only()?;
    let mut stmt = conn
        .prepare(
            r#"SELECT id, "key", run_id, json_extract_string(meta, '$.path'), hash FROM artifact
               WHERE run_id IS NOT NULL ORDER BY created_at"#,
        )
        .map_err(|e| store.error(e))?;
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            r.get::<_, Option<String>>(4)?,
        ))
    })
    .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
    .map_err(|e| store.error(e))
}

pub(super) fn run(cli: &Cli, args: &ValidateArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let mut rows = if catalog.db_path().exists() { stored(cli)? } else { Vec::new() };
    // Outputs of runs still pending (not yet in the database) are checked too.
    let mut seen: std::collections::HashSet<String> = rows.iter().map(|r| r.0.clone()).collect();
    for record in catalog.pending_records() {
        for a in record.outputs.into_iter().filter(|a| a.run_id.is_some()) {
            if seen.insert(a.id.clone()) {
                rows.push((a.id, a.key, a.run_id, a.path.to_string_lossy().into_owned(), a.hash));
            }
        }
    }
    let checked = rows.len();
    let mut problems = Vec::new();
    for (id, key, run_id, path, hash) in rows {
        let file = std::path::Path::new(&path);
        let problem = if !file.exists() {
            Some("missing")
        } else if args.exists_only {
            None
        } else {
            match (crate::filehash::hash_file(file), hash) {
                (Err(_), _) => Some("unreadable"),
                (Ok(actual), Some(recorded)) if actual != recorded => Some("modified"),
                _ => None,
            }
        };
        if let Some(problem) = problem {
            problems.push(Problem { id, key, run_id, path, problem });
        }
    }
    if args.json {
        print_json(&problems);
    } else if problems.is_empty() {
        println!(
            "all {checked} produced artifact(s) are present{}",
            if args.exists_only { "" } else { " and match their hashes" }
        );
    } else {
        let mut t = table::new(&["problem", "key", "artifact", "run", "path"]);
        for p in &problems {
            t.add_row([
                table::problem(p.problem),
                table::cell(&p.key),
                table::cell(&p.id),
                table::cell(p.run_id.clone().unwrap_or_default()),
                table::cell(&p.path),
            ]);
        }
        println!("{t}");
    }
    if problems.is_empty() { Ok(()) } else { Err(Error::Validation { failed: problems.len(), checked }) }
}
