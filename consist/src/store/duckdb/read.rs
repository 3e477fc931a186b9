//! Reading rows of the DuckDB catalog back into records: runs, artifacts, their links and whole
//! run records, a set of ids at a time.

use std::collections::HashMap;

use duckdb::{Connection, OptionalExt, params};

use super::sql;
use crate::artifact::Artifact;
use crate::run::{Run, RunRecord};
use crate::store::rows::{ArtifactRow, RunRow, config_id, parse_json, record_of};
use crate::store::schema;
use crate::store::{CatalogIdentity, Direction};

/// The catalog's identity, if this file has one yet (a file migration 2 has not reached, e.g.
/// one Python Consist wrote, has none until consist writes it).
pub(super) fn read_identity(conn: &Connection) -> duckdb::Result<Option<CatalogIdentity>> {
    match conn.query_row(schema::READ_IDENTITY, [], identity_from_row).optional() {
        Err(e) if missing_table(&e) => Ok(None),
        read => read,
    }
}

/// Whether a query failed because its table is not in the attached file. Tables are not looked
/// up in `duckdb_tables()` or `duckdb_databases()`: those scan every database attached to the
/// process's instance and keep them referenced meanwhile, so that another thread's DETACH
/// returns before the file is closed (checkpointed, its lock released), which then happens
/// later, on whichever thread lets go last.
pub(super) fn missing_table(error: &duckdb::Error) -> bool {
    error.to_string().contains("does not exist")
}

/// A row of [`schema::READ_IDENTITY`].
pub(super) fn identity_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<CatalogIdentity> {
    Ok(CatalogIdentity { id: row.get(0)?, purge_epoch: row.get(1)? })
}

pub(super) const RUN_COLUMNS: &str = r#"id, parent_run_id, status, model_name, description, "year", iteration, stage, phase,
    CAST(tags AS VARCHAR), config_hash, git_hash, input_hash, signature, CAST(meta AS VARCHAR),
    epoch_us(started_at), epoch_us(ended_at), epoch_us(created_at), epoch_us(updated_at)"#;

pub(super) fn run_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<Run> {
    Ok(RunRow {
        id: row.get(0)?,
        parent_run_id: row.get(1)?,
        status: row.get(2)?,
        model_name: row.get(3)?,
        description: row.get(4)?,
        year: row.get(5)?,
        iteration: row.get(6)?,
        stage: row.get(7)?,
        phase: row.get(8)?,
        tags: row.get(9)?,
        config_hash: row.get(10)?,
        git_hash: row.get(11)?,
        input_hash: row.get(12)?,
        signature: row.get(13)?,
        meta: row.get(14)?,
        started_us: row.get(15)?,
        ended_us: row.get(16)?,
        created_us: row.get(17)?,
        updated_us: row.get(18)?,
    }
    .into_run())
}

/// Columns of an artifact row (table alias `a`), read by [`artifact_from_row`].
pub(super) const ARTIFACT_COLUMNS: &str =
    r#"a.id, a."key", a.container_uri, a.driver, a.hash, a.run_id, CAST(a.meta AS VARCHAR), epoch_us(a.created_at)"#;

pub(super) fn artifact_from_row(row: &duckdb::Row<'_>, at: usize) -> duckdb::Result<Artifact> {
    Ok(ArtifactRow {
        id: row.get(at)?,
        key: row.get(at + 1)?,
        container_uri: row.get(at + 2)?,
        driver: row.get(at + 3)?,
        hash: row.get(at + 4)?,
        run_id: row.get(at + 5)?,
        meta: row.get(at + 6)?,
        created_us: row.get(at + 7)?,
    }
    .into_artifact())
}

pub(super) fn fetch_run(conn: &Connection, id: &str) -> duckdb::Result<Option<Run>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM run WHERE id = ?");
    conn.prepare_cached(&sql)?.query_row(params![id], run_from_row).optional()
}

/// An artifact by id or key (see [`Store::find_artifact`]).
pub(super) fn find_artifact_in(conn: &Connection, id_or_key: &str) -> duckdb::Result<Option<Artifact>> {
    // An exact id first, the common case: one index lookup, where planning and running the
    // union below (whose first branch it is) costs far more (Python's duckdb: 0.5 ms against
    // 3.5 ms on a 100-run catalog, 6 ms on a 100,000-run one).
    let exact = format!("SELECT {ARTIFACT_COLUMNS} FROM artifact a WHERE a.id = ?");
    let found =
        conn.prepare_cached(&exact)?.query_row(params![id_or_key], |row| artifact_from_row(row, 0)).optional()?;
    if found.is_some() {
        return Ok(found);
    }
    let sql = crate::store::sql::artifact_by_id_or_key(ARTIFACT_COLUMNS);
    conn.prepare_cached(&sql)?.query_row(params![id_or_key], |row| artifact_from_row(row, 0)).optional()
}

pub(super) fn fetch_run_artifacts(conn: &Connection, run_id: &str) -> duckdb::Result<Vec<(Direction, Artifact)>> {
    Ok(fetch_links(conn, &[run_id.to_owned()], None)?.into_iter().map(|(_, direction, a)| (direction, a)).collect())
}

/// `IN` a list of ids bound as one parameter ([`id_list`]), not written into the statement:
/// DuckDB parses and plans less. Reading the links of 100 runs took ~20% less on a 100-run
/// catalog, ~5% less on a 100,000-run one (Python's duckdb 2.0.1). Not for artifacts by id:
/// a written list finds them through the primary key, a bound one joins the whole table (12
/// against 17 ms for 200 artifacts at 100,000 runs).
const IN_LIST: &str = "IN (SELECT unnest(?::VARCHAR[]))";

/// The parameter of [`IN_LIST`].
fn id_list(ids: &[String]) -> duckdb::types::Value {
    duckdb::types::Value::List(ids.iter().map(|id| duckdb::types::Value::Text(id.clone())).collect())
}

/// The artifacts the runs `ids` read and wrote (only those of `direction` if given), as (run id,
/// direction, artifact), by run, direction, key, creation and id. The links first, then their
/// artifacts by id: a join of the link table with the whole artifact table cost ~40 ms for 100
/// runs of a 100k-run catalog, these two lookups ~17 ms.
pub(super) fn fetch_links(
    conn: &Connection,
    ids: &[String],
    direction: Option<Direction>,
) -> duckdb::Result<Vec<(String, Direction, Artifact)>> {
    let only = direction.map_or(String::new(), |d| format!(" AND direction = '{}'", d.as_str()));
    let mut stmt = conn.prepare(&format!(
        "SELECT run_id, direction, artifact_id FROM run_artifact_link WHERE run_id {IN_LIST}{only}"
    ))?;
    let links = stmt
        .query_map([id_list(ids)], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
        .collect::<duckdb::Result<Vec<_>>>()?;
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let ids: std::collections::BTreeSet<&str> = links.iter().map(|(_, _, id)| id.as_str()).collect();
    let ids = ids.into_iter().map(sql::quote_text).collect::<Vec<_>>().join(", ");
    let mut stmt = conn.prepare(&format!("SELECT {ARTIFACT_COLUMNS} FROM artifact a WHERE a.id IN ({ids})"))?;
    let artifacts: HashMap<String, Artifact> = stmt
        .query_map([], |row| artifact_from_row(row, 0))?
        .map(|a| a.map(|a| (a.id.clone(), a)))
        .collect::<duckdb::Result<_>>()?;
    let mut found: Vec<(String, Direction, Artifact)> = links
        .into_iter()
        .filter_map(|(run, direction, id)| {
            let direction = if direction == "input" { Direction::Input } else { Direction::Output };
            Some((run, direction, artifacts.get(&id)?.clone()))
        })
        .collect();
    found.sort_by(|(r1, d1, a1), (r2, d2, a2)| {
        (r1, d1.as_str(), &a1.key, a1.created_at, &a1.id).cmp(&(r2, d2.as_str(), &a2.key, a2.created_at, &a2.id))
    });
    Ok(found)
}

/// Runs with their config, facets and artifacts, as their snapshots would hold them, in the
/// order of `ids` (unknown ids are left out). A few set-wise queries per chunk of ids, not four
/// per run: merging 100k runs must not cost 400k queries.
pub(super) fn fetch_records(conn: &Connection, ids: &[String]) -> duckdb::Result<Vec<RunRecord>> {
    let mut records = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let list = chunk.iter().map(|id| sql::quote_text(id)).collect::<Vec<_>>().join(", ");
        let mut runs: std::collections::HashMap<String, RunRecord> = std::collections::HashMap::new();
        let mut stmt = conn.prepare(&format!("SELECT {RUN_COLUMNS} FROM run WHERE id IN ({list})"))?;
        for run in stmt.query_map([], run_from_row)? {
            let record = record_of(run?);
            runs.insert(record.run.id.clone(), record);
        }
        let mut stmt = conn.prepare(&format!(
            r#"SELECT r.id, CAST(f."json" AS VARCHAR) FROM run r JOIN config_facet f ON f.id = '{}' || r.config_hash
               WHERE r.id IN ({list})"#,
            config_id("")
        ))?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))? {
            let (id, config) = row?;
            if let Some(record) = runs.get_mut(&id) {
                record.config = parse_json(config);
            }
        }
        let mut stmt = conn.prepare(&format!(
            r#"SELECT run_id, "key", CAST(value_json AS VARCHAR) FROM run_config_kv WHERE run_id IN ({list})"#
        ))?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))? {
            let (id, key, value) = row?;
            if let Some(record) = runs.get_mut(&id) {
                record.facets.insert(key, parse_json(value));
            }
        }
        for (id, direction, artifact) in fetch_links(conn, chunk, None)? {
            if let Some(record) = runs.get_mut(&id) {
                match direction {
                    Direction::Input => record.inputs.push(artifact),
                    Direction::Output => record.outputs.push(artifact),
                }
            }
        }
        records.extend(chunk.iter().filter_map(|id| runs.remove(id)));
    }
    Ok(records)
}
