//! Removing runs from DuckDB: their rows, their links, and whatever only they referenced; the
//! record of purged runs; a rebuild's replacement of the runs it read.

use std::collections::HashSet;

use duckdb::Transaction;

use crate::artifact::Artifact;
use crate::run::RunRecord;
use crate::store::sql::{FINISHED_AMONG, PATCH_META, PURGE_DELETE, PURGE_PLAN, PURGE_RECORD, RAISE_EPOCH};

/// Remove `run_ids` within `tx` (the caller commits or rolls back); returns the artifacts that
/// no remaining run links, which are removed with them.
pub(super) fn purge(tx: &Transaction<'_>, run_ids: &[String]) -> duckdb::Result<Vec<Artifact>> {
    let orphans = plan(tx, run_ids)?;
    tx.execute_batch(PURGE_RECORD)?;
    tx.execute_batch(PURGE_DELETE)?;
    Ok(orphans)
}

/// Set `key` in the `meta` of each run of `values` in one transaction (see
/// [`crate::store::Store::set_run_meta`]).
pub(super) fn set_run_meta(
    conn: &mut duckdb::Connection,
    key: &str,
    values: &[(String, Option<serde_json::Value>)],
    raise_epoch: bool,
) -> duckdb::Result<usize> {
    let tx = conn.transaction()?;
    let mut changed = 0;
    {
        let mut stmt = tx.prepare(PATCH_META)?;
        for (id, value) in values {
            let patch = serde_json::json!({ key: value.clone().unwrap_or(serde_json::Value::Null) });
            changed += stmt.execute(duckdb::params![patch.to_string(), id])?;
        }
    }
    if raise_epoch {
        tx.execute_batch(RAISE_EPOCH)?;
    }
    tx.commit()?;
    Ok(changed)
}

/// Replace the rows of `records`' runs with theirs and remove the runs `remove`, within `tx`:
/// what a rebuild does to the runs it read (nothing is recorded as purged).
pub(super) fn replace(tx: &Transaction<'_>, records: &[RunRecord], remove: &[String]) -> duckdb::Result<()> {
    let running: Vec<String> =
        records.iter().filter(|r| !r.run.status.is_terminal()).map(|r| super::sql::quote_text(&r.run.id)).collect();
    let finished: HashSet<String> = match running.is_empty() {
        true => HashSet::new(),
        false => {
            let mut stmt = tx.prepare(&format!("{FINISHED_AMONG}({})", running.join(", ")))?;
            stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<duckdb::Result<_>>()?
        }
    };
    let records: Vec<RunRecord> =
        records.iter().filter(|r| r.run.status.is_terminal() || !finished.contains(&r.run.id)).cloned().collect();
    let ids: Vec<String> = records.iter().map(|r| r.run.id.clone()).chain(remove.iter().cloned()).collect();
    plan(tx, &ids)?;
    tx.execute_batch(PURGE_DELETE)?;
    if !remove.is_empty() {
        tx.execute_batch(RAISE_EPOCH)?;
    }
    if !records.is_empty() {
        super::batch::write(tx, &records)?;
    }
    Ok(())
}

/// The runs recorded as purged.
pub(super) fn purged(conn: &duckdb::Connection) -> duckdb::Result<HashSet<String>> {
    let mut stmt = conn.prepare("SELECT run_id FROM consist_purged")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// Select what removing `run_ids` takes with it (the purge plan); returns the artifacts no
/// remaining run links.
fn plan(tx: &Transaction<'_>, run_ids: &[String]) -> duckdb::Result<Vec<Artifact>> {
    tx.execute_batch(
        "CREATE OR REPLACE TEMP TABLE consist_purge_run (id VARCHAR PRIMARY KEY);
         CREATE OR REPLACE TEMP TABLE consist_purge_artifact (id VARCHAR);
         CREATE OR REPLACE TEMP TABLE consist_purge_content (id VARCHAR);
         CREATE OR REPLACE TEMP TABLE consist_purge_facet (id VARCHAR);",
    )?;
    {
        let mut ids = tx.appender("consist_purge_run")?;
        let mut seen = std::collections::HashSet::new();
        for id in run_ids.iter().filter(|id| seen.insert(id.as_str())) {
            ids.append_row([id])?;
        }
        ids.flush()?;
    }
    tx.execute_batch(PURGE_PLAN)?;
    let sql = format!(
        r#"SELECT {} FROM artifact a WHERE a.id IN (SELECT id FROM consist_purge_artifact) ORDER BY a."key", a.id"#,
        super::ARTIFACT_COLUMNS
    );
    let orphans = {
        let mut stmt = tx.prepare(&sql)?;
        let rows = stmt.query_map([], |row| super::artifact_from_row(row, 0))?;
        rows.collect::<duckdb::Result<Vec<_>>>()?
    };
    Ok(orphans)
}
