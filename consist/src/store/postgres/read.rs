//! Reading a PostgreSQL catalog: runs and artifacts from their rows, whole records, lineage,
//! the overview counts, purges, and read-only SQL with its rows as JSON.

use std::collections::HashMap;

use chrono::DateTime;
use postgres::{GenericClient, Row, Transaction};

use crate::artifact::Artifact;
use crate::error::{Error, Result};
use crate::run::{Run, RunRecord};
use crate::store::rows::{ArtifactRow, RunRow, config_id, parse_json, record_of};
use crate::store::{CatalogSummary, Direction, ModelCount, QueryRows, ScenarioSummary, StoreIntegrity, TABLES};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// Microseconds since the epoch of a timestamp column, exactly (`extract` is `numeric`).
macro_rules! micros {
    ($column:literal) => {
        concat!("(extract(epoch FROM ", $column, ") * 1000000)::int8")
    };
}

/// Columns of a run row, read by [`run_from_row`].
pub(super) const RUN_COLUMNS: &str = concat!(
    r#"id, parent_run_id, status, model_name, description, "year", iteration, stage, phase, tags::text,
    config_hash, git_hash, input_hash, signature, meta::text, "#,
    micros!("started_at"),
    ", ",
    micros!("ended_at"),
    ", ",
    micros!("created_at"),
    ", ",
    micros!("updated_at")
);

/// Columns of an artifact row (table alias `a`), read by [`artifact_from_row`].
pub(super) const ARTIFACT_COLUMNS: &str =
    concat!(r#"a.id, a."key", a.container_uri, a.driver, a.hash, a.run_id, a.meta::text, "#, micros!("a.created_at"));

pub(super) fn run_from_row(row: &Row) -> Run {
    RunRow {
        id: row.get(0),
        parent_run_id: row.get(1),
        status: row.get(2),
        model_name: row.get(3),
        description: row.get(4),
        year: row.get(5),
        iteration: row.get(6),
        stage: row.get(7),
        phase: row.get(8),
        tags: row.get(9),
        config_hash: row.get(10),
        git_hash: row.get(11),
        input_hash: row.get(12),
        signature: row.get(13),
        meta: row.get(14),
        started_us: row.get(15),
        ended_us: row.get(16),
        created_us: row.get(17),
        updated_us: row.get(18),
    }
    .into_run()
}

pub(super) fn artifact_from_row(row: &Row, at: usize) -> Artifact {
    ArtifactRow {
        id: row.get(at),
        key: row.get(at + 1),
        container_uri: row.get(at + 2),
        driver: row.get(at + 3),
        hash: row.get(at + 4),
        run_id: row.get(at + 5),
        meta: row.get(at + 6),
        created_us: row.get(at + 7),
    }
    .into_artifact()
}

pub(super) fn run_artifacts(client: &mut impl GenericClient, run_id: &str) -> PgResult<Vec<(Direction, Artifact)>> {
    let sql = format!(
        r#"SELECT l.direction, {ARTIFACT_COLUMNS} FROM run_artifact_link l JOIN artifact a ON a.id = l.artifact_id
           WHERE l.run_id = $1 ORDER BY l.direction, a."key", a.created_at, a.id"#
    );
    Ok(client.query(&sql, &[&run_id])?.iter().map(|row| (direction(row.get(0)), artifact_from_row(row, 1))).collect())
}

fn direction(text: &str) -> Direction {
    if text == "input" { Direction::Input } else { Direction::Output }
}

/// Runs with their config, facets and artifacts, as their snapshots would hold them, in the
/// order of `ids` (unknown ids are left out): four set-wise queries per chunk of ids.
pub(super) fn fetch_records(client: &mut impl GenericClient, ids: &[String]) -> PgResult<Vec<RunRecord>> {
    let mut records = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let chunk = chunk.to_vec();
        let mut runs: HashMap<String, RunRecord> = HashMap::new();
        for row in client.query(&format!("SELECT {RUN_COLUMNS} FROM run WHERE id = ANY($1)"), &[&chunk])? {
            let record = record_of(run_from_row(&row));
            runs.insert(record.run.id.clone(), record);
        }
        let sql = r#"SELECT r.id, f."json"::text FROM run r JOIN config_facet f ON f.id = $2 || r.config_hash
                     WHERE r.id = ANY($1)"#;
        for row in client.query(sql, &[&chunk, &config_id("")])? {
            if let Some(record) = runs.get_mut(row.get::<_, &str>(0)) {
                record.config = parse_json(row.get(1));
            }
        }
        let sql = r#"SELECT run_id, "key", value_json::text FROM run_config_kv WHERE run_id = ANY($1)"#;
        for row in client.query(sql, &[&chunk])? {
            if let Some(record) = runs.get_mut(row.get::<_, &str>(0)) {
                record.facets.insert(row.get(1), parse_json(row.get(2)));
            }
        }
        let sql = format!(
            r#"SELECT l.run_id, l.direction, {ARTIFACT_COLUMNS} FROM run_artifact_link l JOIN artifact a ON a.id = l.artifact_id
               WHERE l.run_id = ANY($1) ORDER BY l.run_id, l.direction, a."key", a.created_at, a.id"#
        );
        for row in client.query(&sql, &[&chunk])? {
            if let Some(record) = runs.get_mut(row.get::<_, &str>(0)) {
                let artifact = artifact_from_row(&row, 2);
                match direction(row.get(1)) {
                    Direction::Input => record.inputs.push(artifact),
                    Direction::Output => record.outputs.push(artifact),
                }
            }
        }
        records.extend(chunk.iter().filter_map(|id| runs.remove(id)));
    }
    Ok(records)
}

/// The runs in the lineage of artifact `artifact_id` (see [`crate::store::sql::lineage_runs`]) and
/// their inputs as (run id, artifact): two queries whatever the depth.
pub(super) fn lineage(
    client: &mut impl GenericClient,
    artifact_id: &str,
    max_depth: usize,
) -> PgResult<crate::store::LineageRows> {
    let up = crate::store::sql::lineage_runs("$1", max_depth);
    let runs = format!("{up} SELECT {RUN_COLUMNS} FROM run WHERE id IN (SELECT run_id FROM up)");
    let runs = client.query(&runs, &[&artifact_id])?.iter().map(run_from_row).collect();
    let inputs = format!(
        r#"{up} SELECT l.run_id, {ARTIFACT_COLUMNS} FROM run_artifact_link l JOIN artifact a ON a.id = l.artifact_id
           WHERE l.direction = 'input' AND l.run_id IN (SELECT run_id FROM up)
           ORDER BY l.run_id, a."key", a.created_at, a.id"#
    );
    let inputs =
        client.query(&inputs, &[&artifact_id])?.iter().map(|row| (row.get(0), artifact_from_row(row, 1))).collect();
    Ok((runs, inputs))
}

/// Remove `run_ids` within `tx` (the caller commits or rolls back); returns the artifacts no
/// remaining run links, removed with them. The plan is the DuckDB store's, in temporary tables
/// dropped at the end of the transaction.
pub(super) fn purge(tx: &mut Transaction<'_>, run_ids: &[String]) -> PgResult<Vec<Artifact>> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&super::PURGE_LOCK])?;
    let orphans = plan_removal(tx, run_ids)?;
    tx.batch_execute(crate::store::sql::PURGE_RECORD)?;
    tx.batch_execute(crate::store::sql::PURGE_DELETE)?;
    Ok(orphans)
}

/// Select what removing `run_ids` takes with it (the purge plan, in temporary tables dropped at
/// commit); returns the artifacts no remaining run links.
pub(super) fn plan_removal(tx: &mut Transaction<'_>, run_ids: &[String]) -> PgResult<Vec<Artifact>> {
    tx.batch_execute(
        r#"CREATE TEMP TABLE consist_purge_run (id VARCHAR PRIMARY KEY) ON COMMIT DROP;
        CREATE TEMP TABLE consist_purge_artifact (id VARCHAR) ON COMMIT DROP;
        CREATE TEMP TABLE consist_purge_content (id VARCHAR) ON COMMIT DROP;
        CREATE TEMP TABLE consist_purge_facet (id VARCHAR) ON COMMIT DROP;"#,
    )?;
    tx.execute("INSERT INTO consist_purge_run SELECT DISTINCT unnest($1::text[])", &[&run_ids])?;
    tx.batch_execute(crate::store::sql::PURGE_PLAN)?;
    let sql = format!(
        r#"SELECT {ARTIFACT_COLUMNS} FROM artifact a WHERE a.id IN (SELECT id FROM consist_purge_artifact)
           ORDER BY a."key", a.id"#
    );
    Ok(tx.query(&sql, &[])?.iter().map(|row| artifact_from_row(row, 0)).collect())
}

/// The summary's counts per model in one pass over `run`, reading each run's two flags from its
/// `meta` once (`->>` on a `json` column parses the text at every use; not cast to `jsonb`, which
/// refuses some texts `json` holds): runs, completed, failed, running, hits, completed steps (not
/// scenario headers), scenario headers, first and last creation in microseconds (converted once
/// per model, after `min`/`max`: per run, the conversion was ~15 ms of ~90 at 100,000 runs).
const SUMMARY_BY_MODEL: &str = concat!(
    "SELECT model_name, count(*), count(*) FILTER (WHERE status = 'completed'),
    count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE hit),
    count(*) FILTER (WHERE status = 'completed' AND NOT scenario), count(*) FILTER (WHERE scenario),
    (extract(epoch FROM min(created_at)) * 1000000)::int8, (extract(epoch FROM max(created_at)) * 1000000)::int8
  FROM (SELECT model_name, status, created_at, coalesce((",
    pg_meta!(""),
    "->>'cache_hit')::boolean, false) AS hit, coalesce(",
    pg_meta!(""),
    "->>'kind' = 'scenario', false) AS scenario FROM run) flags
  GROUP BY model_name ORDER BY count(*) DESC, model_name"
);

pub(super) fn summary(client: &mut impl GenericClient) -> PgResult<CatalogSummary> {
    let mut summary = CatalogSummary::default();
    let (mut completed_steps, mut first, mut last) = (0i64, None::<i64>, None::<i64>);
    for row in client.query(SUMMARY_BY_MODEL, &[])? {
        let count = |i: usize| row.get::<_, i64>(i);
        summary.models.push(ModelCount { model: row.get(0), runs: count(1), cache_hits: count(5), failed: count(3) });
        summary.runs += count(1);
        summary.completed += count(2);
        summary.failed += count(3);
        summary.running += count(4);
        summary.cache_hits += count(5);
        completed_steps += count(6);
        summary.scenarios += count(7);
        let (earliest, latest): (Option<i64>, Option<i64>) = (row.get(8), row.get(9));
        first = match (first, earliest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        last = last.max(latest);
    }
    summary.artifacts = client.query_one("SELECT count(*) FROM artifact", &[])?.get(0);
    summary.cache_hit_ratio = (completed_steps > 0).then(|| summary.cache_hits as f64 / completed_steps as f64);
    summary.first_run = first.and_then(DateTime::from_timestamp_micros);
    summary.last_run = last.and_then(DateTime::from_timestamp_micros);
    Ok(summary)
}

pub(super) fn scenarios(client: &mut impl GenericClient, limit: usize) -> PgResult<Vec<ScenarioSummary>> {
    let sql = format!(
        "SELECT s.id, s.model_name, s.status, {},
           count(c.id), count(c.id) FILTER (WHERE coalesce(({}->>'cache_hit')::boolean, false)),
           (max(c.iteration) + 1)::int8
         FROM run s LEFT JOIN run c ON c.parent_run_id = s.id
         WHERE {}->>'kind' = 'scenario'
         GROUP BY s.id, s.model_name, s.status, s.created_at ORDER BY s.created_at DESC LIMIT $1",
        micros!("s.created_at"),
        pg_meta!("c."),
        pg_meta!("s."),
    );
    let rows = client.query(&sql, &[&i64::try_from(limit).unwrap_or(i64::MAX)])?;
    Ok(rows
        .iter()
        .map(|r| ScenarioSummary {
            id: r.get(0),
            name: r.get(1),
            status: r.get(2),
            created_at: DateTime::from_timestamp_micros(r.get(3)).unwrap_or_default(),
            runs: r.get(4),
            cache_hits: r.get(5),
            iterations: r.get(6),
        })
        .collect())
}

pub(super) fn integrity(client: &mut impl GenericClient) -> PgResult<StoreIntegrity> {
    let mut one = |sql: &str| -> PgResult<i64> { Ok(client.query_one(sql, &[])?.get(0)) };
    let mut tables = Vec::new();
    for t in TABLES {
        tables.push((t.to_string(), one(&format!("SELECT count(*) FROM {t}"))?));
    }
    let [orphan_artifacts, dangling_links, missing_producers] = crate::store::sql::INTEGRITY_CHECKS;
    Ok(StoreIntegrity {
        tables,
        orphan_artifacts: one(orphan_artifacts)?,
        dangling_links: one(dangling_links)?,
        missing_producers: one(missing_producers)?,
    })
}

/// Run `sql` in a read-only transaction (rolled back after) and return its rows as JSON:
/// PostgreSQL refuses any write, and `row_to_json` types every value. The statement must be one
/// query that returns rows.
pub(super) fn query(client: &mut postgres::Client, sql: &str) -> Result<QueryRows> {
    let failed = |e: postgres::Error| {
        let message = super::describe(&e);
        let reason = if e.code().is_some_and(|c| c.code() == "25006") {
            format!("queries are read-only and this statement writes: {message}")
        } else {
            format!("the query failed: {message}")
        };
        Error::Query { reason }
    };
    let sql = sql.trim().trim_end_matches(';').trim_end();
    let mut tx = client.build_transaction().read_only(true).start().map_err(failed)?;
    let statement = tx.prepare(sql).map_err(failed)?;
    let columns: Vec<String> = statement.columns().iter().map(|c| c.name().to_owned()).collect();
    if columns.is_empty() {
        return Err(Error::Query {
            reason: "queries are read-only and this statement returns no rows; write a SELECT".into(),
        });
    }
    let wrapped = format!("SELECT row_to_json(consist_query)::text FROM ({sql}) AS consist_query");
    let rows = tx.query(&wrapped, &[]).map_err(failed)?;
    tx.rollback().map_err(failed)?;
    let rows = rows
        .iter()
        .map(|row| {
            let object = match parse_json(row.get(0)) {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            columns.iter().map(|c| object.get(c).cloned().unwrap_or(serde_json::Value::Null)).collect()
        })
        .collect();
    Ok(QueryRows { columns, rows })
}
