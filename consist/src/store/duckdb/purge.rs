//! Removing runs from DuckDB: their rows, their links, and whatever only they referenced.

use duckdb::Transaction;

use crate::artifact::Artifact;
use crate::store::sql::{PURGE_DELETE, PURGE_PLAN};

/// Remove `run_ids` within `tx` (the caller commits or rolls back); returns the artifacts that
/// no remaining run links, which are removed with them.
pub(super) fn purge(tx: &Transaction<'_>, run_ids: &[String]) -> duckdb::Result<Vec<Artifact>> {
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
    tx.execute_batch(PURGE_DELETE)?;
    Ok(orphans)
}
