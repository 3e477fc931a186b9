//! The provenance store: where run and artifact records are kept for querying.
//!
//! [`Store`] is the seam for other backends (a PostgreSQL store for many machines writing one
//! catalog); [`DuckDbStore`] is the embedded default. Stores are mirrors: every record they hold
//! can be rebuilt from the JSON snapshots.

mod batch;
mod duckdb;

pub use self::duckdb::DuckDbStore;

use crate::artifact::Artifact;
use crate::error::Result;
use crate::lineage::LineageNode;
use crate::run::{Run, RunRecord, RunStatus};

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

/// Filters for [`Store::find_runs`]; unset fields match everything. Newest runs come first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunQuery {
    /// Only runs of this model (step name).
    pub model: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs with this signature.
    pub signature: Option<String>,
    /// Only children of this scenario / parent run.
    pub parent: Option<String>,
    /// Only runs of this iteration.
    pub iteration: Option<i32>,
    /// At most this many runs.
    pub limit: Option<usize>,
}

impl RunQuery {
    /// Whether a run passes the filters (used to merge not-yet-synced runs into results).
    pub fn matches(&self, run: &Run) -> bool {
        self.model.as_ref().is_none_or(|m| *m == run.model_name)
            && self.status.is_none_or(|s| s == run.status)
            && self.signature.as_ref().is_none_or(|s| *s == run.signature)
            && self.parent.as_ref().is_none_or(|p| Some(p) == run.parent_run_id.as_ref())
            && self.iteration.is_none_or(|i| Some(i) == run.iteration)
    }
}

/// A backend that keeps run records queryable.
pub trait Store: Send + Sync {
    /// Create the storage (schema) if needed, and check an existing one is usable.
    fn init(&self) -> Result<()>;

    /// Store a batch of records in one transaction. Idempotent: a record already stored is left
    /// as is, except that a `running` run is updated to its newer state.
    fn write(&self, records: &[RunRecord]) -> Result<()>;

    /// Runs matching `query`, newest first.
    fn find_runs(&self, query: &RunQuery) -> Result<Vec<Run>>;

    /// One run by id.
    fn get_run(&self, id: &str) -> Result<Option<Run>>;

    /// The artifacts a run read and wrote.
    fn run_artifacts(&self, run_id: &str) -> Result<Vec<(Direction, Artifact)>>;

    /// The newest artifact produced under `key`.
    fn latest_artifact(&self, key: &str) -> Result<Option<Artifact>>;

    /// The lineage tree of an artifact: its producing run, that run's inputs, their producers...
    /// expanding at most `max_depth` run levels (`0`: the artifact alone). `None` if unknown.
    fn lineage(&self, artifact_id: &str, max_depth: usize) -> Result<Option<LineageNode>>;

    /// Replace every record with `records` in one transaction: on failure the old content stays.
    fn replace_all(&self, records: &[RunRecord]) -> Result<()>;
}
