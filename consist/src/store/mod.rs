//! The provenance store: where run and artifact records are kept for querying.
//!
//! [`Store`] is the seam between the catalog and its backends: [`DuckDbStore`], the embedded
//! default, and [`PgStore`], one PostgreSQL catalog for many machines. Both hold the shared
//! Consist schema and map records onto its rows the same way (`rows.rs`). Stores are mirrors:
//! every record they hold can be rebuilt from the JSON snapshots.
//!
//! Public as `consist::store`: the backends, the [`Store`] trait (sealed: only these backends
//! implement it), the queries and answers every backend shares, and the format constants of
//! what they hold.

/// A PostgreSQL run's `meta` (of table alias `$alias`, `""` for none) that its JSON functions can
/// read: NULL where its text holds a `\u0000`, which `->>` refuses for the whole query (a row an
/// older consist or another tool wrote; this one writes none, see `postgres/batch.rs`). Such a
/// run reads as having no meta flags instead of failing every summary and filter of the catalog.
macro_rules! pg_meta {
    ($alias:literal) => {
        concat!("(CASE WHEN ", pg_meta_readable!($alias), " THEN ", $alias, "meta END)")
    };
}

/// Whether a PostgreSQL run's `meta` (of table alias `$alias`) holds no `\u0000` (see `pg_meta!`);
/// NULL for a NULL `meta`.
macro_rules! pg_meta_readable {
    ($alias:literal) => {
        concat!("strpos(", $alias, "meta::text, E'\\\\u0000') = 0")
    };
}

mod duckdb;
mod lease;
mod overview;
mod postgres;
mod query;
mod rows;
mod schema;
mod sql;

pub use self::duckdb::DuckDbStore;
#[doc(hidden)]
pub use self::duckdb::TABLES;
#[cfg(feature = "cli")]
pub(crate) use self::duckdb::settle_before_exit;
pub(crate) use self::duckdb::{file_rows, file_schema};
pub use self::lease::{LeaseState, Leases};
pub use self::overview::{
    ArtifactView, CatalogSummary, Inspection, ModelCount, NOT_PORTABLE_SHOWN, QueryRows, ScenarioSummary,
    StoreIntegrity,
};
pub use self::postgres::PgStore;
pub use self::query::{ArtifactQuery, RunOrder, RunQuery, RunSort};
pub(crate) use self::rows::RUN_DIR_KEY;
pub use self::schema::{CatalogIdentity, SCHEMA_VERSION};
pub(crate) use self::sql::NOT_PORTABLE as NOT_PORTABLE_SQL;
pub use crate::run::SNAPSHOT_FORMAT;

/// How often a tracker on a server catalog asks for its identity and purge epoch (at most):
/// the longest an open tracker may still serve a run purged on another host.
pub const EPOCH_POLL: std::time::Duration = std::time::Duration::from_secs(1);

use crate::artifact::Artifact;
use crate::error::Result;
use crate::lineage::LineageNode;
use crate::run::{Run, RunRecord};

/// Whether an artifact was read or written by a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Read by the run.
    Input,
    /// Written (or reused, for a cache hit) by the run.
    Output,
}

impl Direction {
    /// Name as stored in `run_artifact_link.direction`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// The artifacts one run read and wrote, each side keyed by artifact key.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RunArtifacts {
    /// Artifacts the run read (an upstream output keeps its producer's key).
    pub inputs: std::collections::BTreeMap<String, Artifact>,
    /// Artifacts the run wrote, or reused for a cache hit.
    pub outputs: std::collections::BTreeMap<String, Artifact>,
}

/// What a read-only query may reach besides the catalog's own tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueryAccess {
    /// The catalog and its artifact views only (the default, and what `consist query` does).
    #[default]
    CatalogOnly,
    /// Any file the process can read, other databases, extensions already installed: what
    /// `consist query --allow-external` does, for a user who means it. Still read-only for the
    /// catalog.
    External,
}

/// A session on this thread's catalog reads or writes, ended when this is dropped
/// ([`Store::read_session`], [`Store::write_session`]).
#[derive(Default)]
#[must_use = "the session ends when this is dropped"]
pub struct Session(Option<Box<dyn FnOnce()>>);

impl Session {
    /// A session that runs `end` when dropped.
    pub(crate) fn ending(end: impl FnOnce() + 'static) -> Session {
        Session(Some(Box::new(end)))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(end) = self.0.take() {
            end();
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Session(open)" } else { "Session(none)" })
    }
}

/// Where a lineage graph starts ([`Store::neighbourhood`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineageStart {
    /// A run, by its exact id.
    Run(String),
    /// An artifact, by its exact id.
    Artifact(String),
}

impl LineageStart {
    /// The id, and whether it is an artifact's.
    pub(crate) fn parts(&self) -> (&str, bool) {
        match self {
            LineageStart::Run(id) => (id, false),
            LineageStart::Artifact(id) => (id, true),
        }
    }
}

/// A backend that keeps run records queryable.
pub trait Store: sealed::Sealed + Send + Sync {
    /// Create the storage (schema) if needed, and check an existing one is usable.
    fn init(&self) -> Result<()>;

    /// Store a batch of records in one transaction. Idempotent: a record already stored is left
    /// as is, except that a `running` run is updated to its newer state.
    fn write(&self, records: &[RunRecord]) -> Result<()>;

    /// Record runs that just started (`running`), so that other hosts see them while they
    /// execute; what they read and write comes with their finished record ([`Store::write`]).
    /// A run already stored is left as it is.
    fn write_started(&self, records: &[RunRecord]) -> Result<()> {
        self.write(records)
    }

    /// Runs matching `query`, in its order (newest first unless told), from its offset.
    fn find_runs(&self, query: &RunQuery) -> Result<Vec<Run>>;

    /// How many runs match `query`'s filters (its order, offset and limit aside).
    fn count_runs(&self, query: &RunQuery) -> Result<usize>;

    /// One run by id.
    fn get_run(&self, id: &str) -> Result<Option<Run>>;

    /// Everything stored about one run, as a snapshot record (config, facets, inputs, outputs).
    fn run_record(&self, id: &str) -> Result<Option<RunRecord>>;

    /// Everything stored about each of these runs, in one pass (unknown ids are left out).
    fn run_records(&self, ids: &[String]) -> Result<Vec<RunRecord>>;

    /// The candidate cache sources for `signature`, at most `limit`, in the order every host
    /// tries them: completed runs that executed (not cache hits) with it and whose outputs gc has
    /// not evicted (`meta.evicted`), earliest completion
    /// first, then by run id. A catalog shared by many hosts serves a hit from the first whose
    /// outputs are usable here, so every host that can read the earliest names the same source,
    /// and one whose files are gone is skipped for the next instead of re-executing forever.
    fn cache_sources(&self, signature: &str, limit: usize) -> Result<Vec<RunRecord>>;

    /// Which catalog this is ([`CatalogIdentity`]), read now; `None` for one that no consist of
    /// this version has written yet (a DuckDB file not created yet, or only Python Consist's).
    fn identity(&self) -> Result<Option<CatalogIdentity>>;

    /// The identity read the last time this store connected (no extra round trip); `None`
    /// before it has.
    fn identity_seen(&self) -> Option<CatalogIdentity>;

    /// The runs recorded as purged ([`Store::purge`] records them): never written back.
    fn purged(&self) -> Result<std::collections::HashSet<String>>;

    /// Forget that these runs were purged, so they can be written again (a merge brings them
    /// back deliberately).
    fn unpurge(&self, ids: &[String]) -> Result<()>;

    /// In one transaction, replace the rows of `records`' runs with theirs and remove the runs
    /// `remove` (with what only they referenced): a rebuild's write. Runs not named are left
    /// as they are; purged runs are not written back.
    fn replace_runs(&self, records: &[RunRecord], remove: &[String]) -> Result<()>;

    /// The leases of a catalog shared by many hosts (PostgreSQL), by which a signature executes
    /// on one host at a time and live runs are told from dead ones; `None` where lock files
    /// beside the catalog do that (DuckDB).
    fn leases(&self) -> Option<&dyn Leases> {
        None
    }

    /// Set `key` in the `meta` of each run named to its value (`None` removes the key), leaving
    /// the rest of each record as it is: pins and gc's eviction marks. With `raise_epoch`, the
    /// purge epoch is raised in the same transaction, so every host that remembered one of these
    /// runs as a cache source asks the catalog again. Unknown ids are skipped; returns how many
    /// runs changed.
    fn set_run_meta(
        &self,
        key: &str,
        values: &[(String, Option<serde_json::Value>)],
        raise_epoch: bool,
    ) -> Result<usize>;

    /// Remove these runs with their links and facets, and the artifacts no remaining run links,
    /// in one transaction; returns those artifacts. With `dry_run`, the same answer, nothing removed.
    /// Artifacts that remaining runs still link stay, with their producer recorded as it was.
    /// The runs are recorded as purged and the catalog's purge epoch is raised.
    fn purge(&self, run_ids: &[String], dry_run: bool) -> Result<Vec<Artifact>>;

    /// The artifacts a run read and wrote.
    fn run_artifacts(&self, run_id: &str) -> Result<Vec<(Direction, Artifact)>>;

    /// Artifacts matching `query`, newest first (each artifact once).
    fn find_artifacts(&self, query: &ArtifactQuery) -> Result<Vec<Artifact>>;

    /// The artifact `key` names: the output under `key` of the run that started last (a cache
    /// hit's run included), so after an all-hit rerun it is what that rerun returned.
    fn latest_artifact(&self, key: &str) -> Result<Option<Artifact>>;

    /// The lineage tree of an artifact (found as [`Store::find_artifact`] finds it): its
    /// producing run, that run's inputs, their producers... expanding at most `max_depth` run
    /// levels (`0`: the artifact alone). `None` if unknown.
    fn lineage(&self, id_or_key: &str, max_depth: usize) -> Result<Option<LineageNode>>;

    /// Keep one read connection for the reads this thread makes until the session is dropped
    /// (a page that reads several things opens the catalog once). The file is held meanwhile:
    /// keep sessions short, as other processes' writers wait for them.
    fn read_session(&self) -> Result<Session> {
        Ok(Session::default())
    }

    /// Keep the catalog open from this thread's next write until the session is dropped, so that
    /// the writes made meanwhile share one open: on a DuckDB file, one attach and one checkpoint
    /// (when the session ends) for all of them instead of one each. Each write still commits on
    /// its own; one whose transaction fails, or that finds a reader of another process asking
    /// to be let in, closes the catalog, and the next opens it again. The file is held meanwhile:
    /// other processes, and other threads of this one, wait for it (at most their lock timeout,
    /// then [`crate::Error::DatabaseBusy`]), so do not wait on a thread that needs this catalog
    /// (a tracker's flush) while a session is open. A tracker's writer
    /// keeps one only across batches that follow each other at once, for at most a second.
    fn write_session(&self) -> Result<Session> {
        Ok(Session::default())
    }

    /// The ids of the runs around `start`, with their hop distance (negative upstream, positive
    /// downstream, 0 the start run): at most `up` producing-run hops upstream and `down`
    /// consuming-run hops downstream, in one query.
    fn neighbourhood(&self, start: &LineageStart, up: usize, down: usize) -> Result<Vec<(String, i64)>>;

    /// Replace every record with `records` in one transaction: on failure the old content stays.
    fn replace_all(&self, records: &[RunRecord]) -> Result<()>;

    /// Counts of runs, hits, scenarios and artifacts, the time range, and runs per model
    /// (`pending` is left at 0: the catalog, which owns the queue, fills it in).
    fn summary(&self) -> Result<CatalogSummary>;

    /// Scenarios (header runs), newest first, at most `limit`, with their step counts.
    fn scenarios(&self, limit: usize) -> Result<Vec<ScenarioSummary>>;

    /// Row counts per table and referential checks.
    fn integrity(&self) -> Result<StoreIntegrity>;

    /// Every artifact written by a run, oldest first (what validation checks against its file).
    fn produced_artifacts(&self) -> Result<Vec<Artifact>>;

    /// Every `(run id, artifact id)` pair where a run lists the artifact among its outputs (a
    /// cache hit lists the outputs it reused).
    fn output_links(&self) -> Result<Vec<(String, String)>>;

    /// Write every provenance table to `<dir>/<table>.parquet` (the directory exists); returns
    /// the files written.
    fn export_parquet(&self, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>>;

    /// Reclaim the space of removed rows; returns the storage size before and after, in bytes.
    fn compact(&self) -> Result<(u64, u64)>;

    /// Run read-only `sql` over the provenance tables, with one view per artifact key the SQL
    /// mentions (that key's Parquet/CSV files across runs, with the producing run's
    /// `consist_run_id`, `consist_scenario_id`, `consist_iteration`, `consist_year`). A statement
    /// that writes, or fails, is an [`Error::Query`](crate::Error::Query) saying which.
    ///
    /// With [`QueryAccess::CatalogOnly`] a DuckDB query also cannot reach outside the catalog:
    /// no file read or written other than the artifact files of its views (`read_csv`, `glob`,
    /// `COPY ... TO`, `EXPORT DATABASE`), no `ATTACH`, `INSTALL` or `LOAD`, no `SET` or `PRAGMA`
    /// that changes a setting. On PostgreSQL, what reaches outside is governed by the role's
    /// privileges (`pg_read_server_files`...): connect as a role without them.
    fn query(&self, sql: &str, access: QueryAccess) -> Result<QueryRows>;

    /// The per-key artifact views that [`Store::query`] offers, with their file counts.
    fn artifact_views(&self) -> Result<Vec<ArtifactView>>;

    /// An artifact by its exact id, else by key (as [`Store::latest_artifact`] finds it, or, for
    /// a key only ever read, the newest raw input with that key), else by the start of an id.
    fn find_artifact(&self, id_or_key: &str) -> Result<Option<Artifact>>;
}

/// What a backend reads for a lineage, in two queries whatever the depth: the runs of the
/// lineage ([`sql::lineage_runs`]) and their inputs as (run id, artifact), each run's in order.
pub(super) type LineageRows = (Vec<Run>, Vec<(String, Artifact)>);

/// The lineage tree of `artifact` from its [`LineageRows`], expanding at most `depth`
/// producing-run levels.
pub(super) fn lineage_from(artifact: Artifact, depth: usize, (runs, inputs): LineageRows) -> LineageNode {
    let mut producers: std::collections::HashMap<String, (Run, Vec<Artifact>)> =
        runs.into_iter().map(|run| (run.id.clone(), (run, Vec::new()))).collect();
    for (run_id, input) in inputs {
        if let Some((_, read)) = producers.get_mut(&run_id) {
            read.push(input);
        }
    }
    lineage_tree(artifact, depth, &producers, &mut Vec::new())
}

/// One node of [`lineage_from`]: a producer missing from `producers` is no longer recorded
/// (e.g. purged). `path` holds the runs above this node: a run met again on it (a cycle, which
/// only a damaged or hostile catalog holds) is not expanded again.
fn lineage_tree(
    artifact: Artifact,
    depth: usize,
    producers: &std::collections::HashMap<String, (Run, Vec<Artifact>)>,
    path: &mut Vec<String>,
) -> LineageNode {
    let mut producer_missing = false;
    let found = match (&artifact.run_id, depth) {
        (Some(run_id), 1..) if !path.contains(run_id) => match producers.get(run_id) {
            Some((run, read)) => {
                path.push(run_id.clone());
                let inputs = read.iter().map(|input| lineage_tree(input.clone(), depth - 1, producers, path)).collect();
                path.pop();
                Some(crate::lineage::Producer { run: run.clone(), inputs })
            }
            None => {
                producer_missing = true;
                None
            }
        },
        _ => None,
    };
    LineageNode { artifact, producer: found, producer_missing }
}

/// Sealed: only consist's backends implement [`Store`], so a new query is not a breaking change.
mod sealed {
    pub trait Sealed {}
    impl Sealed for super::DuckDbStore {}
    impl Sealed for super::PgStore {}
}
