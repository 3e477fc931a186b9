//! The PostgreSQL store: one provenance catalog shared by many processes on many hosts.
//!
//! Connections come from a small pool (r2d2 over the synchronous `postgres` client). The schema
//! is the shared Consist schema, created by versioned migrations ([`schema`]); a batch of records
//! is one transaction ([`batch`]); reads are plain SQL on the same tables the DuckDB store reads.
//! The catalog URL's password is never shown: errors and `Display` use the redacted form.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postgres::NoTls;
use postgres::types::ToSql;
use r2d2_postgres::PostgresConnectionManager;

mod batch;
mod read;

use super::{
    ArtifactQuery, ArtifactView, CatalogSummary, Direction, QueryAccess, QueryRows, RunQuery, ScenarioSummary, Store,
    StoreIntegrity, schema,
};
use crate::artifact::Artifact;
use crate::error::{Error, Result};
use crate::lineage::LineageNode;
use crate::location::redact;
use crate::run::{Run, RunRecord};
use read::{ARTIFACT_COLUMNS, RUN_COLUMNS, artifact_from_row, fetch_artifact, fetch_records, run_from_row};

/// Advisory lock key held while migrating (`consist` in ASCII).
const MIGRATION_LOCK: i64 = 0x0063_6f6e_7369_7374;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type Conn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// SQLSTATEs worth retrying a whole batch for: deadlock detected, serialization failure.
const RETRY_STATES: [&str; 2] = ["40P01", "40001"];

/// A PostgreSQL database holding the shared provenance schema.
pub struct PgStore {
    /// The URL without its password.
    shown: String,
    pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("location", &self.shown).finish_non_exhaustive()
    }
}

impl PgStore {
    /// A store at `url` (`postgres://user:password@host:port/db`, or libpq's `key=value` form),
    /// waiting at most `connect_timeout` for a connection. Connects lazily: a server that is
    /// down is reported by the first call that needs it.
    pub fn new(url: &str, connect_timeout: Duration) -> Result<PgStore> {
        let shown = redact(url);
        let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| Error::CatalogLocation {
            location: shown.clone(),
            reason: format!("it is not a PostgreSQL connection URL ({e})"),
        })?;
        if config.get_application_name().is_none() {
            config.application_name("consist");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(connect_timeout.max(Duration::from_secs(1)));
        }
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(4)
            .min_idle(Some(0))
            .connection_timeout(connect_timeout.max(Duration::from_secs(1)))
            // The failure reaches the caller as an error naming the catalog; no log line too.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        Ok(PgStore { shown, pool })
    }

    /// The catalog URL without its password.
    pub fn location(&self) -> &str {
        &self.shown
    }

    fn err(&self, action: &'static str) -> impl Fn(postgres::Error) -> Error + '_ {
        move |e| Error::Postgres { location: self.shown.clone(), action, reason: describe(&e) }
    }

    /// A pooled connection to a migrated database.
    fn conn(&self) -> Result<Conn> {
        let mut conn = self.pool.get().map_err(|e| Error::Postgres {
            location: self.shown.clone(),
            action: "connecting",
            reason: format!("{e}; check that the server is up and the URL, user and password are right"),
        })?;
        self.migrate(&mut conn)?;
        Ok(conn)
    }

    /// Bring the schema to [`schema::SCHEMA_VERSION`] in one transaction, under an advisory lock
    /// so that processes starting together apply each migration once.
    fn migrate(&self, conn: &mut Conn) -> Result<()> {
        let mut tx = conn.transaction().map_err(self.err("creating the schema"))?;
        let found: i32 = tx
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .and_then(|_| tx.batch_execute(schema::VERSION_TABLE))
            .and_then(|()| tx.query_one(schema::READ_VERSION, &[]))
            .map_err(self.err("creating the schema"))?
            .get(0);
        for (version, ddl) in schema::pending(found, &self.shown)? {
            tx.batch_execute(ddl)
                .and_then(|()| tx.execute(schema::RECORD_VERSION, &[&version]))
                .map_err(self.err("creating the schema"))?;
        }
        tx.commit().map_err(self.err("creating the schema"))
    }

    fn runs(&self, sql: &str, args: &[&(dyn ToSql + Sync)]) -> Result<Vec<Run>> {
        let rows = self.conn()?.query(sql, args).map_err(self.err("reading runs"))?;
        Ok(rows.iter().map(run_from_row).collect())
    }

    fn artifacts(&self, sql: &str, args: &[&(dyn ToSql + Sync)]) -> Result<Vec<Artifact>> {
        let rows = self.conn()?.query(sql, args).map_err(self.err("reading artifacts"))?;
        Ok(rows.iter().map(|r| artifact_from_row(r, 0)).collect())
    }
}

/// The server's message with its detail and hint, when it sent them.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            for extra in [db.detail(), db.hint()].into_iter().flatten() {
                text.push_str("; ");
                text.push_str(extra);
            }
            text
        }
        None => e.to_string(),
    }
}

fn params(args: &[String]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

const HIT: &str = "coalesce((meta->>'cache_hit')::boolean, false)";

impl Store for PgStore {
    fn init(&self) -> Result<()> {
        self.conn().map(drop)
    }

    fn write(&self, records: &[RunRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let mut conn = self.conn()?;
        let mut attempt = 0;
        loop {
            let written = conn.transaction().and_then(|mut tx| {
                batch::write(&mut tx, records)?;
                tx.commit()
            });
            match written {
                Ok(()) => break,
                Err(e) if attempt < 5 && e.code().is_some_and(|c| RETRY_STATES.contains(&c.code())) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(5 << attempt));
                }
                Err(e) => return Err(self.err("writing runs")(e)),
            }
        }
        tracing::debug!(runs = records.len(), ms = start.elapsed().as_secs_f64() * 1e3, "wrote batch to PostgreSQL");
        Ok(())
    }

    fn find_runs(&self, query: &RunQuery) -> Result<Vec<Run>> {
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM run WHERE true");
        let mut args: Vec<String> = Vec::new();
        let arg = |args: &mut Vec<String>, value: String| {
            args.push(value);
            format!("${}", args.len())
        };
        if let Some(prefix) = &query.id_prefix {
            sql.push_str(&format!(" AND starts_with(id, {})", arg(&mut args, prefix.clone())));
        }
        if let Some(i) = query.iteration {
            sql.push_str(&format!(" AND iteration = {i}"));
        }
        for (column, value) in [
            ("model_name", query.model.clone()),
            ("status", query.status.map(|s| s.as_str().to_owned())),
            ("signature", query.signature.clone()),
            ("parent_run_id", query.parent.clone()),
        ] {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} = {}", arg(&mut args, v)));
            }
        }
        for tag in &query.tags {
            let tag = arg(&mut args, tag.clone());
            sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM json_array_elements_text(tags) t WHERE t = {tag})"));
        }
        for (key, value) in &query.facets {
            let (key, value) = (arg(&mut args, key.clone()), arg(&mut args, value.to_string()));
            sql.push_str(&format!(
                r#" AND EXISTS (SELECT 1 FROM run_config_kv kv WHERE kv.run_id = run.id AND kv."key" = {key}
                    AND kv.value_json::text = {value})"#
            ));
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC");
        if let Some(limit) = query.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        self.runs(&sql, &params(&args))
    }

    fn get_run(&self, id: &str) -> Result<Option<Run>> {
        Ok(self.runs(&format!("SELECT {RUN_COLUMNS} FROM run WHERE id = $1"), &[&id])?.pop())
    }

    fn search_runs(&self, text: &str, limit: usize) -> Result<Vec<Run>> {
        let sql = format!(
            r#"SELECT {RUN_COLUMNS} FROM run WHERE strpos(lower(id || ' ' || model_name || ' ' || coalesce(tags::text, '')
                 || ' ' || coalesce(description, '') || ' ' || coalesce((SELECT f."json"::text FROM config_facet f
                 WHERE f.id = 'config:' || run.config_hash), '')), lower($1)) > 0
               ORDER BY created_at DESC, id DESC LIMIT {limit}"#
        );
        self.runs(&sql, &[&text])
    }

    fn run_record(&self, id: &str) -> Result<Option<RunRecord>> {
        Ok(self.run_records(&[id.to_owned()])?.pop())
    }

    fn run_records(&self, ids: &[String]) -> Result<Vec<RunRecord>> {
        fetch_records(&mut *self.conn()?, ids).map_err(self.err("reading runs"))
    }

    fn cache_source(&self, signature: &str) -> Result<Option<RunRecord>> {
        let mut conn = self.conn()?;
        let sql = format!(
            "SELECT id FROM run WHERE signature = $1 AND status = 'completed' AND NOT {HIT}
             ORDER BY created_at, id LIMIT 1"
        );
        let found = conn.query_opt(&sql, &[&signature]).map_err(self.err("looking up a signature"))?;
        let Some(row) = found else { return Ok(None) };
        let id: String = row.get(0);
        Ok(fetch_records(&mut *conn, &[id]).map_err(self.err("reading runs"))?.pop())
    }

    fn purge(&self, run_ids: &[String], dry_run: bool) -> Result<Vec<Artifact>> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(self.err("purging runs"))?;
        let orphans = read::purge(&mut tx, run_ids).map_err(self.err("purging runs"))?;
        if dry_run { tx.rollback() } else { tx.commit() }.map_err(self.err("purging runs"))?;
        Ok(orphans)
    }

    fn run_artifacts(&self, run_id: &str) -> Result<Vec<(Direction, Artifact)>> {
        read::run_artifacts(&mut *self.conn()?, run_id).map_err(self.err("reading artifacts"))
    }

    fn find_artifacts(&self, query: &ArtifactQuery) -> Result<Vec<Artifact>> {
        let mut sql = format!(
            r#"SELECT {ARTIFACT_COLUMNS} FROM artifact a WHERE EXISTS (SELECT 1 FROM run_artifact_link l
               WHERE l.artifact_id = a.id"#
        );
        let mut args: Vec<String> = Vec::new();
        for (column, value) in
            [("l.run_id", query.run.clone()), ("l.direction", query.direction.map(|d| d.as_str().into()))]
        {
            if let Some(v) = value {
                args.push(v);
                sql.push_str(&format!(" AND {column} = ${}", args.len()));
            }
        }
        sql.push(')');
        if let Some(key) = &query.key {
            args.push(key.clone());
            sql.push_str(&format!(r#" AND a."key" = ${}"#, args.len()));
        }
        sql.push_str(r#" ORDER BY a.created_at DESC, a."key", a.id"#);
        if let Some(limit) = query.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        self.artifacts(&sql, &params(&args))
    }

    fn latest_artifact(&self, key: &str) -> Result<Option<Artifact>> {
        let sql = format!(
            r#"SELECT {ARTIFACT_COLUMNS} FROM artifact a WHERE a."key" = $1 AND a.run_id IS NOT NULL
               ORDER BY a.created_at DESC LIMIT 1"#
        );
        Ok(self.artifacts(&sql, &[&key])?.pop())
    }

    fn lineage(&self, artifact_id: &str, max_depth: usize) -> Result<Option<LineageNode>> {
        let mut conn = self.conn()?;
        let Some(artifact) = fetch_artifact(&mut *conn, artifact_id).map_err(self.err("reading lineage"))? else {
            return Ok(None);
        };
        let mut producer = |id: &str| read::producer(&mut *conn, id);
        super::lineage_tree(artifact, max_depth, &mut producer).map(Some).map_err(self.err("reading lineage"))
    }

    fn replace_all(&self, records: &[RunRecord]) -> Result<()> {
        let mut conn = self.conn()?;
        let written = conn.transaction().and_then(|mut tx| {
            tx.batch_execute(
                "DELETE FROM run_artifact_link; DELETE FROM artifact; DELETE FROM artifact_content;
                 DELETE FROM run_config_kv; DELETE FROM config_facet; DELETE FROM run;",
            )?;
            if !records.is_empty() {
                batch::write(&mut tx, records)?;
            }
            tx.commit()
        });
        written.map_err(self.err("replacing the catalog"))
    }

    fn summary(&self) -> Result<CatalogSummary> {
        read::summary(&mut *self.conn()?).map_err(self.err("summarizing"))
    }

    fn scenarios(&self, limit: usize) -> Result<Vec<ScenarioSummary>> {
        read::scenarios(&mut *self.conn()?, limit).map_err(self.err("listing scenarios"))
    }

    fn integrity(&self) -> Result<StoreIntegrity> {
        read::integrity(&mut *self.conn()?).map_err(self.err("checking integrity"))
    }

    fn produced_artifacts(&self) -> Result<Vec<Artifact>> {
        self.artifacts(
            &format!(
                "SELECT {ARTIFACT_COLUMNS} FROM artifact a WHERE a.run_id IS NOT NULL ORDER BY a.created_at, a.id"
            ),
            &[],
        )
    }

    /// Parquet is written by DuckDB: the records go through a DuckDB file made in `dir` for the
    /// export and removed after it (rows other tools wrote, which no record holds, are left out).
    fn export_parquet(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let ids: Vec<String> = self.find_runs(&RunQuery::default())?.into_iter().map(|r| r.id).collect();
        let records = self.run_records(&ids)?;
        let staging = dir.join(".consist-export.duckdb");
        let wal = dir.join(".consist-export.duckdb.wal");
        let remove = || {
            for file in [&staging, &wal] {
                let _ = std::fs::remove_file(file);
            }
        };
        remove();
        let store = super::DuckDbStore::new(&staging, Duration::from_secs(10));
        let written = store.init().and_then(|()| store.write(&records)).and_then(|()| store.export_parquet(dir));
        remove();
        written
    }

    fn compact(&self) -> Result<(u64, u64)> {
        let mut conn = self.conn()?;
        let size = |conn: &mut Conn| -> std::result::Result<u64, postgres::Error> {
            let tables: Vec<String> = super::TABLES.iter().map(|t| (*t).to_owned()).collect();
            let row = conn.query_one(
                "SELECT coalesce(sum(pg_total_relation_size(t::regclass)), 0)::int8 FROM unnest($1::text[]) t",
                &[&tables],
            )?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        };
        let before = size(&mut conn).map_err(self.err("measuring the catalog"))?;
        conn.batch_execute(&format!("VACUUM FULL {}", super::TABLES.join(", "))).map_err(self.err("compacting"))?;
        let after = size(&mut conn).map_err(self.err("measuring the catalog"))?;
        Ok((before, after))
    }

    fn query(&self, sql: &str, _access: QueryAccess) -> Result<QueryRows> {
        read::query(&mut *self.conn()?, sql)
    }

    /// Per-key views over artifact files are read through DuckDB, so a PostgreSQL catalog
    /// offers none: its queries see the provenance tables.
    fn artifact_views(&self) -> Result<Vec<ArtifactView>> {
        Ok(Vec::new())
    }

    fn find_artifact(&self, id_or_key: &str) -> Result<Option<Artifact>> {
        let sql = format!(
            r#"(SELECT {ARTIFACT_COLUMNS} FROM artifact a WHERE a.id = $1 OR starts_with(a.id, $1) ORDER BY a.id = $1 DESC LIMIT 1)
               UNION ALL (SELECT {ARTIFACT_COLUMNS} FROM artifact a WHERE a."key" = $1 ORDER BY a.created_at DESC LIMIT 1)
               LIMIT 1"#
        );
        Ok(self.artifacts(&sql, &[&id_or_key])?.into_iter().next())
    }
}
