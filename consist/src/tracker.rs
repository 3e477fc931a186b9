//! The tracker: entry point that owns the run directory, the catalog and the cache policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::artifact::Artifact;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::filehash::{FileHasher, HashingStrategy};
use crate::lineage::LineageNode;
use crate::location::CatalogLocation;
use crate::output::Output;
use crate::run::{Run, RunRecord};
use crate::snapshot;
use crate::step::StepBuilder;
use crate::store::{ArtifactQuery, Direction, RunArtifacts, RunQuery};

/// How the cache is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// Reuse a completed run with the same signature; execute and record otherwise.
    #[default]
    Reuse,
    /// Always execute and record; the new run becomes the cache entry for its signature.
    Overwrite,
    /// Reuse hits, record nothing (no snapshot, no database row, no files in the run dir):
    /// for exploring a shared catalog without changing it. Misses execute with their outputs in a
    /// temporary directory.
    Readonly,
}

/// How much a cache hit trusts the recorded outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Validation {
    /// Trust the recorded hashes, but check that every recorded output file still exists (one
    /// stat each, no hashing): an output that is gone, returned or logged by hand, turns the hit
    /// into an execution, with the reason logged and recorded in `meta.cache_miss`.
    #[default]
    Lazy,
    /// Every recorded output file must exist and match its recorded blake3 hash, else the step
    /// executes again (costs one read of each output per hit).
    Eager,
}

/// Which files are copied into a run's own directory, beyond the records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Hydration {
    /// Records only: a hit points at the files of the run it reuses; inputs are read where
    /// they were recorded.
    #[default]
    Metadata,
    /// On a miss, an input produced under another run directory whose file is missing from this
    /// tracker's run directory is copied here first (hash-checked), and the step reads the copy.
    InputsMissing,
    /// On a hit, the cached outputs are copied into the new run's directory
    /// (`<run_dir>/outputs/<run id>/`, hash-checked) and the returned artifacts point at the
    /// copies; the records still name the original artifacts.
    OutputsAll,
}

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
}

impl TrackerBuilder {
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

    /// The catalog, as a location ([`CatalogLocation::parse`]: a DuckDB file path). Default:
    /// `$CONSIST_DB` if set, else `<run_dir>/provenance.duckdb`. A location that cannot be used
    /// is reported by [`open`](Self::open).
    pub fn catalog(mut self, location: &str) -> Self {
        self.catalog = Some(RequestedCatalog::Location(location.to_owned()));
        self
    }

    /// The catalog as a DuckDB file path: the same as [`catalog`](Self::catalog) with a path,
    /// for paths that are not UTF-8.
    pub fn db_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.catalog = Some(RequestedCatalog::DuckDb(path.into()));
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

    /// Sync finished runs to the database after this many (default 256; also on
    /// [`Tracker::flush`] and when the tracker is dropped).
    pub fn flush_every(mut self, runs: usize) -> Self {
        self.flush_every = runs.max(1);
        self
    }

    /// Open the tracker: create the run directory, check the database (creating its schema),
    /// and sync runs that earlier processes left pending.
    pub fn open(self) -> Result<Tracker> {
        let run_dir_err = |source| Error::RunDir { path: self.run_dir.clone(), source };
        let readonly = self.cache_mode == CacheMode::Readonly;
        let run_dir = std::path::absolute(&self.run_dir).map_err(run_dir_err)?;
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
        };
        if !readonly {
            std::fs::create_dir_all(snapshot::snapshots_dir(&run_dir)).map_err(run_dir_err)?;
        }
        let catalog = Catalog::open(&location, self.lock_timeout)?;
        if !readonly {
            catalog.store().init()?;
            catalog.sync()?;
        }
        Ok(Tracker {
            inner: Arc::new(TrackerInner {
                run_dir,
                hashing: self.hashing,
                cache_mode: self.cache_mode,
                validation: self.validation,
                hydration: self.hydration,
                catalog,
                files: FileHasher::default(),
                session: uuid::Uuid::new_v4().simple().to_string(),
                unsynced: AtomicUsize::new(0),
                flush_every: self.flush_every,
            }),
        })
    }
}

/// Tracks step runs: computes signatures, reuses cached outputs, records provenance.
///
/// Cheap to clone (shared state); dropping the last clone syncs pending runs to the database.
#[derive(Clone)]
pub struct Tracker {
    pub(crate) inner: Arc<TrackerInner>,
}

pub(crate) struct TrackerInner {
    pub(crate) run_dir: PathBuf,
    pub(crate) hashing: HashingStrategy,
    pub(crate) cache_mode: CacheMode,
    pub(crate) validation: Validation,
    pub(crate) hydration: Hydration,
    pub(crate) catalog: Catalog,
    pub(crate) files: FileHasher,
    /// Identifies this tracker (one per process, usually) in miss-explanation footprints.
    pub(crate) session: String,
    unsynced: AtomicUsize,
    flush_every: usize,
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
        }
    }

    /// Declare a step run named `name` (the model name in the database).
    pub fn step(&self, name: &str) -> StepBuilder<'_> {
        StepBuilder::new(self, name)
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

    /// Write pending runs to the database now; returns how many were written.
    pub fn flush(&self) -> Result<usize> {
        self.inner.flush()
    }

    /// Recorded runs matching `query`, newest first (including runs not yet synced).
    pub fn find_runs(&self, query: &RunQuery) -> Result<Vec<Run>> {
        self.inner.catalog.find_runs(query)
    }

    /// The artifacts a run read and wrote, by artifact key (pending runs are answered from their
    /// snapshot, without a database write).
    pub fn artifacts_for_run(&self, run_id: &str) -> Result<RunArtifacts> {
        let mut all = RunArtifacts::default();
        for (direction, artifact) in self.inner.catalog.run_artifacts(run_id)? {
            let side = match direction {
                Direction::Input => &mut all.inputs,
                Direction::Output => &mut all.outputs,
            };
            side.insert(artifact.key.clone(), artifact);
        }
        Ok(all)
    }

    /// Artifacts matching `query`, newest first, e.g. [`ArtifactQuery::created_by`] a run.
    /// Pending runs are synced to the database first.
    pub fn find_artifacts(&self, query: &ArtifactQuery) -> Result<Vec<Artifact>> {
        self.inner.flush()?;
        if !self.db_path().exists() {
            return Ok(Vec::new());
        }
        self.inner.catalog.store().find_artifacts(query)
    }

    /// The newest artifact produced under `key` (pending runs are synced to the database first).
    pub fn get_artifact(&self, key: &str) -> Result<Option<Artifact>> {
        self.inner.flush()?;
        self.inner.catalog.store().latest_artifact(key)
    }

    /// The lineage tree of an artifact to `max_depth` producing-run levels (`0`: the artifact
    /// alone). Pending runs are synced to the database first.
    pub fn artifact_lineage(&self, artifact_id: &str, max_depth: usize) -> Result<LineageNode> {
        self.inner.flush()?;
        self.inner
            .catalog
            .store()
            .lineage(artifact_id, max_depth)?
            .ok_or_else(|| Error::ArtifactNotFound(artifact_id.to_owned()))
    }

    /// Copy artifacts' files into `dir` (created if needed), e.g. cached outputs that live in an
    /// earlier run's directory. Each copy is checked against the recorded hash. Returns the new
    /// paths, in order.
    pub fn materialize(&self, artifacts: &[Artifact], dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(Error::io("creating materialization directory", dir))?;
        let mut copied = Vec::with_capacity(artifacts.len());
        for artifact in artifacts {
            let name = artifact.path.file_name().ok_or_else(|| Error::ArtifactNotFound(artifact.id.clone()))?;
            let dest = dir.join(name);
            crate::execute::copy_checked(artifact, &dest)?;
            copied.push(dest);
        }
        Ok(copied)
    }

    /// Resolve an artifact URI against this tracker's run directory.
    pub fn resolve_uri(&self, uri: &str) -> PathBuf {
        crate::artifact::resolve_uri(uri, &self.inner.run_dir)
    }

    /// Load an artifact as `T`: `DataFrame` (Parquet or CSV), `PathBuf`, or `Value<T>`.
    pub fn load<T: Output>(&self, artifact: &Artifact) -> Result<T> {
        T::load(artifact)
    }
}

impl TrackerInner {
    /// Write a run's snapshot and queue it for the database; sync when enough have piled up.
    pub(crate) fn persist(&self, record: &RunRecord) -> Result<()> {
        let path = snapshot::write(record)?;
        self.catalog.enqueue(&record.run.id, &path)?;
        if record.run.status.is_terminal() && self.unsynced.fetch_add(1, Ordering::Relaxed) + 1 >= self.flush_every {
            // The snapshot is safe; a database problem must not fail the step.
            if let Err(e) = self.flush() {
                tracing::warn!(error = %e, "database sync failed; runs stay queued and will be retried");
            }
        }
        Ok(())
    }

    pub(crate) fn flush(&self) -> Result<usize> {
        if self.cache_mode == CacheMode::Readonly {
            return Ok(0);
        }
        self.unsynced.store(0, Ordering::Relaxed);
        self.catalog.sync()
    }
}

impl Drop for TrackerInner {
    fn drop(&mut self) {
        if self.unsynced.load(Ordering::Relaxed) > 0
            && let Err(e) = self.flush()
        {
            tracing::warn!(error = %e, "database sync at exit failed; runs stay queued for the next process");
        }
    }
}
