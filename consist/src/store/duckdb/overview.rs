//! DuckDB queries for the catalog overview: summary, scenarios, integrity, validation, export.

use std::path::{Path, PathBuf};

use chrono::DateTime;
use duckdb::Connection;

use super::{ARTIFACT_COLUMNS, TABLES, artifact_from_row};
use crate::artifact::Artifact;
use crate::store::sql::INTEGRITY_CHECKS;
use crate::store::{CatalogSummary, ModelCount, ScenarioSummary, StoreIntegrity};

const HIT: &str = "coalesce(json_extract(meta, '$.cache_hit')::BOOLEAN, false)";
const SCENARIO: &str = "coalesce(json_extract_string(meta, '$.kind') = 'scenario', false)";

pub(super) fn summary(conn: &Connection) -> duckdb::Result<CatalogSummary> {
    let mut summary = conn.query_row(
        &format!(
            "SELECT count(*), count(*) FILTER (status = 'completed'), count(*) FILTER (status = 'failed'),
               count(*) FILTER (status = 'running'), count(*) FILTER ({HIT}),
               count(*) FILTER (status = 'completed' AND NOT {SCENARIO}), count(*) FILTER ({SCENARIO}),
               (SELECT count(*) FROM artifact), epoch_us(min(created_at)), epoch_us(max(created_at))
             FROM run"
        ),
        [],
        |r| {
            let completed_steps: i64 = r.get(5)?;
            let cache_hits: i64 = r.get(4)?;
            Ok(CatalogSummary {
                runs: r.get(0)?,
                completed: r.get(1)?,
                failed: r.get(2)?,
                running: r.get(3)?,
                cache_hits,
                cache_hit_ratio: (completed_steps > 0).then(|| cache_hits as f64 / completed_steps as f64),
                scenarios: r.get(6)?,
                artifacts: r.get(7)?,
                first_run: r.get::<_, Option<i64>>(8)?.and_then(DateTime::from_timestamp_micros),
                last_run: r.get::<_, Option<i64>>(9)?.and_then(DateTime::from_timestamp_micros),
                pending: 0,
                models: Vec::new(),
            })
        },
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT model_name, count(*), count(*) FILTER ({HIT}), count(*) FILTER (status = 'failed')
         FROM run GROUP BY model_name ORDER BY count(*) DESC, model_name"
    ))?;
    let models = stmt.query_map([], |r| {
        Ok(ModelCount { model: r.get(0)?, runs: r.get(1)?, cache_hits: r.get(2)?, failed: r.get(3)? })
    })?;
    summary.models = models.collect::<duckdb::Result<_>>()?;
    Ok(summary)
}

pub(super) fn scenarios(conn: &Connection, limit: usize) -> duckdb::Result<Vec<ScenarioSummary>> {
    let mut stmt = conn.prepare(
        "SELECT s.id, s.model_name, s.status, epoch_us(s.created_at),
           count(c.id), count(c.id) FILTER (coalesce(json_extract(c.meta, '$.cache_hit')::BOOLEAN, false)),
           max(c.iteration) + 1
         FROM run s LEFT JOIN run c ON c.parent_run_id = s.id
         WHERE json_extract_string(s.meta, '$.kind') = 'scenario'
         GROUP BY s.id, s.model_name, s.status, s.created_at ORDER BY s.created_at DESC LIMIT ?",
    )?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        Ok(ScenarioSummary {
            id: r.get(0)?,
            name: r.get(1)?,
            status: r.get(2)?,
            created_at: DateTime::from_timestamp_micros(r.get(3)?).unwrap_or_default(),
            runs: r.get(4)?,
            cache_hits: r.get(5)?,
            iterations: r.get(6)?,
        })
    })?;
    rows.collect()
}

pub(super) fn integrity(conn: &Connection) -> duckdb::Result<StoreIntegrity> {
    let one = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    let tables = TABLES
        .iter()
        .map(|t| Ok((t.to_string(), one(&format!("SELECT count(*) FROM {t}"))?)))
        .collect::<duckdb::Result<_>>()?;
    let [orphan_artifacts, dangling_links, missing_producers] = INTEGRITY_CHECKS;
    Ok(StoreIntegrity {
        tables,
        orphan_artifacts: one(orphan_artifacts)?,
        dangling_links: one(dangling_links)?,
        missing_producers: one(missing_producers)?,
    })
}

/// Artifacts written by a run, oldest first.
pub(super) fn produced_artifacts(conn: &Connection) -> duckdb::Result<Vec<Artifact>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ARTIFACT_COLUMNS} FROM artifact a WHERE a.run_id IS NOT NULL ORDER BY a.created_at, a.id"
    ))?;
    let rows = stmt.query_map([], |row| artifact_from_row(row, 0))?;
    rows.collect()
}

/// Every output link (see [`crate::store::Store::output_links`]).
pub(super) fn output_links(conn: &Connection) -> duckdb::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(crate::store::sql::OUTPUT_LINKS)?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

/// Copy every provenance table to `<dir>/<table>.parquet`; returns the files.
pub(super) fn export_parquet(conn: &Connection, dir: &Path) -> duckdb::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for t in TABLES {
        let path = dir.join(format!("{t}.parquet"));
        let sql = format!("COPY {t} TO {} (FORMAT parquet)", super::sql::quote_text(&path.to_string_lossy()));
        conn.execute_batch(&sql)?;
        files.push(path);
    }
    Ok(files)
}
