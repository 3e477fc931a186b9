//! Removing runs from DuckDB: their rows, their links, and whatever only they referenced.

use duckdb::Transaction;

use crate::artifact::Artifact;

/// Set up the purge: the runs to remove, the artifacts no remaining run links, and the config
/// and facet rows only those runs used (so nothing unrelated that happens to be unreferenced,
/// such as rows another tool wrote, is touched).
const PLAN: &str = r#"
CREATE OR REPLACE TEMP TABLE consist_purge_artifact AS
  SELECT DISTINCT l.artifact_id AS id FROM run_artifact_link l
  WHERE l.run_id IN (SELECT id FROM consist_purge_run)
    AND NOT EXISTS (SELECT 1 FROM run_artifact_link o
                    WHERE o.artifact_id = l.artifact_id AND o.run_id NOT IN (SELECT id FROM consist_purge_run));
CREATE OR REPLACE TEMP TABLE consist_purge_content AS
  SELECT DISTINCT content_id AS id FROM artifact
  WHERE id IN (SELECT id FROM consist_purge_artifact) AND content_id IS NOT NULL;
CREATE OR REPLACE TEMP TABLE consist_purge_facet AS
  SELECT DISTINCT 'config:' || config_hash AS id FROM run WHERE id IN (SELECT id FROM consist_purge_run)
  UNION SELECT DISTINCT facet_id FROM run_config_kv WHERE run_id IN (SELECT id FROM consist_purge_run);
"#;

/// Delete what the plan selected; shared rows go only when no remaining row refers to them.
const DELETE: &str = r#"
DELETE FROM run_artifact_link WHERE run_id IN (SELECT id FROM consist_purge_run);
DELETE FROM run_config_kv WHERE run_id IN (SELECT id FROM consist_purge_run);
DELETE FROM run WHERE id IN (SELECT id FROM consist_purge_run);
DELETE FROM artifact WHERE id IN (SELECT id FROM consist_purge_artifact);
DELETE FROM artifact_content c WHERE c.id IN (SELECT id FROM consist_purge_content)
  AND NOT EXISTS (SELECT 1 FROM artifact a WHERE a.content_id = c.id);
DELETE FROM config_facet f WHERE f.id IN (SELECT id FROM consist_purge_facet)
  AND NOT EXISTS (SELECT 1 FROM run r WHERE 'config:' || r.config_hash = f.id)
  AND NOT EXISTS (SELECT 1 FROM run_config_kv k WHERE k.facet_id = f.id);
"#;

/// Remove `run_ids` within `tx` (the caller commits or rolls back); returns the artifacts that
/// no remaining run links, which are removed with them.
pub(super) fn purge(tx: &Transaction<'_>, run_ids: &[String]) -> duckdb::Result<Vec<Artifact>> {
    tx.execute_batch("CREATE OR REPLACE TEMP TABLE consist_purge_run (id VARCHAR PRIMARY KEY);")?;
    {
        let mut ids = tx.appender("consist_purge_run")?;
        let mut seen = std::collections::HashSet::new();
        for id in run_ids.iter().filter(|id| seen.insert(id.as_str())) {
            ids.append_row([id])?;
        }
        ids.flush()?;
    }
    tx.execute_batch(PLAN)?;
    let sql = format!(
        r#"SELECT {} FROM artifact a WHERE a.id IN (SELECT id FROM consist_purge_artifact) ORDER BY a."key", a.id"#,
        super::ARTIFACT_COLUMNS
    );
    let orphans = {
        let mut stmt = tx.prepare(&sql)?;
        let rows = stmt.query_map([], |row| super::artifact_from_row(row, 0))?;
        rows.collect::<duckdb::Result<Vec<_>>>()?
    };
    tx.execute_batch(DELETE)?;
    Ok(orphans)
}
