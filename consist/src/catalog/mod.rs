//! The catalog: a store plus the signature index and pending queue kept beside its database.
//!
//! Writers append snapshots to the pending queue on the hot path and move them into the store in
//! batches ([`Catalog::sync`]); readers see the store merged with whatever is still pending, so a
//! run in progress in another process shows up before it reaches the database.
//!
//! The catalog layer, below the engine and above the stores and files: the files a catalog keeps
//! (`layout`, `snapshot`, `pending`, `index`, `local`), what it learns from them (`explain`,
//! `diff`, `relocate`), and what changes or checks it as a whole (`maintenance`, `rebuild`,
//! `validate`); `shared` keeps a host's state true to a catalog others change.

pub(crate) mod diff;
pub(crate) mod explain;
pub(crate) mod gc;
mod graph;
pub(crate) mod index;
pub(crate) mod local;
pub(crate) mod maintenance;
pub(crate) mod pending;
pub(crate) mod rebuild;
mod shared;
pub(crate) mod snapshot;
pub(crate) mod validate;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::artifact::Artifact;
use crate::catalog::explain::History;
use crate::catalog::index::SignatureIndex;
use crate::catalog::pending::PendingQueue;
use crate::error::{Error, Result};
use crate::location::CatalogLocation;
use crate::relocate::Relocation;
use crate::run::{Run, RunRecord};
use crate::store::{
    ArtifactView, CatalogSummary, Direction, DuckDbStore, PgStore, QueryAccess, QueryRows, RunQuery, ScenarioSummary,
    Store,
};

/// Batches of cache hits a DuckDB catalog's pending queue holds before a tracker that defers its
/// hits writes them to the database (see `Catalog::pending_due` and
/// [`crate::TrackerBuilder::defer_hit_writes`]): one database write per 16 such processes.
pub const HIT_BATCHES_WAITING: usize = 16;

/// A provenance database with its signature index and pending queue.
pub struct Catalog {
    store: Box<dyn Store>,
    location: CatalogLocation,
    db_path: PathBuf,
    pending: PendingQueue,
    index: SignatureIndex,
    history: History,
    /// Where paths recorded before the project moved are now (DuckDB catalogs).
    relocation: Arc<Relocation>,
    /// Mounts through which `name://` URIs are found on this machine.
    mounts: crate::mounts::Mounts,
    /// The rest of this host's state for the catalog: its identity, run dirs, purge mark.
    local: crate::catalog::local::LocalState,
    /// What this object last saw of purges made elsewhere.
    seen: shared::SeenPurges,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("location", &self.location).finish_non_exhaustive()
    }
}

impl Catalog {
    /// The catalog at `location` (see [`CatalogLocation::parse`]). A DuckDB file is opened only
    /// when first used; an existing file that is not a DuckDB database is refused now.
    /// A PostgreSQL catalog connects on first use, waiting at most `lock_timeout` for the server.
    pub fn open(location: &CatalogLocation, lock_timeout: Duration) -> Result<Catalog> {
        match location {
            CatalogLocation::DuckDb(path) => {
                DuckDbStore::check_header(path)?;
                Ok(Catalog::duckdb(path.clone(), lock_timeout))
            }
            CatalogLocation::Postgres(url) => {
                let store = PgStore::new(url.expose(), lock_timeout)?;
                Ok(Catalog::with_store(location.clone(), Box::new(store)))
            }
        }
    }

    /// The catalog of the DuckDB database at `db_path`. Opens nothing yet.
    pub fn duckdb(db_path: impl Into<PathBuf>, lock_timeout: Duration) -> Catalog {
        let db_path = db_path.into();
        // One reading of the catalog's homes serves the catalog and its artifact views.
        let relocation = Arc::new(Relocation::of(&db_path));
        let store = DuckDbStore::new(db_path.clone(), lock_timeout).with_relocation(Arc::clone(&relocation));
        Catalog::assemble(CatalogLocation::DuckDb(db_path), Box::new(store), relocation)
    }

    /// A catalog over any store found at `location`; the signature index, pending queue and
    /// miss history live in `<state_path>.consist/` (see [`CatalogLocation::state_path`]).
    pub fn with_store(location: CatalogLocation, store: Box<dyn Store>) -> Catalog {
        let relocation = match &location {
            CatalogLocation::DuckDb(path) => Relocation::of(path),
            CatalogLocation::Postgres(_) => Relocation::default(),
        };
        Catalog::assemble(location, store, Arc::new(relocation))
    }

    /// The catalog over `store`, its local state beside `location`.
    fn assemble(location: CatalogLocation, store: Box<dyn Store>, relocation: Arc<Relocation>) -> Catalog {
        let db_path = location.state_path();
        let dir = crate::layout::catalog_dir(&db_path);
        Catalog {
            relocation,
            mounts: crate::mounts::Mounts::default(),
            store,
            pending: PendingQueue::new(&dir),
            index: SignatureIndex::new(&dir),
            history: History::new(&dir),
            local: crate::catalog::local::LocalState::new(&dir),
            seen: Default::default(),
            location,
            db_path,
        }
    }

    /// The catalog, finding `name://` artifacts through `mounts` (as a tracker's mounts, or the
    /// CLI's `--mount name=dir`).
    pub fn with_mounts(mut self, mounts: crate::mounts::Mounts) -> Catalog {
        self.mounts = mounts;
        self
    }

    /// The mounts `name://` URIs are found through.
    pub fn mounts(&self) -> &crate::mounts::Mounts {
        &self.mounts
    }

    /// `artifact` with its path as found on this machine: a `name://` URI through the mounts
    /// (the recorded path while the mounted one is missing); otherwise the recorded path while
    /// it exists, else where a moved project put it, else its `./` URI under `run_dir` (a
    /// tracker's run directory; the CLI has none). Whatever it finds is checked against the
    /// recorded hash before anything reads it. A mount this catalog lacks is an error naming the
    /// fix only when the recorded path is gone too. Under a run directory, a copy a remote pull
    /// put in `.consist/remote/<hash>/` is found too.
    pub(crate) fn locate(&self, artifact: Artifact, run_dir: Option<&Path>) -> Result<Artifact> {
        let recorded = artifact.path.exists();
        if crate::mounts::split_mount(&artifact.uri).is_some() {
            return match self.mounts.resolve(&artifact.uri, Path::new("/")) {
                Ok(path) if path.exists() || !recorded => Ok(Artifact { path, ..artifact }),
                Err(e) if !recorded => Err(e),
                _ => Ok(artifact),
            };
        }
        if recorded {
            return Ok(artifact);
        }
        if let Some(path) = self.relocation.path(&artifact.path) {
            return Ok(Artifact { path, ..artifact });
        }
        let Some(dir) = run_dir else { return Ok(artifact) };
        let path = self.mounts.resolve(&artifact.uri, dir)?;
        // A copy fetched from a remote into a directory of its own content (`remote pull`).
        let fetched = (!path.exists())
            .then(|| crate::remote::local_copy(&artifact, dir, &self.mounts))
            .flatten()
            .filter(|copy| copy.exists());
        Ok(Artifact { path: fetched.unwrap_or(path), ..artifact })
    }

    /// [`Catalog::locate`] for listing: an artifact that cannot be found is shown as recorded.
    pub(crate) fn here(&self, artifact: Artifact) -> Artifact {
        self.locate(artifact.clone(), None).unwrap_or(artifact)
    }

    /// Where the catalog lives (shown without a password).
    pub fn location(&self) -> &CatalogLocation {
        &self.location
    }

    /// The database file of a DuckDB catalog; for a server catalog, the anchor of its local
    /// state (see [`CatalogLocation::state_path`]).
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Where [`Catalog::rebuild`] looks for snapshots unless told: the folder of a DuckDB
    /// catalog's file (its run directories usually sit below it); `None` for a server catalog,
    /// which has no folder of its own.
    pub fn default_snapshot_root(&self) -> Option<PathBuf> {
        let file = self.location.duckdb_path()?;
        let absolute = std::path::absolute(file).ok()?;
        Some(absolute.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf))
    }

    /// Whether the store holds a database to read: a DuckDB file once written; a server catalog
    /// always (an unreachable server is an error of the read itself).
    pub fn has_store(&self) -> bool {
        match self.location {
            CatalogLocation::DuckDb(_) => self.db_path.exists(),
            CatalogLocation::Postgres(_) => true,
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Whether anything may be recorded here (a database or runs still pending).
    pub fn exists(&self) -> bool {
        self.has_store() || !self.pending.is_empty()
    }

    /// Whether the pending queue should reach the store now rather than with a later write. On
    /// a DuckDB catalog, batches of cache hits may wait (every reader of the catalog merges them,
    /// and they cannot cause a false hit) until an executed run is queued, until
    /// [`HIT_BATCHES_WAITING`] of them are, until a tracker that does not defer its hits is
    /// dropped, or until [`Catalog::sync`] (`consist db sync`). On a shared catalog (PostgreSQL),
    /// which other hosts read without this queue, everything goes now.
    pub(crate) fn pending_due(&self) -> bool {
        due(self.pending.backlog(), matches!(self.location, CatalogLocation::Postgres(_)))
    }

    /// Whether a snapshot of run `run_id` is already queued for the store.
    pub(crate) fn is_queued(&self, run_id: &str) -> bool {
        self.pending.get(run_id).is_some()
    }

    /// Make a completed run the cache source of its signature (its signature-index entry).
    pub(crate) fn index_source(&self, entry: crate::catalog::index::IndexEntry) -> Result<()> {
        self.index.put(entry)
    }

    /// Forget the signature-index entry of `signature` (its outputs turned out unusable).
    pub(crate) fn forget_source(&self, signature: &str) {
        self.index.forget(signature)
    }

    /// Earlier executions of `step` a miss at `place` is explained against (see
    /// [`explain`](crate::catalog::explain)).
    pub(crate) fn miss_baselines(&self, step: &str, place: &explain::Place) -> Arc<Vec<explain::Footprint>> {
        self.history.candidates(step, place)
    }

    /// Remember an execution of `step` for later miss explanations.
    pub(crate) fn remember_execution(&self, step: &str, footprint: explain::Footprint) -> std::io::Result<()> {
        self.history.record(step, footprint)
    }

    /// Record that a tracker uses `run_dir` with this catalog (where maintenance may remove files).
    /// This host's directory of state for the catalog (beside a DuckDB file).
    pub(crate) fn local_dir(&self) -> &Path {
        self.local.dir()
    }

    pub(crate) fn note_run_dir(&self, run_dir: &Path) {
        self.local.note_run_dir(run_dir)
    }

    /// Where a run directory recorded before the project moved is now, if known.
    pub(crate) fn relocated(&self, recorded: &Path) -> Option<PathBuf> {
        self.relocation.path(recorded)
    }

    /// How many runs are recorded in snapshots but not yet in the store.
    pub fn pending_count(&self) -> usize {
        self.pending_records().len()
    }

    /// Queue a written snapshot for the store.
    pub(crate) fn enqueue(&self, run_id: &str, snapshot_path: &Path) -> Result<()> {
        self.pending.push(run_id, snapshot_path)
    }

    /// Pending records (snapshots read back), skipping entries whose snapshot vanished or is
    /// damaged.
    pub(crate) fn pending_records(&self) -> Vec<RunRecord> {
        self.pending_entries().into_iter().flat_map(|(_, records)| records).collect()
    }

    /// Pending queue entries with the records of their snapshot file (one run, or a batch of
    /// hits). An entry whose file is gone is dropped. An entry whose file cannot be read is
    /// dropped too, once, with a warning naming the file and the run, and reported by
    /// [`Catalog::inspect`] from then on (`<db>.consist/damaged/`); the file is left in place.
    pub(crate) fn pending_entries(&self) -> Vec<(String, Vec<RunRecord>)> {
        let entries = self.pending_list().into_iter();
        entries.filter_map(|(name, path)| Some((name.clone(), self.pending_entry(&name, path)?))).collect()
    }

    /// The records of one pending queue entry; `None` (and the entry dropped or noted damaged,
    /// see [`Catalog::pending_entries`]) when its file is gone or cannot be read.
    fn pending_entry(&self, name: &str, path: PathBuf) -> Option<Vec<RunRecord>> {
        match crate::catalog::snapshot::read_all(&path) {
            Ok(records) => Some(records),
            Err(_) if !path.exists() => {
                crate::logging::warning!(
                    entry = %name,
                    file = %path.display(),
                    "a pending run's snapshot is gone; dropped from the queue (`consist db rebuild --run-dir` restores it from where it is now)"
                );
                self.pending.remove(name);
                None
            }
            Err(e) => {
                let damaged = crate::run::DamagedSnapshot {
                    run_id: crate::catalog::snapshot::run_id_of(&path),
                    file: path,
                    line: None,
                    reason: e.to_string(),
                };
                crate::logging::warning!(
                    file = %damaged.file.display(),
                    run = damaged.run_id.as_deref().unwrap_or("?"),
                    error = %e,
                    "a pending run's snapshot cannot be read; the run is not in the catalog (listed by `consist db inspect`)"
                );
                if crate::catalog::snapshot::note_damaged(&crate::layout::catalog_dir(&self.db_path), name, &damaged) {
                    self.pending.remove(name);
                }
                None
            }
        }
    }

    /// The pending record of run `run_id`: its own snapshot, else a line of a pending batch.
    fn pending_record(&self, run_id: &str) -> Result<Option<RunRecord>> {
        if let Some(path) = self.pending_path(run_id) {
            return crate::catalog::snapshot::read(&path).map(Some);
        }
        Ok(self.pending_batches()?.remove(run_id))
    }

    /// The runs in pending batches of hits, by id.
    fn pending_batches(&self) -> Result<HashMap<String, RunRecord>> {
        let mut runs = HashMap::new();
        for (name, path) in self.pending_list() {
            if crate::catalog::snapshot::is_batch(&name) && path.exists() {
                runs.extend(crate::catalog::snapshot::read_all(&path)?.into_iter().map(|r| (r.run.id.clone(), r)));
            }
        }
        Ok(runs)
    }

    /// The pending queue's entries, each snapshot path where it is now (a project moved whole
    /// since: see [`Relocation`]).
    fn pending_list(&self) -> Vec<(String, PathBuf)> {
        self.pending.list().into_iter().map(|(name, path)| (name, self.here_path(path))).collect()
    }

    /// The snapshot queued for `run_id`, where it is now (see [`Catalog::pending_list`]).
    fn pending_path(&self, run_id: &str) -> Option<PathBuf> {
        self.pending.get(run_id).map(|path| self.here_path(path))
    }

    /// `path`, or where it is now if the project moved since it was recorded.
    fn here_path(&self, path: PathBuf) -> PathBuf {
        self.relocation.path(&path).unwrap_or(path)
    }

    /// Move pending snapshots into the store, in transactions of about 2,000 runs (an
    /// interrupted sync leaves the rest queued); returns how many runs were written. Entries
    /// holding a run still `running` stay queued so its final state is synced later.
    pub fn sync(&self) -> Result<usize> {
        // In chunks of about SYNC_CHUNK runs, each file read when its chunk is written: a queue
        // of 100,000 runs is never in memory at once.
        let (mut written, mut chunk, mut size) = (0, Vec::new(), 0);
        for (name, path) in self.pending_list() {
            let Some(records) = self.pending_entry(&name, path) else { continue };
            size += records.len();
            chunk.push((name, records));
            if size >= SYNC_CHUNK {
                written += self.sync_chunk(std::mem::take(&mut chunk))?;
                size = 0;
            }
        }
        written += self.sync_chunk(chunk)?;
        tracing::debug!(count = written, db = %self.location, "synced runs to the database");
        Ok(written)
    }

    /// Write one chunk of queue entries to the store in one transaction, then drop from the
    /// queue the entries whose runs all finished (a `running` snapshot waits for its end).
    fn sync_chunk(&self, entries: Vec<(String, Vec<RunRecord>)>) -> Result<usize> {
        let mut done = Vec::with_capacity(entries.len());
        let mut records = Vec::new();
        for (name, runs) in entries {
            done.push((name, runs.iter().all(|r| r.run.status.is_terminal())));
            records.extend(runs);
        }
        if !records.is_empty() {
            self.write_store(&records)?;
        }
        for (name, finished) in done {
            if finished {
                self.pending.remove(&name);
            }
        }
        Ok(records.len())
    }

    /// Counts, time range and runs per model of the stored runs, with how many are still pending.
    pub fn summary(&self) -> Result<CatalogSummary> {
        let mut summary = self.store.summary()?;
        summary.pending = self.pending_count();
        Ok(summary)
    }

    /// Stored scenarios (header runs), newest first, at most `limit`, with their step counts.
    pub fn scenarios(&self, limit: usize) -> Result<Vec<ScenarioSummary>> {
        self.store.scenarios(limit)
    }

    /// Runs matching `query`: the store's, merged with pending ones not stored yet (newest first).
    /// Works without a database file when everything is still pending.
    pub fn find_runs(&self, query: &RunQuery) -> Result<Vec<Run>> {
        self.find_runs_with(query, Vec::new())
    }

    /// [`Catalog::find_runs`], counting `unwritten` (a tracker's hits not yet in a snapshot
    /// batch) as pending too.
    pub(crate) fn find_runs_with(&self, query: &RunQuery, unwritten: Vec<RunRecord>) -> Result<Vec<Run>> {
        let mut pending = self.pending_records();
        pending.extend(unwritten);
        if pending.is_empty() {
            return if self.has_store() { self.store.find_runs(query) } else { Ok(Vec::new()) };
        }
        let stored = if self.has_store() {
            // The page of the union is among the store's first `offset + limit + pending` (a
            // pending run may also be stored, as `running`, and must not crowd others out).
            let widened =
                RunQuery { limit: query.limit.map(|l| l + query.offset + pending.len()), offset: 0, ..query.clone() };
            self.store.find_runs(&widened)?
        } else {
            Vec::new()
        };
        let mut by_id: BTreeMap<String, Run> = stored.into_iter().map(|r| (r.id.clone(), r)).collect();
        for record in pending {
            if query.matches(&record) {
                by_id.insert(record.run.id.clone(), record.run);
            } else {
                // Its newer state no longer matches: the stored (older) row must not stand in.
                by_id.remove(&record.run.id);
            }
        }
        Ok(ordered_page(by_id, query))
    }

    /// How many runs match `query`'s filters (order, offset and limit aside), runs still pending
    /// included: the total a paged listing of [`Catalog::find_runs`] pages through.
    pub fn count_runs(&self, query: &RunQuery) -> Result<usize> {
        let query = query.unpaged();
        let pending: Vec<RunRecord> = self.pending_records();
        let stored = if self.has_store() { self.store.count_runs(&query)? } else { 0 };
        if pending.is_empty() {
            return Ok(stored);
        }
        // A pending run's own state counts, not an older stored row of it (only pending runs the
        // query's own `ids` allow can be among the stored matches).
        let ids: Vec<String> = pending
            .iter()
            .map(|r| r.run.id.clone())
            .filter(|id| query.ids.is_empty() || query.ids.contains(id))
            .collect();
        let stored_twins = if self.has_store() && !ids.is_empty() {
            self.store.count_runs(&RunQuery { ids, ..query.clone() })?
        } else {
            0
        };
        let pending_matching = pending.iter().filter(|r| query.matches(r)).count();
        // Two reads: a sync between them (another host) must not make the count wrap.
        Ok(stored.saturating_sub(stored_twins) + pending_matching)
    }

    /// Until the returned session is dropped, this thread's reads of the catalog share one
    /// connection (a DuckDB file is opened once instead of once per read). The file is held
    /// meanwhile: other processes' writers, and this process's other threads (a tracker's writer),
    /// wait for the session, so it spans one batch of reads that nothing on this thread waits
    /// on another thread during (the UI holds one while it reads a page, not while sending it).
    /// Not public: a user who flushed a tracker inside a session would wait for the lock timeout
    /// and get `DatabaseBusy`.
    #[cfg(feature = "cli")]
    pub(crate) fn read_session(&self) -> Result<crate::store::Session> {
        if !self.has_store() {
            return Ok(crate::store::Session::default());
        }
        self.store.read_session()
    }

    /// Keep the store open from this thread's next write until the session is dropped (see
    /// [`crate::store::Store::write_session`]); without one if the store cannot start a session.
    pub(crate) fn write_session(&self) -> crate::store::Session {
        if !self.has_store() {
            return crate::store::Session::default();
        }
        self.store.write_session().unwrap_or_else(|e| {
            tracing::debug!(error = %e, "writing without a session");
            crate::store::Session::default()
        })
    }

    /// Runs whose id, model, tags, description or config contain `text` (case-insensitive), the
    /// store's merged with pending ones, newest first ([`RunQuery::text`] with other filters).
    pub fn search_runs(&self, text: &str, limit: usize) -> Result<Vec<Run>> {
        self.find_runs(&RunQuery::default().text(text).limit(limit))
    }

    /// The artifacts a run read and wrote, from its pending snapshot if it has not reached the
    /// store yet (reading never forces a database write).
    pub fn run_artifacts(&self, run_id: &str) -> Result<Vec<(Direction, Artifact)>> {
        let found = if let Some(record) = self.pending_record(run_id)? {
            record_artifacts(record)
        } else if self.has_store() {
            self.store.run_artifacts(run_id)?
        } else {
            return Err(Error::RunNotFound(run_id.to_owned()));
        };
        Ok(found.into_iter().map(|(direction, a)| (direction, self.here(a))).collect())
    }

    /// Everything recorded about one run: its pending snapshot, or the store's record.
    pub fn run_record(&self, run_id: &str) -> Result<RunRecord> {
        if let Some(record) = self.pending_record(run_id)? {
            return Ok(record);
        }
        if !self.has_store() {
            return Err(Error::RunNotFound(run_id.to_owned()));
        }
        let record = self.store.run_record(run_id)?.ok_or_else(|| Error::RunNotFound(run_id.to_owned()))?;
        crate::ids::check_record(&record, &self.location)?;
        Ok(record)
    }

    /// Everything recorded about each of these runs (pending snapshots first, the rest from the
    /// store in one pass); unknown ids are left out.
    pub fn run_records(&self, ids: &[String]) -> Result<Vec<RunRecord>> {
        let mut records = Vec::with_capacity(ids.len());
        let mut stored = Vec::new();
        // Batches are read once for all ids, not once per id.
        let mut batched = self.pending_batches()?;
        for id in ids {
            match self.pending_path(id) {
                Some(path) => records.push(crate::catalog::snapshot::read(&path)?),
                None => match batched.remove(id) {
                    Some(record) => records.push(record),
                    None => stored.push(id.clone()),
                },
            }
        }
        if !stored.is_empty() && self.has_store() {
            let found = self.store.run_records(&stored)?;
            // Their ids may become file names (purge, merge, rebuild): refused here if they could
            // name anything but one file.
            crate::ids::check_records(&found, &self.location)?;
            records.extend(found);
        }
        Ok(records)
    }

    /// The run whose id is `id`, or the only run whose id starts with `id` (like git).
    pub fn resolve_run(&self, id: &str) -> Result<Run> {
        let query = RunQuery { id_prefix: Some(id.to_owned()), ..RunQuery::default() };
        pick_run(id, self.find_runs(&query)?)
    }

    /// The scenario `name_or_id` names: the latest scenario of that name (a header run whose
    /// model is the name), else the run with that id or unique id prefix.
    pub fn resolve_scenario(&self, name_or_id: &str) -> Result<Run> {
        let query = RunQuery { model: Some(name_or_id.to_owned()), ..RunQuery::default() };
        let named = self.find_runs(&query)?.into_iter().find(Run::is_scenario);
        match named {
            Some(header) => Ok(header),
            None => self.resolve_run(name_or_id),
        }
    }

    /// The store, which must hold a database (else a "no such database" error naming the path).
    fn stored(&self) -> Result<&dyn Store> {
        if !self.has_store() {
            return Err(Error::no_database(&self.db_path));
        }
        Ok(self.store.as_ref())
    }

    /// Run read-only `sql` over the stored runs (see [`Store::query`]: per-key artifact views,
    /// writes refused). Runs still pending (e.g. hits a process deferred) are not in the store
    /// until [`Catalog::sync`] or the next tracker that writes it; [`Catalog::pending_count`]
    /// says how many.
    pub fn query(&self, sql: &str) -> Result<QueryRows> {
        self.query_with(sql, QueryAccess::CatalogOnly)
    }

    /// [`Catalog::query`] with the given reach beyond the catalog (see [`QueryAccess`]).
    pub fn query_with(&self, sql: &str, access: QueryAccess) -> Result<QueryRows> {
        self.stored()?.query(sql, access)
    }

    /// Write every stored provenance table as a Parquet file into `dir` (runs still pending are
    /// not included, as for [`Catalog::query`]); returns the files.
    pub fn export_parquet(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        self.stored()?.export_parquet(dir)
    }

    /// The per-key artifact views [`Catalog::query`] offers.
    pub fn artifact_views(&self) -> Result<Vec<ArtifactView>> {
        self.stored()?.artifact_views()
    }

    /// A stored artifact by id (or the start of one), else the newest stored with that key.
    pub fn find_artifact(&self, id_or_key: &str) -> Result<Artifact> {
        let found =
            self.stored()?.find_artifact(id_or_key)?.ok_or_else(|| Error::ArtifactNotFound(id_or_key.to_owned()))?;
        Ok(self.here(found))
    }

    /// The lineage tree of a stored artifact (by id or key, as [`Catalog::find_artifact`]),
    /// expanding at most `max_depth` producing-run levels: one database read.
    pub fn lineage(&self, id_or_key: &str, max_depth: usize) -> Result<crate::lineage::LineageNode> {
        self.stored()?.lineage(id_or_key, max_depth)?.ok_or_else(|| Error::ArtifactNotFound(id_or_key.to_owned()))
    }

    /// The first `rows` rows of a Parquet or CSV artifact (by id or key, as
    /// [`Catalog::find_artifact`]), with the artifact.
    pub fn preview(&self, id_or_key: &str, rows: usize) -> Result<(Artifact, QueryRows)> {
        let artifact = self.table_artifact(id_or_key)?;
        let rows = crate::store::file_rows(&artifact.path, artifact.driver, rows)?;
        Ok((artifact, rows))
    }

    /// The columns and their types of a Parquet or CSV artifact (found as
    /// [`Catalog::preview`] finds it), as DuckDB reads the file.
    pub fn artifact_schema(&self, id_or_key: &str) -> Result<Vec<(String, String)>> {
        let artifact = self.table_artifact(id_or_key)?;
        crate::store::file_schema(&artifact.path, artifact.driver)
    }

    /// The artifact `id_or_key` names, if it is a Parquet or CSV file that is still there (else
    /// an error saying which it is not).
    fn table_artifact(&self, id_or_key: &str) -> Result<Artifact> {
        let artifact = self.find_artifact(id_or_key)?;
        if !matches!(artifact.driver, crate::artifact::Driver::Parquet | crate::artifact::Driver::Csv) {
            return Err(Error::Query {
                reason: format!(
                    "`{}` ({}) is a {} artifact; previews read Parquet or CSV artifacts{}",
                    artifact.key,
                    artifact.id,
                    artifact.driver,
                    match artifact.driver {
                        crate::artifact::Driver::Directory =>
                            " (its files are under its path; an output set reads with FrameSet::read)",
                        _ => "",
                    }
                ),
            });
        }
        if !artifact.path.exists() {
            return Err(Error::OutputLoad {
                run_id: artifact.run_id.clone().unwrap_or_default(),
                key: artifact.key.clone(),
                path: artifact.path.clone(),
                reason: match artifact.run_id {
                    Some(_) => "the file does not exist any more (see `consist validate`)".into(),
                    None => "the file does not exist any more".into(),
                },
            });
        }
        Ok(artifact)
    }
}

/// A record's inputs and outputs, by direction then key (as the stores list them).
pub(crate) fn record_artifacts(record: RunRecord) -> Vec<(Direction, Artifact)> {
    let inputs = record.inputs.into_iter().map(|a| (Direction::Input, a));
    let outputs = record.outputs.into_iter().map(|a| (Direction::Output, a));
    let mut all: Vec<(Direction, Artifact)> = inputs.chain(outputs).collect();
    all.sort_by(|a, b| (a.0.as_str(), &a.1.key).cmp(&(b.0.as_str(), &b.1.key)));
    all
}

/// About how many runs [`Catalog::sync`] writes in one transaction.
const SYNC_CHUNK: usize = 2_000;

/// Whether a pending queue holding `backlog` is due for the store: an executed run always; hits
/// on a shared (server) catalog always, which other hosts read without this queue; on a DuckDB
/// catalog once [`HIT_BATCHES_WAITING`] batches of them wait.
fn due(backlog: pending::Backlog, shared: bool) -> bool {
    backlog.runs || backlog.hit_batches >= if shared { 1 } else { HIT_BATCHES_WAITING }
}

/// Among the runs whose id starts with `id`, the one it names: the run with exactly that id,
/// else the only one; none is [`Error::RunNotFound`], several [`Error::AmbiguousRun`] naming
/// up to five.
fn pick_run(id: &str, mut found: Vec<Run>) -> Result<Run> {
    if let Some(exact) = found.iter().position(|r| r.id == id) {
        return Ok(found.swap_remove(exact));
    }
    match found.len() {
        0 => Err(Error::RunNotFound(id.to_owned())),
        1 => Ok(found.remove(0)),
        n => {
            let shown: Vec<&str> = found.iter().take(5).map(|r| r.id.as_str()).collect();
            let more = if n > 5 { format!(" and {} more", n - 5) } else { String::new() };
            Err(Error::AmbiguousRun { prefix: id.to_owned(), candidates: format!("{}{more}", shown.join(", ")) })
        }
    }
}

/// Runs in the query's order, from its offset, at most its limit.
fn ordered_page(by_id: BTreeMap<String, Run>, query: &RunQuery) -> Vec<Run> {
    let mut runs: Vec<Run> = by_id.into_values().collect();
    runs.sort_by(|a, b| query.order.compare(a, b));
    runs.into_iter().skip(query.offset).take(query.limit.unwrap_or(usize::MAX)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, created_s: i64) -> Run {
        let at = chrono::DateTime::from_timestamp(created_s, 0).unwrap();
        Run { created_at: at, started_at: at, ..Run::starting("step", serde_json::Map::new(), at) }.with_id(id)
    }

    #[test]
    fn a_queue_is_due_for_an_executed_run_or_enough_hits() {
        let backlog = |hit_batches, runs| pending::Backlog { hit_batches, runs };
        assert!(!due(backlog(0, false), false) && !due(backlog(0, false), true));
        assert!(due(backlog(0, true), false), "an executed run goes at once");
        assert!(!due(backlog(HIT_BATCHES_WAITING - 1, false), false), "hits wait on DuckDB");
        assert!(due(backlog(HIT_BATCHES_WAITING, false), false));
        assert!(due(backlog(1, false), true), "a shared catalog gets its hits now");
    }

    #[test]
    fn a_run_id_or_prefix_names_one_run_or_says_why_not() {
        let runs = || vec![run("clean_ab12", 1), run("clean_ab123", 2), run("clean_cd", 3)];
        assert_eq!(pick_run("clean_ab12", runs()).unwrap().id, "clean_ab12", "an exact id beats a longer match");
        assert_eq!(pick_run("clean_c", vec![run("clean_cd", 3)]).unwrap().id, "clean_cd");
        assert!(matches!(pick_run("nope", Vec::new()), Err(Error::RunNotFound(id)) if id == "nope"));
        let many: Vec<Run> = (0..7).map(|i| run(&format!("clean_{i}"), i)).collect();
        match pick_run("clean_", many) {
            Err(Error::AmbiguousRun { prefix, candidates }) => {
                assert_eq!(prefix, "clean_");
                assert!(candidates.ends_with(" and 2 more") && candidates.matches(", ").count() == 4, "{candidates}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn merged_listings_are_newest_first_ties_by_id_and_limited() {
        let by_id: BTreeMap<String, Run> = [run("a_1", 5), run("b_1", 9), run("c_1", 5), run("d_1", 1)]
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let ids = |runs: Vec<Run>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let page = |q: RunQuery| ids(ordered_page(by_id.clone(), &q));
        assert_eq!(page(RunQuery::default()), ["b_1", "c_1", "a_1", "d_1"]);
        assert_eq!(page(RunQuery::default().limit(2)), ["b_1", "c_1"]);
        assert_eq!(page(RunQuery::default().offset(1).limit(2)), ["c_1", "a_1"]);
        let oldest = crate::store::RunOrder { by: crate::store::RunSort::Created, ascending: true };
        assert_eq!(page(RunQuery::default().order(oldest)), ["d_1", "a_1", "c_1", "b_1"]);
        let by_model = crate::store::RunOrder { by: crate::store::RunSort::Model, ascending: false };
        assert_eq!(page(RunQuery::default().order(by_model).offset(3)), ["d_1"], "one model: newest first");
    }
}
