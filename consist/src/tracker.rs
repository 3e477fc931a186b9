//! The tracker: entry point that owns the run directory, the catalog and the cache policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::artifact::Artifact;
use crate::catalog::Catalog;
use crate::engine::execute::BodyKind;
use crate::engine::output::Output;
use crate::engine::writer::Writer;
use crate::engine::{CacheMode, Engine, Hydration, Validation};
use crate::engine::{Outputs, RunResult, StepResult};
use crate::error::{Error, Result};
use crate::files::hash::{FileHasher, HashingStrategy};
use crate::lineage::LineageNode;
use crate::location::CatalogLocation;
use crate::run::Run;
use crate::scenario::ScenarioBuilder;
use crate::step::{StepBuilder, StepCall};
use crate::store::{ArtifactQuery, Direction, RunArtifacts, RunQuery};

/// The catalog a builder was given, parsed when the tracker opens.
#[derive(Debug, Clone)]
enum RequestedCatalog {
    DuckDb(PathBuf),
    Location(String),
}

/// Options for [`Tracker`]; finish with [`open`](Self::open).
#[derive(Debug, Clone)]
#[must_use = "call .open() to get a Tracker"]
pub struct TrackerBuilder {
    run_dir: PathBuf,
    catalog: Option<RequestedCatalog>,
    hashing: HashingStrategy,
    cache_mode: CacheMode,
    validation: Validation,
    hydration: Hydration,
    lock_timeout: Duration,
    flush_every: usize,
    mounts: Vec<(String, PathBuf)>,
    toolchain: Option<crate::Toolchain>,
    toolchain_in_signature: bool,
    cache_epoch: u64,
    hooks: crate::engine::hooks::Hooks,
    lease_ttl: Duration,
    remote: Option<String>,
    remote_read_only: Option<bool>,
    defer_hit_writes: Option<bool>,
}

/// The environment variable that turns on [`TrackerBuilder::defer_hit_writes`] (`1`, `true`,
/// `yes`) when the code does not say.
pub const DEFER_HITS_ENV: &str = "CONSIST_DEFER_HITS";

/// Whether environment variable `name` says yes (`1`, `true`, `yes`).
fn env_says_yes(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

impl TrackerBuilder {
    /// Keep run outputs in an object store as well (see [`crate::Remote`]): `s3://bucket/prefix`,
    /// `gs://`, `az://`, `http(s)://` or `file:///dir`. Default: `$CONSIST_REMOTE` if set, else
    /// none. An executed step uploads its outputs before it is recorded; a step whose cache source
    /// ran on a host whose files this host does not have downloads them, checking each hash
    /// (only the outputs the step returns, and inputs a body is about to read). Credentials come
    /// from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), never from here.
    pub fn remote(mut self, url: &str) -> Self {
        self.remote = Some(url.to_owned());
        self
    }

    /// Only read from the remote, never write to it (default `false`, or
    /// `$CONSIST_REMOTE_READ_ONLY=1`): a developer's tracker that uses what CI uploaded without
    /// adding to it.
    pub fn remote_read_only(mut self, read_only: bool) -> Self {
        self.remote_read_only = Some(read_only);
        self
    }

    /// How long a claim on a signature, and the liveness of an executing run, last without being
    /// renewed on a catalog shared by many hosts (PostgreSQL; default 30 s). The tracker renews
    /// its leases every third of this while it holds them; a host that dies lets them lapse
    /// after at most this long, and then a twin waiting elsewhere executes and `consist db
    /// fail-zombies` marks its runs failed. Shorter notices dead hosts sooner, at the cost of
    /// more renewals.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(300));
        self
    }

    /// Default cache hydration (default [`Hydration::Metadata`]).
    pub fn hydration(mut self, hydration: Hydration) -> Self {
        self.hydration = hydration;
        self
    }

    /// Default validation of cache hits (default [`Validation::Lazy`]).
    pub fn validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// The catalog: a DuckDB file path (`&str`, `String`, `Path`, `PathBuf`) or a `postgres://`
    /// URL ([`CatalogLocation::parse`]). Default: `$CONSIST_DB` if set, else
    /// `<run_dir>/provenance.duckdb`. A location that cannot be used is reported by
    /// [`open`](Self::open).
    pub fn catalog(mut self, location: impl AsRef<Path>) -> Self {
        let location = location.as_ref();
        self.catalog = Some(match location.to_str() {
            Some(text) => RequestedCatalog::Location(text.to_owned()),
            None => RequestedCatalog::DuckDb(location.to_owned()),
        });
        self
    }

    /// The catalog as a DuckDB file path, never read as a URL (what [`catalog`](Self::catalog)
    /// does with a path).
    pub fn db_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.catalog = Some(RequestedCatalog::DuckDb(path.into()));
        self
    }

    /// Mount `dir` as `name`: files under it are recorded as `name://relative/path`, and such
    /// URIs resolve through the mount table of whichever process reads them, so a catalog stays
    /// valid where the same data lives elsewhere (another machine, another checkout). Names are
    /// lowercase (`inputs`, `scratch-2`); a bad or repeated name is reported by
    /// [`open`](Self::open). Mounts change no signature: raw inputs are identified by content.
    pub fn mount(mut self, name: &str, dir: impl Into<PathBuf>) -> Self {
        self.mounts.push((name.to_owned(), dir.into()));
        self
    }

    /// The toolchain recorded for steps written with the builder API: pass
    /// `consist::toolchain!()`, which captures this crate's compiler and `Cargo.lock` (`#[step]`
    /// functions capture their own). Default: what the process can tell at run time.
    pub fn toolchain(mut self, toolchain: crate::Toolchain) -> Self {
        self.toolchain = Some(toolchain);
        self
    }

    /// Make the toolchain (rustc, target, profile, `Cargo.lock`) part of every step's code
    /// identity, so that a compiler or dependency upgrade re-runs everything (default `false`:
    /// recorded in `meta.toolchain` and shown by `consist diff`, not hashed).
    pub fn toolchain_in_signature(mut self, yes: bool) -> Self {
        self.toolchain_in_signature = yes;
        self
    }

    /// A cache epoch joined to every step's code identity (default `0`: none, signatures as
    /// without it). Bump it to re-run everything after a change no identity sees (a compiler or
    /// data-source change, a bug outside the crate): every step misses once, and its miss names
    /// `cache epoch`. Beside each step's own `#[step(version = "...")]`, which re-runs one step.
    /// Recorded in each run (`meta.cache_epoch`); `consist steps` shows the last run's.
    pub fn cache_epoch(mut self, epoch: u64) -> Self {
        self.cache_epoch = epoch;
        self
    }

    /// Call `hook` with a run's record when the run is about to execute its body (a miss), for
    /// notifications, metrics or logs. An error it returns, or a panic, is reported on stderr
    /// and changes nothing: not what is recorded, not the step's result. Several hooks run in
    /// the order given, on the thread that runs the step (`Tracker::map`: many threads).
    pub fn on_run_start(mut self, hook: impl Fn(&crate::RunRecord) -> StepResult<()> + Send + Sync + 'static) -> Self {
        self.hooks.start.push(Arc::new(hook));
        self
    }

    /// Call `hook` with a run's record when the run is completed: executed, or a cache hit
    /// (`record.run.is_cache_hit()`), as it will be recorded. See [`on_run_start`](Self::on_run_start).
    pub fn on_run_complete(
        mut self,
        hook: impl Fn(&crate::RunRecord) -> StepResult<()> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.complete.push(Arc::new(hook));
        self
    }

    /// Call `hook` with a run's record when the run failed (its error in `meta["error"]`), once
    /// it is recorded `failed`. See [`on_run_start`](Self::on_run_start).
    pub fn on_run_failed(mut self, hook: impl Fn(&crate::RunRecord) -> StepResult<()> + Send + Sync + 'static) -> Self {
        self.hooks.failed.push(Arc::new(hook));
        self
    }

    /// How raw input files are identified (default [`HashingStrategy::Full`]).
    pub fn hashing(mut self, strategy: HashingStrategy) -> Self {
        self.hashing = strategy;
        self
    }

    /// Cache policy (default [`CacheMode::Reuse`]).
    pub fn cache_mode(mut self, mode: CacheMode) -> Self {
        self.cache_mode = mode;
        self
    }

    /// How long to wait for another process that holds the database (default 60 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Write finished runs to the database once this many have piled up (default 256), and also
    /// 2 s after a run finished, on [`Tracker::flush`] and when the tracker is dropped (which
    /// waits for it). The writes happen on a background thread: a step never waits for the
    /// database. Cache hits are written to a durable batch file at those moments; on a DuckDB
    /// catalog a batch smaller than `runs` reaches the database with the next executed run, or at
    /// the latest when the tracker is dropped or flushed (see [`Self::defer_hit_writes`]).
    pub fn flush_every(mut self, runs: usize) -> Self {
        self.flush_every = runs.max(1);
        self
    }

    /// Let a process that only hits leave its hits in the pending queue at exit instead of
    /// writing them to a DuckDB file (default `false`, or `$CONSIST_DEFER_HITS`). The default
    /// keeps the promise that the file holds every run of a process once its tracker is dropped
    /// or flushed, for every tool that reads it (Python Consist, the duckdb shell, a notebook).
    /// Deferring saves such a process the fixed cost of opening, writing and checkpointing the
    /// file (~80 ms here): worth it for sweeps of thousands of short, mostly-hit processes. Their
    /// hits are durable either way, every consist reader merges the queue, and it reaches the
    /// file with the next executed run, once 16 batches wait, on [`Tracker::flush`] or by
    /// `consist db sync`. A PostgreSQL catalog is always written at once.
    pub fn defer_hit_writes(mut self, defer: bool) -> Self {
        self.defer_hit_writes = Some(defer);
        self
    }

    /// Open the tracker: create the run directory and start its catalog writer, which syncs runs
    /// that earlier processes left pending in the background. A DuckDB file is not opened until
    /// there is something to write or read; a PostgreSQL server is connected to (and its schema
    /// migrated) now.
    pub fn open(self) -> Result<Tracker> {
        let run_dir_err = |source| Error::RunDir { path: self.run_dir.clone(), source };
        let readonly = self.cache_mode == CacheMode::Readonly;
        let run_dir = std::path::absolute(&self.run_dir).map_err(run_dir_err)?;
        let mut mounts = crate::mounts::Mounts::default();
        for (name, dir) in &self.mounts {
            mounts.add(name, dir)?;
        }
        mounts.check_outside(&run_dir)?;
        if self.toolchain_in_signature && self.toolchain.is_none() {
            crate::logging::warning!(
                "toolchain_in_signature without .toolchain(consist::toolchain!()): steps written with the builder API \
                 know no rustc version or Cargo.lock, so an upgrade does not invalidate them (#[step]s capture their own)"
            );
        }
        let location = match self.catalog {
            Some(RequestedCatalog::DuckDb(path)) => CatalogLocation::DuckDb(path),
            Some(RequestedCatalog::Location(text)) => CatalogLocation::parse(&text)?,
            None => CatalogLocation::from_env()?
                .unwrap_or_else(|| CatalogLocation::DuckDb(run_dir.join("provenance.duckdb"))),
        };
        let location = match location {
            CatalogLocation::DuckDb(p) => {
                let p = std::path::absolute(&p).map_err(Error::io("resolving database path", p))?;
                // Checked before anything is created, so a typo leaves no empty run directory; a
                // directory that creating the run directory makes (`study/` for `study/runs`) is fine.
                match p.parent() {
                    Some(dir) if !dir.is_dir() && !run_dir.starts_with(dir) => {
                        return Err(Error::DatabaseDir { path: p });
                    }
                    _ => CatalogLocation::DuckDb(p),
                }
            }
            server => server,
        };
        if !readonly {
            std::fs::create_dir_all(crate::layout::snapshots_dir(&run_dir)).map_err(run_dir_err)?;
        }
        if !readonly && let Some(db) = location.duckdb_path() {
            // The catalog records where it is used from, so a project moved later finds its files.
            let _ = std::fs::create_dir_all(crate::layout::catalog_dir(db));
        }
        let catalog = Arc::new(Catalog::open(&location, self.lock_timeout)?.with_mounts(mounts));
        // The local cache must be this catalog's (one stat for a DuckDB file that has not
        // changed; a server is asked now, as every cache miss asks it: one that refuses us is an
        // error, one that cannot be reached is not, and the steps carry on without it).
        catalog.check_identity()?;
        if !readonly {
            catalog.note_run_dir(&run_dir);
        }
        let session = uuid::Uuid::new_v4().simple().to_string();
        // Hashes of raw inputs are remembered beside the catalog for later processes (not by a
        // read-only tracker, which writes nothing).
        let files = match readonly {
            true => FileHasher::default(),
            false => FileHasher::persisted(crate::layout::catalog_dir(catalog.db_path()).join("hashes")),
        };
        let read_only_remote = self.remote_read_only.unwrap_or_else(|| env_says_yes("CONSIST_REMOTE_READ_ONLY"));
        let remote = match &self.remote {
            Some(url) => Some(crate::Remote::open(url, read_only_remote)?),
            None => crate::Remote::from_env(read_only_remote)?,
        };
        let claims = crate::engine::claim::Claims::new(Arc::clone(&catalog), session.clone(), self.lease_ttl)
            .map_err(Error::io("starting the lease heartbeat thread of", run_dir.clone()))?;
        let defer_hits = self.defer_hit_writes.unwrap_or_else(|| env_says_yes(DEFER_HITS_ENV));
        let writer = (!readonly)
            .then(|| {
                let batches = crate::engine::writer::Batches { every: self.flush_every, defer_hits };
                Writer::start(Arc::clone(&catalog), run_dir.clone(), session[..12].to_owned(), batches)
            })
            .transpose()?;
        Ok(Tracker {
            inner: Arc::new(Engine {
                run_dir,
                hashing: self.hashing,
                cache_mode: self.cache_mode,
                validation: self.validation,
                hydration: self.hydration,
                catalog,
                files,
                toolchain: self.toolchain.unwrap_or_else(crate::Toolchain::at_run_time),
                toolchain_in_signature: self.toolchain_in_signature,
                cache_epoch: self.cache_epoch,
                session,
                writer,
                unqueued: std::sync::Mutex::default(),
                claims,
                remote: remote.map(Arc::new),
                hooks: self.hooks,
            }),
        })
    }
}

/// `f(context, value)` for each value on rayon's pool, results in the order of `values`, the first
/// error once the calls under way have ended (what [`Tracker::map`] and
/// [`crate::Scenario::map`] do).
pub(crate) fn map_on_all_cores<C, V, R, E, F>(
    context: &C,
    values: impl IntoIterator<Item = V>,
    f: F,
) -> std::result::Result<Vec<R>, E>
where
    C: Sync,
    V: Send,
    R: Send,
    E: Send,
    F: Fn(&C, V) -> std::result::Result<R, E> + Sync,
{
    use rayon::prelude::*;
    let values: Vec<V> = values.into_iter().collect();
    values.into_par_iter().map(|v| f(context, v)).collect()
}

/// Tracks step runs: computes signatures, reuses cached outputs, records provenance.
///
/// Cheap to clone (shared state); dropping the last clone writes its records to the database,
/// cache hits included, unless [`TrackerBuilder::defer_hit_writes`] was asked for.
#[derive(Clone)]
pub struct Tracker {
    pub(crate) inner: Arc<Engine>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("run_dir", &self.inner.run_dir)
            .field("db_path", &self.db_path())
            .field("cache_mode", &self.inner.cache_mode)
            .finish_non_exhaustive()
    }
}

impl Tracker {
    /// Start configuring a tracker whose runs live under `run_dir`.
    pub fn builder(run_dir: impl Into<PathBuf>) -> TrackerBuilder {
        TrackerBuilder {
            run_dir: run_dir.into(),
            catalog: None,
            hashing: HashingStrategy::default(),
            cache_mode: CacheMode::default(),
            validation: Validation::default(),
            hydration: Hydration::default(),
            lock_timeout: Duration::from_secs(60),
            flush_every: 256,
            mounts: Vec::new(),
            toolchain: None,
            toolchain_in_signature: false,
            cache_epoch: 0,
            hooks: Default::default(),
            lease_ttl: crate::engine::claim::LEASE_TTL,
            remote: None,
            remote_read_only: None,
            defer_hit_writes: None,
        }
    }

    /// Declare a closure step run named `name` (the model name in the database).
    pub fn step(&self, name: &str) -> StepBuilder<'_> {
        StepBuilder::new(self, name)
    }

    /// Run a `#[step]` call: a cache hit returns the recorded outputs without executing (its
    /// value is loaded when read: see [`RunResult`]).
    pub fn run<T: 'static, S: Outputs + 'static>(&self, call: StepCall<'_, T, S>) -> Result<RunResult<T>> {
        let StepCall { spec, body, unwrap } = call;
        Ok(self.inner.run_spec(spec, body, BodyKind::Step)?.unwrapped(unwrap))
    }

    /// Call `f` with this tracker once per value, on all cores (rayon's global pool; set
    /// `RAYON_NUM_THREADS` to limit it), and return the results in the order of `values`: e.g.
    /// one chain of steps per parameter value of a sweep, after the shared preprocessing. Steps
    /// are the same as when called one after the other (same signatures, so a sequential run
    /// afterwards is all hits), and every run is recorded through this tracker's one writer. The
    /// first error is returned once the calls under way have ended; runs that finished are
    /// recorded either way.
    ///
    /// ```no_run
    /// # use consist::{Tracker, Value};
    /// # fn main() -> consist::Result<()> {
    /// let tracker = Tracker::builder("./runs").open()?;
    /// let totals = tracker.map([0.1, 0.2, 0.5], |t, beta| {
    ///     let r = t.step("simulate").code_version("1").config(&beta).outputs(["total"])
    ///         .run(|_| Ok(Value(beta * 100.0)))?;
    ///     Ok::<_, consist::Error>(r.value()?.0)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn map<V, R, E, F>(&self, values: impl IntoIterator<Item = V>, f: F) -> std::result::Result<Vec<R>, E>
    where
        V: Send,
        R: Send,
        E: Send,
        F: Fn(&Tracker, V) -> std::result::Result<R, E> + Sync,
    {
        map_on_all_cores(self, values, f)
    }

    /// Begin configuring a scenario named `name` (its header run id is `<name>_<16 hex>`, with the
    /// name made file-safe).
    pub fn scenario(&self, name: &str) -> ScenarioBuilder<'_> {
        ScenarioBuilder::new(self, name)
    }

    /// The run directory (absolute).
    pub fn run_dir(&self) -> &Path {
        &self.inner.run_dir
    }

    /// The database file (absolute).
    pub fn db_path(&self) -> &Path {
        self.inner.catalog.db_path()
    }

    /// The catalog (store, signature index, pending queue).
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The remote outputs are kept in, if any (see [`TrackerBuilder::remote`]).
    pub fn remote(&self) -> Option<&crate::Remote> {
        self.inner.remote.as_deref()
    }

    /// Write pending runs, waiting hits included, to the database now; returns how many were
    /// written.
    pub fn flush(&self) -> Result<usize> {
        self.inner.flush()
    }

    /// Recorded runs matching `query`, newest first (including runs not yet in the database).
    pub fn find_runs(&self, query: &RunQuery) -> Result<Vec<Run>> {
        self.inner.catalog.find_runs_with(query, self.inner.unwritten_hits())
    }

    /// The artifacts a run read and wrote, by artifact key (runs not yet in the database are
    /// answered from their snapshots, without a database write).
    pub fn artifacts_for_run(&self, run_id: &str) -> Result<RunArtifacts> {
        let mut all = RunArtifacts::default();
        let unwritten = self.inner.unwritten_hits().into_iter().find(|r| r.run.id == run_id);
        let found = match unwritten {
            Some(record) => crate::catalog::record_artifacts(record),
            None => self.inner.catalog.run_artifacts(run_id)?,
        };
        for (direction, artifact) in found {
            let side = match direction {
                Direction::Input => &mut all.inputs,
                Direction::Output => &mut all.outputs,
            };
            side.insert(artifact.key.clone(), self.here(&artifact));
        }
        Ok(all)
    }

    /// Artifacts matching `query`, newest first, e.g. [`ArtifactQuery::created_by`] a run.
    /// Pending runs are synced to the database first.
    pub fn find_artifacts(&self, query: &ArtifactQuery) -> Result<Vec<Artifact>> {
        self.inner.flush()?;
        if !self.inner.catalog.has_store() {
            return Ok(Vec::new());
        }
        Ok(self.inner.catalog.store().find_artifacts(query)?.iter().map(|a| self.here(a)).collect())
    }

    /// `artifact` with its path as found on this machine (see [`Tracker::load`]); as recorded
    /// when it cannot be found (a query still lists it; loading it says why).
    fn here(&self, artifact: &Artifact) -> Artifact {
        self.inner.catalog.locate(artifact.clone(), Some(&self.inner.run_dir)).unwrap_or_else(|_| artifact.clone())
    }

    /// The artifact `key` names: the output under `key` of the latest run (a cache hit included,
    /// so after an all-hit rerun, what that rerun returned). Pending runs are synced to the
    /// database first.
    pub fn get_artifact(&self, key: &str) -> Result<Option<Artifact>> {
        self.inner.flush()?;
        if !self.inner.catalog.has_store() {
            return Ok(None);
        }
        Ok(self.inner.catalog.store().latest_artifact(key)?.map(|a| self.here(&a)))
    }

    /// The lineage tree of an artifact to `max_depth` producing-run levels (`0`: the artifact
    /// alone). Pending runs are synced to the database first.
    pub fn artifact_lineage(&self, artifact_id: &str, max_depth: usize) -> Result<LineageNode> {
        self.inner.flush()?;
        if !self.inner.catalog.has_store() {
            return Err(Error::ArtifactNotFound(artifact_id.to_owned()));
        }
        self.inner.catalog.lineage(artifact_id, max_depth)
    }

    /// Copy artifacts' files into `dir` (created if needed), e.g. cached outputs that live in an
    /// earlier run's directory. Each copy is checked against the recorded hash. Returns the new
    /// paths, in order.
    pub fn materialize(&self, artifacts: &[Artifact], dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(Error::io("creating materialization directory", dir))?;
        let mut copied = Vec::with_capacity(artifacts.len());
        let mut taken: std::collections::HashMap<PathBuf, &str> = std::collections::HashMap::new();
        for artifact in artifacts {
            let name = artifact.path.file_name().ok_or_else(|| Error::ArtifactNotFound(artifact.id.clone()))?;
            let dest = dir.join(name);
            if let Some(other) = taken.insert(dest.clone(), &artifact.id) {
                return Err(Error::Refused(format!(
                    "artifacts {other} and {} would both be materialized as {}; materialize them into separate \
                     directories (nothing was copied)",
                    artifact.id,
                    dest.display()
                )));
            }
        }
        for artifact in artifacts {
            let mut artifact = self.inner.catalog.locate(artifact.clone(), Some(&self.inner.run_dir))?;
            if self.inner.verify_unchanged(&artifact).is_err()
                && let Some(fetched) = self.inner.fetch(&artifact)
            {
                artifact = fetched;
            }
            let artifact = &artifact;
            let name = artifact.path.file_name().ok_or_else(|| Error::ArtifactNotFound(artifact.id.clone()))?;
            let dest = dir.join(name);
            crate::engine::hydrate::copy_checked(artifact, &dest)?;
            copied.push(dest);
        }
        Ok(copied)
    }

    /// Resolve an artifact URI on this machine: `./` against this tracker's run directory,
    /// `name://` through its mounts (a relative part that would leave its directory is refused:
    /// see [`crate::resolve_uri`]).
    pub fn resolve_uri(&self, uri: &str) -> Result<PathBuf> {
        self.inner.catalog.mounts().resolve(uri, &self.inner.run_dir)
    }

    /// This tracker's mounts (see [`TrackerBuilder::mount`]).
    pub fn mounts(&self) -> &crate::mounts::Mounts {
        self.inner.catalog.mounts()
    }

    /// Load an artifact as `T`: `DataFrame` (Parquet or CSV), `PathBuf`, or `Value<T>`. An
    /// artifact under a mount is found through this tracker's mounts, and one whose recorded path
    /// is gone (a project moved whole) from its URI under this run directory. The file must
    /// still hold the recorded bytes (checked by hash, skipped while its size, mtime, inode and
    /// ctime are unchanged since it was last hashed); else the error names the file, the run and
    /// the recorded hash.
    pub fn load<T: Output>(&self, artifact: &Artifact) -> Result<T> {
        self.inner.load_verified(artifact)
    }
}
