//! Writing a batch of run records to PostgreSQL: one transaction, one statement per table. Each
//! table's rows travel as parallel arrays (`unnest($1::text[], ..)`), are staged in temporary
//! tables dropped at commit, and merged with `ON CONFLICT DO NOTHING`, so processes on many hosts
//! writing the same records at once never fail on each other's rows.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use postgres::Transaction;
use postgres::types::ToSql;

use crate::run::RunRecord;
use crate::store::Direction;
use crate::store::rows::{
    CONFIG_SCHEMA, FACET_SCHEMA, artifact_meta_json, config_id, content_id, facet_id, last_per_run, run_meta_json, ts,
};

/// Staging tables, gone at commit (or rollback).
const STAGE: &str = r#"
CREATE TEMP TABLE consist_stage_run (id VARCHAR, parent_run_id VARCHAR, status VARCHAR, model_name VARCHAR,
    description VARCHAR, "year" INTEGER, iteration INTEGER, stage VARCHAR, phase VARCHAR, tags VARCHAR,
    config_hash VARCHAR, git_hash VARCHAR, input_hash VARCHAR, signature VARCHAR, meta VARCHAR, started_at VARCHAR,
    ended_at VARCHAR, created_at VARCHAR, updated_at VARCHAR) ON COMMIT DROP;
CREATE TEMP TABLE consist_stage_artifact (id VARCHAR, "key" VARCHAR, container_uri VARCHAR, driver VARCHAR,
    hash VARCHAR, content_id VARCHAR, run_id VARCHAR, meta VARCHAR, created_at VARCHAR) ON COMMIT DROP;
CREATE TEMP TABLE consist_stage_link (run_id VARCHAR, artifact_id VARCHAR, direction VARCHAR) ON COMMIT DROP;
CREATE TEMP TABLE consist_stage_facet (id VARCHAR, namespace VARCHAR, schema_name VARCHAR, "json" VARCHAR,
    created_at VARCHAR) ON COMMIT DROP;
CREATE TEMP TABLE consist_stage_kv (run_id VARCHAR, facet_id VARCHAR, namespace VARCHAR, "key" VARCHAR,
    value_type VARCHAR, value_str VARCHAR, value_num DOUBLE PRECISION, value_bool BOOLEAN, value_json VARCHAR,
    created_at VARCHAR) ON COMMIT DROP;
"#;

/// Merge staged rows: runs still `running` take their newer state, as does a run `fail-zombies`
/// marked failed that completed after all (its lease had lapsed, in an outage); everything else
/// is inserted only if absent (records are immutable once terminal). Rows go in key order, so
/// concurrent writers of overlapping batches wait for each other instead of deadlocking.
const MERGE: &str = concat!(
    r#"
UPDATE run SET status = s.status, meta = CAST(s.meta AS JSON), ended_at = CAST(s.ended_at AS TIMESTAMPTZ),
    updated_at = CAST(s.updated_at AS TIMESTAMPTZ)
  FROM consist_stage_run s
  WHERE run.id = s.id AND s.status <> 'running'
    AND (run.status = 'running' OR (run.status = 'failed' AND s.status = 'completed' AND coalesce(("#,
    pg_meta!("run."),
    r#"->>'failed_as_zombie')::boolean, false)));
INSERT INTO run
  SELECT DISTINCT ON (id) id, parent_run_id, status, model_name, description, "year", iteration, stage, phase,
    CAST(tags AS JSON), config_hash, git_hash, input_hash, signature, CAST(meta AS JSON),
    CAST(started_at AS TIMESTAMPTZ), CAST(ended_at AS TIMESTAMPTZ), CAST(created_at AS TIMESTAMPTZ),
    CAST(updated_at AS TIMESTAMPTZ)
  FROM consist_stage_run ORDER BY id ON CONFLICT DO NOTHING;
INSERT INTO artifact_content
  SELECT DISTINCT ON (content_id) content_id, hash, driver, CAST(created_at AS TIMESTAMPTZ), NULL
  FROM consist_stage_artifact WHERE content_id IS NOT NULL ORDER BY content_id ON CONFLICT DO NOTHING;
INSERT INTO artifact
  SELECT DISTINCT ON (id) id, "key", container_uri, NULL, NULL, driver, hash, content_id, NULL, run_id,
    CAST(meta AS JSON), CAST(created_at AS TIMESTAMPTZ)
  FROM consist_stage_artifact ORDER BY id ON CONFLICT DO NOTHING;
INSERT INTO run_artifact_link
  SELECT DISTINCT ON (run_id, artifact_id) run_id, artifact_id, direction, false
  FROM consist_stage_link ORDER BY run_id, artifact_id ON CONFLICT DO NOTHING;
INSERT INTO config_facet
  SELECT DISTINCT ON (id) id, namespace, schema_name, NULL, CAST("json" AS JSON), CAST(created_at AS TIMESTAMPTZ)
  FROM consist_stage_facet ORDER BY id ON CONFLICT DO NOTHING;
INSERT INTO run_config_kv
  SELECT DISTINCT ON (run_id, "key") run_id, facet_id, namespace, "key", value_type, value_str, value_num,
    value_bool, CAST(value_json AS JSON), CAST(created_at AS TIMESTAMPTZ)
  FROM consist_stage_kv ORDER BY run_id, "key" ON CONFLICT DO NOTHING;
"#
);

type Texts = Vec<Option<String>>;

/// Columns of one staging table, as arrays; one `INSERT .. SELECT * FROM unnest(..)` fills it.
struct Columns {
    table: &'static str,
    /// The array type of each column (`text[]`, `int4[]`...).
    types: &'static [&'static str],
    values: Vec<Box<dyn ToSql + Sync>>,
}

impl Columns {
    fn insert(&self, tx: &mut Transaction<'_>) -> Result<(), postgres::Error> {
        let args: Vec<String> = self.types.iter().enumerate().map(|(i, t)| format!("${}::{t}", i + 1)).collect();
        let sql = format!("INSERT INTO {} SELECT * FROM unnest({})", self.table, args.join(", "));
        let params: Vec<&(dyn ToSql + Sync)> = self.values.iter().map(|v| v.as_ref()).collect();
        tx.execute(&sql, &params).map(|_| ())
    }
}

fn texts(n: usize) -> Vec<Texts> {
    (0..n).map(|_| Vec::new()).collect()
}

fn boxed(columns: Vec<Texts>) -> Vec<Box<dyn ToSql + Sync>> {
    columns.into_iter().map(|c| Box::new(c) as Box<dyn ToSql + Sync>).collect()
}

/// `records`, with each NUL character in their text replaced by U+FFFD (and a warning): PostgreSQL's
/// text cannot hold one, and its JSON functions (`->>`, `json_each`, `jsonb`) refuse a document
/// with a `\u0000` anywhere in it, so one run holding one would fail every summary and filter
/// of the catalog. The runs' snapshots keep the text as it was.
fn without_nul(records: &[RunRecord]) -> Cow<'_, [RunRecord]> {
    let scrubbed: Vec<Option<RunRecord>> = records.iter().map(scrubbed).collect();
    if scrubbed.iter().all(Option::is_none) {
        return Cow::Borrowed(records);
    }
    Cow::Owned(
        records.iter().zip(scrubbed).map(|(record, scrubbed)| scrubbed.unwrap_or_else(|| record.clone())).collect(),
    )
}

/// `record` with U+FFFD for each NUL character in its text, with a warning; `None` if it has none.
fn scrubbed(record: &RunRecord) -> Option<RunRecord> {
    // A NUL is always escaped in JSON text: a record without `\u0000` in its text has none.
    if !serde_json::to_string(record).is_ok_and(|text| text.contains("\\u0000")) {
        return None;
    }
    /// Replace the NULs of `value`'s strings and keys; whether there were any.
    fn scrub(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(s) if s.contains('\0') => {
                *s = s.replace('\0', "\u{FFFD}");
                true
            }
            serde_json::Value::Array(items) => items.iter_mut().map(scrub).fold(false, |a, b| a | b),
            serde_json::Value::Object(map) => {
                let keys: Vec<String> = map.keys().filter(|k| k.contains('\0')).cloned().collect();
                for key in &keys {
                    if let Some(v) = map.remove(key) {
                        map.insert(key.replace('\0', "\u{FFFD}"), v);
                    }
                }
                map.values_mut().map(scrub).fold(!keys.is_empty(), |a, b| a | b)
            }
            _ => false,
        }
    }
    let mut value = serde_json::to_value(record).ok()?;
    if !scrub(&mut value) {
        return None;
    }
    let scrubbed = serde_json::from_value(value).ok()?;
    tracing::warn!(run = %record.run.id, "a NUL character in this run's text is written to PostgreSQL as U+FFFD (PostgreSQL cannot hold one); its snapshot keeps it");
    Some(scrubbed)
}

/// Write `records` within `tx` (the caller commits), each run in its last state ([`last_per_run`]).
pub(super) fn write(tx: &mut Transaction<'_>, records: &[RunRecord]) -> Result<(), postgres::Error> {
    // Shared with other writers, exclusive to a purge (see `PURGE_LOCK`).
    tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&super::PURGE_LOCK])?;
    tx.batch_execute(STAGE)?;
    let records = without_nul(records);
    let records = last_per_run(&records);
    let records = records.as_slice();
    let (artifacts, links) = artifacts_and_links(records);
    for columns in [runs(records), artifacts, links] {
        columns.insert(tx)?;
    }
    for columns in facets(records) {
        columns.insert(tx)?;
    }
    tx.batch_execute(crate::store::sql::DROP_PURGED)?;
    tx.batch_execute(MERGE)
}

/// Insert the run rows of runs that just started, in one statement (the finished record brings
/// the rest): every host of a shared catalog sees a run while it executes.
pub(super) fn write_started(
    client: &mut impl postgres::GenericClient,
    records: &[RunRecord],
) -> Result<(), postgres::Error> {
    let columns = runs(&last_per_run(&without_nul(records)));
    let args: Vec<String> = columns.types.iter().enumerate().map(|(i, t)| format!("${}::{t}", i + 1)).collect();
    let sql = format!(
        r#"INSERT INTO run SELECT id, parent_run_id, status, model_name, description, "year", iteration, stage, phase,
             CAST(tags AS JSON), config_hash, git_hash, input_hash, signature, CAST(meta AS JSON),
             CAST(started_at AS TIMESTAMPTZ), CAST(ended_at AS TIMESTAMPTZ), CAST(created_at AS TIMESTAMPTZ),
             CAST(updated_at AS TIMESTAMPTZ)
           FROM unnest({}) AS s(id, parent_run_id, status, model_name, description, "year", iteration, stage, phase,
             tags, config_hash, git_hash, input_hash, signature, meta, started_at, ended_at, created_at, updated_at)
           ON CONFLICT DO NOTHING"#,
        args.join(", ")
    );
    let params: Vec<&(dyn ToSql + Sync)> = columns.values.iter().map(|v| v.as_ref()).collect();
    client.execute(&sql, &params).map(drop)
}

fn runs(records: &[&RunRecord]) -> Columns {
    let mut text = texts(17);
    let (mut years, mut iterations): (Vec<Option<i32>>, Vec<Option<i32>>) = (Vec::new(), Vec::new());
    for record in records {
        let run = &record.run;
        let row = [
            Some(run.id.clone()),
            run.parent_run_id.clone(),
            Some(run.status.as_str().to_owned()),
            Some(run.model_name.clone()),
            run.description.clone(),
            run.stage.clone(),
            run.phase.clone(),
            Some(serde_json::to_string(&run.tags).unwrap_or_else(|_| "[]".into())),
            Some(run.config_hash.clone()),
            Some(run.code_hash.clone()),
            Some(run.input_hash.clone()),
            Some(run.signature.clone()),
            Some(run_meta_json(record)),
            Some(ts(&run.started_at)),
            run.ended_at.as_ref().map(ts),
            Some(ts(&run.created_at)),
            Some(ts(&run.updated_at)),
        ];
        for (column, value) in text.iter_mut().zip(row) {
            column.push(value);
        }
        years.push(run.year);
        iterations.push(run.iteration);
    }
    // Reorder into the table's column order: id, parent, status, model, description, year,
    // iteration, stage, phase, tags, config/git/input hash, signature, meta, four times.
    let mut text = text.into_iter();
    let mut values = boxed(text.by_ref().take(5).collect());
    values.push(Box::new(years));
    values.push(Box::new(iterations));
    values.extend(boxed(text.collect()));
    let mut types = ["text[]"; 19];
    types[5] = "int4[]";
    types[6] = "int4[]";
    Columns { table: "consist_stage_run", types: Box::leak(Box::new(types)), values }
}

/// The staged artifacts and links of `records`.
fn artifacts_and_links(records: &[&RunRecord]) -> (Columns, Columns) {
    let (mut artifacts, mut links) = (texts(9), texts(3));
    for record in records {
        for (direction, list) in [(Direction::Input, &record.inputs), (Direction::Output, &record.outputs)] {
            for a in list {
                let row = [
                    Some(a.id.clone()),
                    Some(a.key.clone()),
                    Some(a.uri.clone()),
                    Some(a.driver.as_str().to_owned()),
                    a.hash.clone(),
                    a.hash.as_ref().map(|h| content_id(h, a.driver)),
                    a.run_id.clone(),
                    Some(artifact_meta_json(a)),
                    Some(ts(&a.created_at)),
                ];
                for (column, value) in artifacts.iter_mut().zip(row) {
                    column.push(value);
                }
                let link = [Some(record.run.id.clone()), Some(a.id.clone()), Some(direction.as_str().to_owned())];
                for (column, value) in links.iter_mut().zip(link) {
                    column.push(value);
                }
            }
        }
    }
    (
        Columns { table: "consist_stage_artifact", types: &["text[]"; 9], values: boxed(artifacts) },
        Columns { table: "consist_stage_link", types: &["text[]"; 3], values: boxed(links) },
    )
}

/// The staged config facets and facet key-values of `records`.
fn facets(records: &[&RunRecord]) -> [Columns; 2] {
    let mut facets = texts(5);
    let (mut kv_text, mut nums, mut flags) = (texts(6), Vec::<Option<f64>>::new(), Vec::<Option<bool>>::new());
    let mut kv_tail = texts(2);
    let mut facet = |row: [Option<String>; 5]| {
        for (column, value) in facets.iter_mut().zip(row) {
            column.push(value);
        }
    };
    for record in records {
        let run = &record.run;
        // The full config, content-addressed by its hash: identical configs are stored once.
        let config = serde_json::to_string(&record.config).unwrap_or_else(|_| "null".into());
        let created = ts(&run.created_at);
        facet([
            Some(config_id(&run.config_hash)),
            Some(run.model_name.clone()),
            Some(CONFIG_SCHEMA.to_owned()),
            Some(config),
            Some(created.clone()),
        ]);
        if record.facets.is_empty() {
            continue;
        }
        let json = serde_json::to_string(&record.facets).unwrap_or_else(|_| "{}".into());
        let facet_id = facet_id(&run.model_name, &json);
        facet([
            Some(facet_id.clone()),
            Some(run.model_name.clone()),
            Some(FACET_SCHEMA.to_owned()),
            Some(json),
            Some(created.clone()),
        ]);
        for (key, value) in &record.facets {
            let (value_type, text, num, flag) = crate::facet::typed(value);
            let row = [
                Some(run.id.clone()),
                Some(facet_id.clone()),
                Some(run.model_name.clone()),
                Some(key.clone()),
                Some(value_type.to_owned()),
                text,
            ];
            for (column, value) in kv_text.iter_mut().zip(row) {
                column.push(value);
            }
            nums.push(num);
            flags.push(flag);
            for (column, value) in kv_tail.iter_mut().zip([Some(value.to_string()), Some(created.clone())]) {
                column.push(value);
            }
        }
    }
    let mut kv = boxed(kv_text);
    kv.push(Box::new(nums));
    kv.push(Box::new(flags));
    kv.extend(boxed(kv_tail));
    [
        Columns { table: "consist_stage_facet", types: &["text[]"; 5], values: boxed(facets) },
        Columns {
            table: "consist_stage_kv",
            types: &[
                "text[]", "text[]", "text[]", "text[]", "text[]", "text[]", "float8[]", "bool[]", "text[]", "text[]",
            ],
            values: kv,
        },
    ]
}

/// Runs one write must hold before it looks at the planner's statistics (smaller writes, such as
/// a tracker's usual batches, leave them to autovacuum).
const BULK_RUNS: usize = 1_000;

/// Whether this process already said that it may not analyse the catalog.
static ANALYZE_REFUSED: AtomicBool = AtomicBool::new(false);

/// The statistics of `run` and its size now: (rows and pages when last analysed, pages now).
const STATISTICS: &str = "SELECT reltuples::float8, relpages::int8, \
    (pg_relation_size(oid) / current_setting('block_size')::int8)::int8 FROM pg_class WHERE oid = 'run'::regclass";

/// After a bulk write of `runs` runs (a rebuild, a long pending queue synced, a copy), analyse the
/// provenance tables if `run` was never analysed or has grown by a tenth or more (in pages, as
/// autovacuum's default scale factor counts rows) since it last was. Until autovacuum gets to a
/// freshly filled catalog, which takes a minute or more, PostgreSQL has no statistics, and it
/// plans the recursive lineage query with sequential scans: 1.8-2.0 s instead of 24-34 ms for
/// depth 100 on 100,000 runs (BENCHMARKS.md). Best effort, after the commit: tables another
/// session holds (another host's `ANALYZE`, a running vacuum) are skipped rather than waited for,
/// and a role that does not own the tables is told once; what was written stays written.
pub(super) fn refresh_statistics(client: &mut postgres::Client, runs: usize) {
    if runs < BULK_RUNS {
        return;
    }
    let read = |client: &mut postgres::Client| -> Option<(f64, i64, i64)> {
        let row = client.query_one(STATISTICS, &[]).ok()?;
        Some((row.try_get(0).ok()?, row.try_get(1).ok()?, row.try_get(2).ok()?))
    };
    let Some((rows, pages, now)) = read(client) else {
        return tracing::debug!("could not read the catalog's statistics");
    };
    if rows >= 0.0 && pages > 0 && now < pages + pages / 10 {
        return;
    }
    let start = std::time::Instant::now();
    let tables = crate::store::TABLES.join(", ");
    if let Err(e) = client.batch_execute(&format!("ANALYZE (SKIP_LOCKED) {tables}")) {
        return tracing::debug!(error = %e, "could not analyse the catalog after a bulk write");
    }
    // A role that does not own a table gets a warning from the server, not an error, and a
    // never-analysed table stays so.
    if !read(client).is_some_and(|(after, ..)| after < 0.0) {
        return tracing::debug!(
            runs,
            ms = start.elapsed().as_secs_f64() * 1e3,
            "analysed the catalog after a bulk write"
        );
    }
    if !ANALYZE_REFUSED.swap(true, Ordering::Relaxed) {
        crate::logging::warning!(
            "PostgreSQL did not analyse the catalog's tables after a bulk write (a role that does not own them may \
             not): lineage and listings may be slow until autovacuum does; the tables' owner can run `ANALYZE {tables}`"
        );
    }
}
