//! Writing a batch of run records to DuckDB: one statement reads which of the batch's rows the
//! catalog holds already, then DuckDB's Appender adds the others straight to the provenance
//! tables. Before, the rows were staged in five temporary tables and merged by seven set-based
//! statements: ~25 ms of parsing, planning and hash tables per batch, however few its rows
//! (`Store::write` of one run into a 100,000-run catalog, attach and checkpoint included: 60 ms
//! then, 36 ms now). Row-by-row upserts into the indexed `run` table measured ~10 ms per run.
//!
//! The file is this process's alone while the transaction runs (DuckDB locks it; one thread of
//! the process at a time, see `turn.rs`), so what the read finds is what the appends meet.

use std::collections::HashSet;

use duckdb::types::{TimeUnit, Value};
use duckdb::{Transaction, params};

use crate::run::{RunRecord, RunStatus};
use crate::store::Direction;
use crate::store::rows::{
    CONFIG_SCHEMA, FACET_SCHEMA, artifact_meta_json, config_id, content_id, facet_id, last_per_run, run_meta_json, ts,
};

/// A run the catalog holds already takes the batch's newer state if it is still `running`, or if
/// `fail-zombies` marked it failed and it completed after all (its lease had lapsed, in an
/// outage); otherwise it stays as it is (records are immutable once terminal).
const UPDATE_RUN: &str = r#"
UPDATE run SET status = $1, meta = CAST($2 AS JSON), ended_at = CAST($3 AS TIMESTAMPTZ), updated_at = CAST($4 AS TIMESTAMPTZ)
  WHERE id = $5 AND (status = 'running' OR (status = 'failed' AND $1 = 'completed'
    AND coalesce(json_extract(meta, '$.failed_as_zombie')::BOOLEAN, false)))"#;

/// Which of the batch's keys the catalog holds, by kind (see [`Held::read`]): runs ($1),
/// artifacts ($2), artifact contents ($3) and config facets ($4), each bound as one list; links,
/// facet values and purges by run. Each lookup probes the table with the batch's keys in one
/// scan, so its cost is the same for one run or thousands (looking ids up one by one through the
/// primary key, as an `IN` list written into the statement does, costs ~25 us each). The lists
/// replaced a temporary table the keys were appended to: this read of a 100-run batch took
/// 3.1-3.3 ms instead of 4.5-4.7 (`bench_chain 100 1000`, its cold write).
const HELD: &str = r#"
SELECT 0, id, NULL FROM run WHERE id IN (SELECT unnest($1::VARCHAR[]))
UNION ALL SELECT 1, id, NULL FROM artifact WHERE id IN (SELECT unnest($2::VARCHAR[]))
UNION ALL SELECT 2, id, NULL FROM artifact_content WHERE id IN (SELECT unnest($3::VARCHAR[]))
UNION ALL SELECT 3, id, NULL FROM config_facet WHERE id IN (SELECT unnest($4::VARCHAR[]))
UNION ALL SELECT 4, run_id, artifact_id FROM run_artifact_link WHERE run_id IN (SELECT unnest($1::VARCHAR[]))
UNION ALL SELECT 5, run_id, "key" FROM run_config_kv WHERE run_id IN (SELECT unnest($1::VARCHAR[]))
UNION ALL SELECT 6, run_id, NULL FROM consist_purged WHERE run_id IN (SELECT unnest($1::VARCHAR[]))"#;

/// What the catalog holds of a batch's rows, by kind.
#[derive(Default)]
struct Held {
    runs: HashSet<String>,
    artifacts: HashSet<String>,
    contents: HashSet<String>,
    facets: HashSet<String>,
    links: HashSet<(String, String)>,
    kvs: HashSet<(String, String)>,
    purged: HashSet<String>,
}

impl Held {
    /// Read the rows the catalog holds of `records`: one statement ([`HELD`]).
    fn read(tx: &Transaction<'_>, records: &[Entry<'_>]) -> duckdb::Result<Held> {
        let (mut runs, mut artifacts, mut contents, mut facets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (record, facet) in records {
            runs.push(Value::Text(record.run.id.clone()));
            facets.push(Value::Text(config_id(&record.run.config_hash)));
            if let Some((facet_id, _)) = facet {
                facets.push(Value::Text(facet_id.clone()));
            }
            for a in record.inputs.iter().chain(&record.outputs) {
                artifacts.push(Value::Text(a.id.clone()));
                if let Some(hash) = &a.hash {
                    contents.push(Value::Text(content_id(hash, a.driver)));
                }
            }
        }
        let lists = [runs, artifacts, contents, facets].map(Value::List);
        let mut held = Held::default();
        let mut stmt = tx.prepare_cached(HELD)?;
        let mut rows = stmt.query(duckdb::params_from_iter(lists))?;
        while let Some(row) = rows.next()? {
            let (kind, id, other): (i32, String, Option<String>) = (row.get(0)?, row.get(1)?, row.get(2)?);
            match kind {
                0 => held.runs.insert(id),
                1 => held.artifacts.insert(id),
                2 => held.contents.insert(id),
                3 => held.facets.insert(id),
                4 => held.links.insert((id, other.unwrap_or_default())),
                5 => held.kvs.insert((id, other.unwrap_or_default())),
                _ => held.purged.insert(id),
            };
        }
        Ok(held)
    }
}

/// A record of the batch, with the `config_facet` id of its facet values and their JSON text
/// (`None` without facet values), serialized once for the read and the write.
type Entry<'a> = (&'a RunRecord, Option<(String, String)>);

/// `record` with its facet values' id and JSON.
fn entry(record: &RunRecord) -> Entry<'_> {
    let facet = (!record.facets.is_empty()).then(|| {
        let json = serde_json::to_string(&record.facets).unwrap_or_else(|_| "{}".into());
        (facet_id(&record.run.model_name, &json), json)
    });
    (record, facet)
}

/// A timestamp as the Appender takes it.
fn micros(t: &chrono::DateTime<chrono::Utc>) -> Value {
    Value::Timestamp(TimeUnit::Microsecond, t.timestamp_micros())
}

/// Write `records` within `tx` (the caller commits). A run recorded twice in the batch is
/// written in its last state; a run purged from the catalog is not written back (a host's queue,
/// a rebuild or an old tracker still running never resurrects it); rows the catalog holds
/// already are left as they are, except a run's state as [`UPDATE_RUN`] says.
pub(super) fn write(tx: &Transaction<'_>, records: &[RunRecord]) -> duckdb::Result<()> {
    let records: Vec<Entry<'_>> = last_per_run(records).into_iter().map(entry).collect();
    let mut held = Held::read(tx, &records)?;
    let records: Vec<Entry<'_>> = records.into_iter().filter(|(r, _)| !held.purged.contains(&r.run.id)).collect();
    write_runs(tx, &records, &held)?;
    write_artifacts(tx, &records, &mut held)?;
    write_facets(tx, &records, &mut held)
}

/// New runs appended; held ones updated where [`UPDATE_RUN`] lets them.
fn write_runs(tx: &Transaction<'_>, records: &[Entry<'_>], held: &Held) -> duckdb::Result<()> {
    let mut runs = tx.appender("run")?;
    for (record, _) in records {
        let run = &record.run;
        if held.runs.contains(&run.id) {
            if run.status != RunStatus::Running {
                tx.prepare_cached(UPDATE_RUN)?.execute(params![
                    run.status.as_str(),
                    run_meta_json(record),
                    run.ended_at.as_ref().map(ts),
                    ts(&run.updated_at),
                    run.id,
                ])?;
            }
            continue;
        }
        runs.append_row(params![
            run.id,
            run.parent_run_id,
            run.status.as_str(),
            run.model_name,
            run.description,
            run.year,
            run.iteration,
            run.stage,
            run.phase,
            serde_json::to_string(&run.tags).unwrap_or_else(|_| "[]".into()),
            run.config_hash,
            run.code_hash,
            run.input_hash,
            run.signature,
            run_meta_json(record),
            micros(&run.started_at),
            run.ended_at.as_ref().map(micros),
            micros(&run.created_at),
            micros(&run.updated_at),
        ])?;
    }
    runs.flush()
}

/// Artifacts, their content rows and the runs' links to them, each once.
fn write_artifacts(tx: &Transaction<'_>, records: &[Entry<'_>], held: &mut Held) -> duckdb::Result<()> {
    let mut artifacts = tx.appender("artifact")?;
    let mut contents = tx.appender("artifact_content")?;
    let mut links = tx.appender("run_artifact_link")?;
    for (record, _) in records {
        for (direction, list) in [(Direction::Input, &record.inputs), (Direction::Output, &record.outputs)] {
            for a in list {
                if held.links.insert((record.run.id.clone(), a.id.clone())) {
                    links.append_row(params![record.run.id, a.id, direction.as_str(), false])?;
                }
                let content = a.hash.as_ref().map(|h| (content_id(h, a.driver), h));
                if let Some((id, hash)) = &content
                    && held.contents.insert(id.clone())
                {
                    contents.append_row(params![id, hash, a.driver.as_str(), micros(&a.created_at), None::<String>])?;
                }
                if held.artifacts.insert(a.id.clone()) {
                    artifacts.append_row(params![
                        a.id,
                        a.key,
                        a.uri,
                        None::<String>,
                        None::<String>,
                        a.driver.as_str(),
                        a.hash,
                        content.as_ref().map(|(id, _)| id),
                        None::<String>,
                        a.run_id,
                        artifact_meta_json(a),
                        micros(&a.created_at),
                    ])?;
                }
            }
        }
    }
    contents.flush()?;
    artifacts.flush()?;
    links.flush()
}

/// Each run's full config (content-addressed by its hash: identical configs are stored once),
/// and its `facet_from` values, whole and one row per key.
fn write_facets(tx: &Transaction<'_>, records: &[Entry<'_>], held: &mut Held) -> duckdb::Result<()> {
    let mut facets = tx.appender("config_facet")?;
    let mut kvs = tx.appender("run_config_kv")?;
    for (record, facet) in records {
        let run = &record.run;
        let config = config_id(&run.config_hash);
        if held.facets.insert(config.clone()) {
            let json = serde_json::to_string(&record.config).unwrap_or_else(|_| "null".into());
            facets.append_row(params![
                config,
                run.model_name,
                CONFIG_SCHEMA,
                None::<String>,
                json,
                micros(&run.created_at)
            ])?;
        }
        let Some((facet_id, json)) = facet else { continue };
        if held.facets.insert(facet_id.clone()) {
            facets.append_row(params![
                facet_id,
                run.model_name,
                FACET_SCHEMA,
                None::<String>,
                json,
                micros(&run.created_at)
            ])?;
        }
        for (key, value) in &record.facets {
            if !held.kvs.insert((run.id.clone(), key.clone())) {
                continue;
            }
            let (value_type, text, num, flag) = crate::facet::typed(value);
            kvs.append_row(params![
                run.id,
                facet_id,
                run.model_name,
                key,
                value_type,
                text,
                num,
                flag,
                value.to_string(),
                micros(&run.created_at)
            ])?;
        }
    }
    facets.flush()?;
    kvs.flush()
}
