//! The one error type of the crate: every failure names what went wrong and how to fix it.

use std::path::PathBuf;

/// Any error a step body may return; `?` converts io, polars, consist and most other errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result type used throughout consist.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of the embedded database engine (DuckDB), with its message; its own type is not part
/// of consist's API, so a DuckDB upgrade changes no signature.
#[derive(Debug)]
pub struct DatabaseError(pub(crate) duckdb::Error);

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Everything that can go wrong while tracking, caching or querying runs.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config value cannot be turned into canonical JSON (NaN, infinity, non-string map key...).
    #[error("config for step `{step}` cannot be hashed: {reason} (at `{path}`); {fix}")]
    Config {
        /// Step whose config failed.
        step: String,
        /// Dotted path of the offending value inside the config.
        path: String,
        /// What is wrong with it.
        reason: String,
        /// How to fix it.
        fix: &'static str,
    },

    /// A declared input file does not exist or cannot be read.
    #[error("input `{key}` of step `{step}` points to {}, which {reason}; create the file or pass the right path", path.display())]
    InputMissing {
        /// Step that declared the input.
        step: String,
        /// Input key.
        key: String,
        /// Path that was given.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },

    /// The step finished without producing an output it declared.
    #[error(
        "step `{step}` declared output `{key}` but did not produce it (produced: [{produced}]); log it or remove it from `outputs`"
    )]
    OutputMissing {
        /// Step name.
        step: String,
        /// Declared key that is missing.
        key: String,
        /// Keys that were produced, comma separated.
        produced: String,
    },

    /// The outputs declared for a step do not match what its return type carries.
    #[error(
        "step `{step}` returns {expected} output(s) but declares {declared} key(s) [{keys}]; list one key per output in `outputs`"
    )]
    OutputArity {
        /// Step name.
        step: String,
        /// How many outputs the return type carries.
        expected: usize,
        /// How many keys were declared.
        declared: usize,
        /// The declared keys.
        keys: String,
    },

    /// A recorded artifact (a run's output, or a raw input file when `run_id` is empty) cannot
    /// be loaded: gone, changed, or not of the requested type.
    #[error("cannot load {} from {}: {reason}", artifact_subject(key, run_id), path.display())]
    OutputLoad {
        /// Run that recorded the artifact.
        run_id: String,
        /// Output key.
        key: String,
        /// File that was read.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The database's directory does not exist (nothing was created).
    #[error(
        "database {} cannot be created: its directory does not exist; create the directory, or pass another path to Tracker::builder(..).db_path",
        path.display()
    )]
    DatabaseDir {
        /// The database path as given (made absolute).
        path: PathBuf,
    },

    /// The step body returned an error or panicked; the run is recorded as `failed`.
    #[error("step `{step}` failed in run `{run_id}`{place}: {message}")]
    StepFailed {
        /// Step name.
        step: String,
        /// Run id recorded with status `failed`.
        run_id: String,
        /// Where the run sat, e.g. ` (scenario `beta=0.3`, iteration 3)`; empty outside a
        /// scenario, iteration, year, stage or phase.
        place: String,
        /// The error or panic message.
        message: String,
        /// The body's own error (downcast it to your type); `None` for a panic.
        #[source]
        source: Option<BoxError>,
    },

    /// The run directory cannot be created or written.
    #[error("run directory {} is not usable: {source}; choose a writable directory with Tracker::builder(dir)", path.display())]
    RunDir {
        /// The run directory.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },

    /// The database file exists but is not a DuckDB database (or is damaged).
    #[error("{} is not a usable DuckDB database: {reason}; point db_path at a DuckDB file or a new path (nothing was written to it)", path.display())]
    NotADatabase {
        /// The database path.
        path: PathBuf,
        /// What DuckDB said.
        reason: String,
    },

    /// Runs completed and their snapshots were written, but the catalog's local state (pending
    /// queue, signature index) could not be: they are not in the database and not cache hits.
    #[error(
        "{runs} run(s) are recorded only in their snapshots ({reason}); once the catalog's directory is \
         writable again, `consist db rebuild --run-dir {}` brings them into the database",
        run_dir.display()
    )]
    Unqueued {
        /// How many runs.
        runs: usize,
        /// The run directory holding their snapshots.
        run_dir: PathBuf,
        /// The first failure.
        reason: String,
    },

    /// Another process (or another thread of this one) held the database for longer than the
    /// configured wait.
    #[error("database {} stayed locked for {waited_ms} ms ({reason}); retry later or raise Tracker::builder(..).lock_timeout(..)", path.display())]
    DatabaseBusy {
        /// The database path.
        path: PathBuf,
        /// How long we waited.
        waited_ms: u128,
        /// DuckDB's message (names the holding process where it can).
        reason: String,
    },

    /// A query against the provenance database failed.
    #[error("database {} error: {source}", path.display())]
    Database {
        /// The database path.
        path: PathBuf,
        /// What DuckDB said (its own error type stays behind this one).
        source: DatabaseError,
    },

    /// A PostgreSQL catalog could not be reached or refused a statement. The location is shown
    /// without its password.
    #[error("PostgreSQL catalog {location}: {action} failed: {reason}")]
    Postgres {
        /// The catalog URL, password redacted.
        location: String,
        /// What was being done ("connecting", "writing runs"...).
        action: &'static str,
        /// The server's message (with its detail and hint), or the client's.
        reason: String,
    },

    /// A catalog server that cannot be reached (down, or the network). Steps carry on without
    /// it: runs execute and are recorded in their snapshots and this host's pending queue, and
    /// reach the catalog once it is back.
    #[error(
        "catalog {location} cannot be reached ({reason}); runs are kept in their snapshots and reach the catalog when \
         it is back (any consist tracker, or `consist db sync`, writes them)"
    )]
    CatalogUnreachable {
        /// The catalog URL, password redacted.
        location: String,
        /// The client's message.
        reason: String,
    },

    /// A remote location that cannot be used (`TrackerBuilder::remote`, `--remote`,
    /// `CONSIST_REMOTE`). Shown without a password.
    #[error(
        "remote `{url}` cannot be used: {reason}; give s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, \
         http(s)://host/prefix or file:///absolute/dir (credentials come from the environment: AWS_*, GOOGLE_*, AZURE_*)"
    )]
    RemoteLocation {
        /// The URL as given, password redacted.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// A transfer to or from a remote failed (the store unreachable, an object missing or
    /// corrupt, credentials refused).
    #[error("remote {url}: {action} failed: {reason}")]
    Remote {
        /// The remote's URL, password redacted.
        url: String,
        /// What was being done ("uploading", "downloading"...).
        action: &'static str,
        /// The store's message, or what was wrong with what it returned.
        reason: String,
    },

    /// An object in a remote whose bytes do not hash to its name (corrupt, or cut short): it is
    /// never used.
    #[error(
        "remote {url}: object {key} holds other bytes than its name says (blake3 {actual}): corrupt or partial; it is not used"
    )]
    RemoteObjectCorrupt {
        /// The remote's URL, password redacted.
        url: String,
        /// The object's key.
        key: String,
        /// The blake3 of the bytes it holds.
        actual: String,
    },

    /// A step was declared inconsistently (missing code version, duplicate keys...).
    #[error("step `{step}` is not valid: {reason}")]
    InvalidStep {
        /// Step name.
        step: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A mount that cannot be added, or a recorded mount this tracker does not have.
    #[error("mount `{name}`: {reason}")]
    InvalidMount {
        /// The mount name.
        name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A key, URI or path that could reach outside the run directory (or is otherwise unusable as
    /// a file name).
    #[error("{kind} `{value}` is refused: {reason}")]
    UnsafePath {
        /// What it is: "output key", "input key", "artifact URI".
        kind: &'static str,
        /// The value as given (control characters escaped).
        value: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A run id or signature read from a catalog, snapshot or merge source that cannot name a
    /// file (it could reach outside the directory it is meant for).
    #[error("{kind} `{value}` in {origin} is refused: {reason}")]
    UnsafeId {
        /// "run id" or "signature".
        kind: &'static str,
        /// The value (control characters escaped, cut at 120 characters).
        value: String,
        /// Where it was read: a snapshot file, a catalog location.
        origin: String,
        /// What is wrong and what to do.
        reason: String,
    },

    /// A step or scenario name that cannot be used.
    #[error("{kind} name `{name}` is not valid: {reason}")]
    InvalidName {
        /// "step" or "scenario".
        kind: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A key was looked up that does not exist; `known` lists the ones that do.
    #[error("no {kind} `{key}`; known {kind}s: [{known}]{}", near.as_ref().map(|n| format!("; did you mean `{n}`?")).unwrap_or_default())]
    UnknownKey {
        /// What was looked up ("input", "output", ...).
        kind: &'static str,
        /// The missing key.
        key: String,
        /// The existing keys, comma separated.
        known: String,
        /// A known key one or two letters away, if any.
        near: Option<String>,
    },

    /// An artifact id that is not recorded.
    #[error(
        "no artifact with id `{0}` is recorded; list a run's artifacts with `consist artifacts <run>` (or Tracker::artifacts_for_run)"
    )]
    ArtifactNotFound(String),

    /// A run id (or id prefix) that is not recorded.
    #[error("no run with id `{0}` (or an id starting with it) is recorded; list runs with `consist runs`")]
    RunNotFound(String),

    /// A catalog location that cannot be used (`Tracker::builder(..).catalog`, `--db-path`,
    /// `CONSIST_DB`). The location is shown without its password.
    #[error(
        "catalog location `{location}` cannot be used: {reason}; give a path to a DuckDB file (e.g. runs/provenance.duckdb) or a postgres://user@host/db URL"
    )]
    CatalogLocation {
        /// The location as given, password redacted.
        location: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// `consist ui` could not start or keep serving (the address is taken, ...); the message
    /// says what to do.
    #[error("{0}")]
    Ui(String),

    /// A read-only query or a file read as rows was refused or failed; the reason says which.
    #[error("{reason}")]
    Query {
        /// What went wrong and what to do.
        reason: String,
    },

    /// A maintenance operation declined to proceed (a merge conflict, a purge of a live run...);
    /// the message says why and what to pass instead.
    #[error("{0}")]
    Refused(String),

    /// A merge or copy between a catalog and itself.
    #[error("{location} is the catalog merged into: merge or copy from another catalog")]
    SameCatalog {
        /// The catalog, password redacted.
        location: String,
    },

    /// A run id prefix that matches several runs.
    #[error("`{prefix}` is the start of several run ids ({candidates}); give more of the id")]
    AmbiguousRun {
        /// The prefix given.
        prefix: String,
        /// Some of the matching ids, comma separated.
        candidates: String,
    },

    /// Reading or writing a file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What we were doing ("writing snapshot", "hashing input"...).
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },

    /// A snapshot or index file could not be parsed.
    #[error("{} is not a valid consist record: {reason}; delete it or restore it from backup", path.display())]
    CorruptRecord {
        /// The file.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },

    /// Encoding or decoding a value artifact failed.
    #[error("value codec error for `{key}`: {reason}")]
    Codec {
        /// Output key.
        key: String,
        /// Codec message.
        reason: String,
    },

    /// Writing or reading a polars DataFrame failed.
    #[error("dataframe `{key}` at {}: {source}", path.display())]
    Frame {
        /// Output or input key.
        key: String,
        /// Parquet file.
        path: PathBuf,
        /// polars error.
        source: polars::prelude::PolarsError,
    },

    /// A polars operation of the caller's own failed: what `?` makes of a `PolarsError` in a
    /// function that returns [`consist::Result`](crate::Result).
    #[error("polars: {0}")]
    Polars(#[from] polars::prelude::PolarsError),

    /// Any other error, boxed: what `?` makes of a [`BoxError`] (the error of a `#[step]` function
    /// called directly, without a tracker) in a function that returns
    /// [`consist::Result`](crate::Result).
    #[error(transparent)]
    Other(#[from] BoxError),
}

/// Why a recorded output whose file was deleted cannot be used.
const GONE: &str = "the file no longer exists";

/// How an error names an artifact: a run's output, or a raw input file (no producing run).
fn artifact_subject(key: &str, run_id: &str) -> String {
    if run_id.is_empty() { format!("input file `{key}`") } else { format!("output `{key}` of run `{run_id}`") }
}

/// The message and its chain of causes, not the variant's fields: what `main() -> Result<()>`
/// prints when a workflow fails.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")?;
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            write!(f, "\n  caused by: {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl Error {
    /// Whether this is a catalog server that cannot be reached now (not a mistake in the URL):
    /// the work goes on and is written to the catalog later.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::CatalogUnreachable { .. })
    }

    /// The database file does not exist (for readers, which never create it).
    pub(crate) fn no_database(path: &std::path::Path) -> Error {
        Error::Io {
            action: "opening database",
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such database; run a workflow first, or pass --db-path (or set CONSIST_DB)",
            ),
        }
    }

    /// A recorded output of `artifact` whose file at `path` cannot be used, and why.
    pub(crate) fn output_unusable(artifact: &crate::Artifact, path: &std::path::Path, reason: String) -> Error {
        Error::OutputLoad {
            run_id: artifact.run_id.clone().unwrap_or_default(),
            key: artifact.key.clone(),
            path: path.to_path_buf(),
            reason,
        }
    }

    /// A recorded output whose file is gone.
    pub(crate) fn output_missing(artifact: &crate::Artifact) -> Error {
        Error::output_unusable(artifact, &artifact.path, GONE.to_owned())
    }

    /// A recorded output whose file at `path` failed with `e`: gone, or unreadable.
    pub(crate) fn output_io(artifact: &crate::Artifact, path: &std::path::Path, e: &std::io::Error) -> Error {
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::output_unusable(artifact, path, GONE.to_owned()),
            _ => Error::output_unusable(artifact, path, format!("the file cannot be read ({e})")),
        }
    }

    /// Wrap an I/O error with what we were doing and the path involved.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { action, path, source }
    }
}
