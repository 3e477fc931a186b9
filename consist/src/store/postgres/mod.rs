//! The PostgreSQL store: one provenance catalog shared by many processes on many hosts.
//!
//! Connections come from a small pool (r2d2 over the synchronous `postgres` client). The schema
//! is the shared Consist schema, created by versioned migrations ([`schema`]); a batch of records
//! is one transaction ([`batch`]); reads are plain SQL on the same tables the DuckDB store reads.
//! The catalog URL's password is never shown: errors and `Display` use the redacted form.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use postgres::NoTls;
use postgres::types::ToSql;
use r2d2_postgres::PostgresConnectionManager;

mod batch;
mod lease;
mod read;

use super::{
    ArtifactQuery, ArtifactView, CatalogIdentity, CatalogSummary, Direction, Leases, LineageStart, QueryAccess,
    QueryRows, RunQuery, ScenarioSummary, Store, StoreIntegrity, schema,
};
use crate::artifact::Artifact;
use crate::error::{Error, Result};
use crate::lineage::LineageNode;
use crate::location::redact;
use crate::run::{Run, RunRecord};
use crate::store::sql::Dialect;
use read::{ARTIFACT_COLUMNS, RUN_COLUMNS, artifact_from_row, fetch_records, run_from_row};

/// Advisory lock key held while migrating (`consist` in ASCII).
const MIGRATION_LOCK: i64 = 0x0063_6f6e_7369_7374;

/// An index beside the versioned schema, PostgreSQL only: the runs newest first, in the order
/// listings read them (`runs`, the UI), which otherwise sort the whole table for every page
/// (94-148 ms at 100,000 runs). It changes no row and no result, only speed, so a catalog with or
/// without it is the same schema version to every consist (an older one, which refuses a newer
/// version, reads and writes it unchanged) and to Python Consist; its name is not one of the
/// `ix_<table>_<column>` names Python Consist gives its own indexes. DuckDB does not order by
/// its indexes, so its catalogs do not get it.
const LISTING_INDEX: &str = r#"CREATE INDEX IF NOT EXISTS consist_ix_run_listing ON run (created_at, id COLLATE "C")"#;

/// Advisory lock key a purge holds exclusively and every batch write shares (`purge` in
/// ASCII): a write that began before a purge committed cannot put a purged run back after it.
const PURGE_LOCK: i64 = 0x0070_7572_6765;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type Conn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// SQLSTATEs worth retrying a whole batch for: deadlock detected, serialization failure.
const RETRY_STATES: [&str; 2] = ["40P01", "40001"];

/// The longest a call waits for a connection to the server (the tracker's `lock_timeout` if
/// shorter): a server that is down is noticed in seconds, and steps carry on without it.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// The longest pause between attempts to reach a server found unreachable.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Set key `$1` of run `$3`'s `meta` to the JSON text `$2`, or remove it (`$2` NULL), keeping the
/// other keys, in their order, as their text is (`jsonb` would rewrite numbers and key order; both
/// refuse a `\u0000`, which the batch write keeps out of the catalog). A `meta` that is not a JSON
/// object (another tool's) is replaced, as DuckDB's `json_merge_patch` does: a mark such as gc's
/// `evicted`, which other hosts rely on, is never left out.
const SET_META_KEY: &str = "UPDATE run SET meta = (
    SELECT coalesce(json_object_agg(k, v ORDER BY n), '{}') FROM (
      SELECT e.key AS k, e.value AS v, e.n
        FROM json_each(CASE WHEN json_typeof(run.meta) = 'object' THEN run.meta END) WITH ORDINALITY AS e(key, value, n)
        WHERE e.key <> $1
      UNION ALL SELECT $1, $2::text::json, 9223372036854775807 WHERE $2::text IS NOT NULL) kv),
  updated_at = now()
  WHERE id = $3";

/// A PostgreSQL database holding the shared provenance schema.
pub struct PgStore {
    /// The URL without its password.
    shown: String,
    pool: Pool,
    /// For probing a server directly (telling "down" from "refuses us").
    config: postgres::Config,
    /// While the server is unreachable: when to try again, and the pause after that.
    down: std::sync::Mutex<Option<(Instant, Duration, String)>>,
    /// The catalog identity read with the last connection.
    seen: std::sync::Mutex<Option<CatalogIdentity>>,
    /// When this store last checked the schema version (each connection taken within
    /// [`SCHEMA_RECHECK`] of it skips the check).
    checked: std::sync::Mutex<Option<Instant>>,
    /// This store tried to create [`LISTING_INDEX`] (at most once).
    index_tried: AtomicBool,
}

/// How long a checked schema version is trusted before the next connection checks it again.
const SCHEMA_RECHECK: Duration = Duration::from_secs(1);

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
        let wait = connect_timeout.clamp(Duration::from_secs(1), CONNECT_WAIT);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(wait);
        }
        // A server behind a network that stops answering is noticed within about half a minute
        // (a read never hangs a step for longer), unless the URL says otherwise.
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        if config.get_keepalives() && config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(Duration::from_secs(15));
        }
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(4)
            .min_idle(Some(0))
            .connection_timeout(wait)
            // The failure reaches the caller as an error naming the catalog; no log line too.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        Ok(PgStore {
            shown,
            pool,
            config,
            down: Default::default(),
            seen: Default::default(),
            checked: Default::default(),
            index_tried: AtomicBool::new(false),
        })
    }

    /// The catalog URL without its password.
    pub fn location(&self) -> &str {
        &self.shown
    }

    /// The error of a failed statement: a connection that broke (the server went away, the
    /// network) is [`Error::CatalogUnreachable`], so steps carry on; the server's refusal is
    /// [`Error::Postgres`].
    fn err(&self, action: &'static str) -> impl Fn(postgres::Error) -> Error + '_ {
        move |e| {
            let broken = e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
            if e.as_db_error().is_none() && broken {
                return self.connect_failed(&e);
            }
            Error::Postgres { location: self.shown.clone(), action, reason: describe(&e) }
        }
    }

    /// A pooled connection to a migrated database. A server that cannot be reached (down, or
    /// the network) is [`Error::CatalogUnreachable`], and is not asked again for a few seconds
    /// (every call fails at once meanwhile); one that refuses us (no such database, wrong
    /// password) is [`Error::Postgres`], a mistake to report.
    fn conn(&self) -> Result<Conn> {
        self.conn_read_identity().map(|(conn, _)| conn)
    }

    /// [`Self::conn`], and the catalog's identity when the schema check that comes with it
    /// read it (at most once per [`SCHEMA_RECHECK`]).
    fn conn_read_identity(&self) -> Result<(Conn, Option<CatalogIdentity>)> {
        let probe = {
            let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
            match &*down {
                Some((retry_at, _, reason)) if Instant::now() < *retry_at => {
                    return Err(self.unreachable(reason.clone()));
                }
                Some(_) => true,
                // A pool without connections asks the server directly first: a refused
                // connection fails at once instead of being retried for the pool's whole wait.
                None => self.pool.state().connections == 0,
            }
        };
        if probe && let Err(e) = self.config.connect(NoTls) {
            return Err(self.connect_failed(&e));
        }
        let mut conn = match self.pool.get() {
            Ok(conn) => conn,
            Err(e) => {
                return Err(match self.config.connect(NoTls) {
                    Err(direct) => self.connect_failed(&direct),
                    Ok(_) => Error::Postgres {
                        location: self.shown.clone(),
                        action: "connecting",
                        reason: format!("{e}; every pooled connection is busy"),
                    },
                });
            }
        };
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let identity = self.migrate(&mut conn)?;
        Ok((conn, identity))
    }

    /// The error for a failed connection: the server's refusal, or the server is unreachable
    /// (then remembered, with a growing pause before the next attempt).
    fn connect_failed(&self, e: &postgres::Error) -> Error {
        if e.as_db_error().is_some() {
            return Error::Postgres {
                location: self.shown.clone(),
                action: "connecting",
                reason: format!("{}; check the URL, the user and the password", describe(e)),
            };
        }
        let reason = e.to_string();
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        let pause = down.as_ref().map_or(Duration::from_millis(500), |(_, pause, _)| (*pause * 2).min(RETRY_MAX));
        *down = Some((Instant::now() + pause, pause, reason.clone()));
        self.unreachable(reason)
    }

    fn unreachable(&self, reason: String) -> Error {
        Error::CatalogUnreachable { location: self.shown.clone(), reason }
    }

    /// Bring the schema to [`schema::SCHEMA_VERSION`] and read the catalog's identity, at most
    /// once per [`SCHEMA_RECHECK`]. A catalog at the current version costs one statement;
    /// otherwise the migrations run in one transaction, under an advisory lock so that processes
    /// starting together apply each once. Returns the identity when it was read (`None` when the
    /// check was not due).
    fn migrate(&self, conn: &mut Conn) -> Result<Option<CatalogIdentity>> {
        let checked = || self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked().is_some_and(|t| t.elapsed() < SCHEMA_RECHECK) {
            return Ok(None);
        }
        let current = conn.query_one(
            "SELECT (SELECT max(version) FROM consist_schema_version), c.id, c.purge_epoch, \
             to_regclass('consist_ix_run_listing') IS NULL AND pg_has_role(t.relowner, 'USAGE') \
             FROM consist_catalog c, pg_class t WHERE t.oid = 'run'::regclass LIMIT 1",
            &[],
        );
        let identity = match current {
            Ok(row) if row.get::<_, Option<i32>>(0) == Some(schema::SCHEMA_VERSION) => {
                if row.get::<_, bool>(3) {
                    self.add_listing_index(conn);
                }
                CatalogIdentity { id: row.get(1), purge_epoch: row.get(2) }
            }
            _ => {
                self.migrate_locked(conn)?;
                self.add_listing_index(conn);
                let row = conn.query_one(schema::READ_IDENTITY, &[]).map_err(self.err("reading the catalog's id"))?;
                CatalogIdentity { id: row.get(0), purge_epoch: row.get(1) }
            }
        };
        self.remember(identity.clone());
        *checked() = Some(Instant::now());
        Ok(Some(identity))
    }

    fn remember(&self, identity: CatalogIdentity) {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(identity);
    }

    /// Create [`LISTING_INDEX`], once per store: when the schema check finds the catalog lacks it
    /// and this role owns the tables, or after this store migrated the schema (an index that
    /// exists is left as it is). Best effort, and never in another host's way for
    /// long: only if no other session holds the migration lock, waiting at most 200 ms for the
    /// table; the build itself holds off writers to `run` while it reads it (~80 ms at 100,000
    /// runs, once per catalog). A failure (a busy table, a read-only server) leaves the catalog
    /// as it was, and this store does not try again.
    fn add_listing_index(&self, conn: &mut Conn) {
        if self.index_tried.swap(true, Ordering::Relaxed) {
            return;
        }
        let start = Instant::now();
        let created = conn.transaction().and_then(|mut tx| {
            tx.batch_execute("SET LOCAL lock_timeout = '200ms'")?;
            let ours: bool = tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?.get(0);
            if ours {
                tx.batch_execute(LISTING_INDEX)?;
            }
            tx.commit().map(|()| ours)
        });
        match created {
            Ok(true) => tracing::debug!(ms = start.elapsed().as_secs_f64() * 1e3, "created the runs' listing index"),
            Ok(false) => tracing::debug!("another session holds the migration lock; the listing index waits"),
            Err(e) => tracing::debug!(error = %describe(&e), "could not create the runs' listing index"),
        }
    }

    /// The migrations, in one transaction under the migration lock.
    fn migrate_locked(&self, conn: &mut Conn) -> Result<()> {
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

/// Whether a run's `meta` lets it be a cache source: readable (a `\u0000` in it, which `->>`
/// refuses, see `pg_meta!` in `store/mod.rs`: never a source), not a hit, not evicted by gc. A
/// `CASE`, so that `->>` is never evaluated on a meta it would refuse.
const SOURCE_META: &str = concat!(
    "CASE WHEN NOT ",
    pg_meta_readable!(""),
    " THEN false ELSE NOT coalesce((meta->>'cache_hit')::boolean, false) AND meta->'evicted' IS NULL END"
);

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
        batch::refresh_statistics(&mut conn, records.len());
        Ok(())
    }

    fn find_runs(&self, query: &RunQuery) -> Result<Vec<Run>> {
        let (filter, args) = crate::store::sql::run_filter(query, Dialect::Postgres);
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM run WHERE true{filter}{}",
            crate::store::sql::run_page(query, Dialect::Postgres)
        );
        self.runs(&sql, &params(&args))
    }

    fn count_runs(&self, query: &RunQuery) -> Result<usize> {
        let (filter, args) = crate::store::sql::run_filter(query, Dialect::Postgres);
        let row = self
            .conn()?
            .query_one(&format!("SELECT count(*) FROM run WHERE true{filter}"), &params(&args))
            .map_err(self.err("counting runs"))?;
        Ok(row.get::<_, i64>(0) as usize)
    }

    fn get_run(&self, id: &str) -> Result<Option<Run>> {
        Ok(self.runs(&format!("SELECT {RUN_COLUMNS} FROM run WHERE id = $1"), &[&id])?.pop())
    }

    fn run_record(&self, id: &str) -> Result<Option<RunRecord>> {
        Ok(self.run_records(&[id.to_owned()])?.pop())
    }

    fn run_records(&self, ids: &[String]) -> Result<Vec<RunRecord>> {
        fetch_records(&mut *self.conn()?, ids).map_err(self.err("reading runs"))
    }

    fn cache_sources(&self, signature: &str, limit: usize) -> Result<Vec<RunRecord>> {
        let mut conn = self.conn()?;
        let sql = format!(
            "SELECT id FROM run WHERE signature = $1 AND status = 'completed' AND {SOURCE_META}
               AND NOT EXISTS (SELECT 1 FROM consist_purged p WHERE p.run_id = run.id)
             ORDER BY ended_at NULLS LAST, id LIMIT {limit}"
        );
        let rows = conn.query(&sql, &[&signature]).map_err(self.err("looking up a signature"))?;
        let ids: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        fetch_records(&mut *conn, &ids).map_err(self.err("reading runs"))
    }

    fn identity(&self) -> Result<Option<CatalogIdentity>> {
        let (mut conn, read) = self.conn_read_identity()?;
        if let Some(identity) = read {
            return Ok(Some(identity));
        }
        let row = conn.query_one(schema::READ_IDENTITY, &[]).map_err(self.err("reading the catalog's id"))?;
        let identity = CatalogIdentity { id: row.get(0), purge_epoch: row.get(1) };
        self.remember(identity.clone());
        Ok(Some(identity))
    }

    fn identity_seen(&self) -> Option<CatalogIdentity> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn purged(&self) -> Result<std::collections::HashSet<String>> {
        let rows = self.conn()?.query("SELECT run_id FROM consist_purged", &[]).map_err(self.err("reading purges"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn unpurge(&self, ids: &[String]) -> Result<()> {
        self.conn()?
            .execute("DELETE FROM consist_purged WHERE run_id = ANY($1)", &[&ids])
            .map(drop)
            .map_err(self.err("forgetting purges"))
    }

    fn replace_runs(&self, records: &[RunRecord], remove: &[String]) -> Result<()> {
        let mut conn = self.conn()?;
        let written = conn.transaction().and_then(|mut tx| {
            let running: Vec<String> =
                records.iter().filter(|r| !r.run.status.is_terminal()).map(|r| r.run.id.clone()).collect();
            let finished: std::collections::HashSet<String> = tx
                .query(&format!("{}(SELECT unnest($1::text[]))", crate::store::sql::FINISHED_AMONG), &[&running])?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let records: Vec<RunRecord> = records
                .iter()
                .filter(|r| r.run.status.is_terminal() || !finished.contains(&r.run.id))
                .cloned()
                .collect();
            let ids: Vec<String> = records.iter().map(|r| r.run.id.clone()).chain(remove.iter().cloned()).collect();
            read::plan_removal(&mut tx, &ids)?;
            tx.batch_execute(crate::store::sql::PURGE_DELETE)?;
            if !remove.is_empty() {
                tx.batch_execute(crate::store::sql::RAISE_EPOCH)?;
            }
            if !records.is_empty() {
                batch::write(&mut tx, &records)?;
            }
            tx.commit()
        });
        written.map_err(self.err("rebuilding runs"))?;
        batch::refresh_statistics(&mut conn, records.len());
        Ok(())
    }

    fn write_started(&self, records: &[RunRecord]) -> Result<()> {
        batch::write_started(&mut *self.conn()?, records).map_err(self.err("writing runs"))
    }

    fn leases(&self) -> Option<&dyn Leases> {
        Some(self)
    }

    fn set_run_meta(
        &self,
        key: &str,
        values: &[(String, Option<serde_json::Value>)],
        raise_epoch: bool,
    ) -> Result<usize> {
        let mut conn = self.conn()?;
        let written = conn.transaction().and_then(|mut tx| {
            let stmt = tx.prepare(SET_META_KEY)?;
            let mut changed = 0;
            for (id, value) in values {
                let value = value.as_ref().map(serde_json::Value::to_string);
                changed += tx.execute(&stmt, &[&key, &value, id])?;
            }
            if raise_epoch {
                tx.batch_execute(crate::store::sql::RAISE_EPOCH)?;
            }
            tx.commit().map(|()| changed as usize)
        });
        written.map_err(self.err("marking runs"))
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
        let sql = crate::store::sql::artifact_by_key(ARTIFACT_COLUMNS, false);
        Ok(self.artifacts(&sql, &[&key])?.pop())
    }

    fn lineage(&self, id_or_key: &str, max_depth: usize) -> Result<Option<LineageNode>> {
        let Some(artifact) = self.find_artifact(id_or_key)? else {
            return Ok(None);
        };
        let rows = read::lineage(&mut *self.conn()?, &artifact.id, max_depth).map_err(self.err("reading lineage"))?;
        Ok(Some(super::lineage_from(artifact, max_depth, rows)))
    }

    fn neighbourhood(&self, start: &LineageStart, up: usize, down: usize) -> Result<Vec<(String, i64)>> {
        let (id, from_artifact) = start.parts();
        let rows = self
            .conn()?
            .query(&crate::store::sql::neighbourhood(from_artifact, up, down), &[&id])
            .map_err(self.err("reading lineage"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn replace_all(&self, records: &[RunRecord]) -> Result<()> {
        let mut conn = self.conn()?;
        let written = conn.transaction().and_then(|mut tx| {
            tx.batch_execute(
                "DELETE FROM run_artifact_link; DELETE FROM artifact; DELETE FROM artifact_content;
                 DELETE FROM run_config_kv; DELETE FROM config_facet; DELETE FROM run;",
            )?;
            tx.batch_execute(crate::store::sql::RAISE_EPOCH)?;
            if !records.is_empty() {
                batch::write(&mut tx, records)?;
            }
            tx.commit()
        });
        written.map_err(self.err("replacing the catalog"))?;
        batch::refresh_statistics(&mut conn, records.len());
        Ok(())
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

    fn output_links(&self) -> Result<Vec<(String, String)>> {
        let rows = self.conn()?.query(crate::store::sql::OUTPUT_LINKS, &[]).map_err(self.err("reading links"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
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
            let _ = std::fs::remove_dir_all(crate::layout::catalog_dir(&staging));
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
        let sql = crate::store::sql::artifact_by_id_or_key(ARTIFACT_COLUMNS);
        Ok(self.artifacts(&sql, &[&id_or_key])?.into_iter().next())
    }
}
