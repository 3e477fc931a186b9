//! The catalog at a glance: what `consist summary` and `consist scenarios` show, as data.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Counts over a whole catalog (`consist summary --json` prints this).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CatalogSummary {
    /// Every recorded run, scenario headers included.
    pub runs: i64,
    /// Runs with status `completed`.
    pub completed: i64,
    /// Runs with status `failed`.
    pub failed: i64,
    /// Runs with status `running` (in progress, or left by a killed process).
    pub running: i64,
    /// Runs that were cache hits.
    pub cache_hits: i64,
    /// Cache hits among completed step runs (scenario headers excluded); `None` without any.
    pub cache_hit_ratio: Option<f64>,
    /// Scenario header runs.
    pub scenarios: i64,
    /// Distinct artifacts.
    pub artifacts: i64,
    /// When the oldest run was created.
    pub first_run: Option<DateTime<Utc>>,
    /// When the newest run was created.
    pub last_run: Option<DateTime<Utc>>,
    /// Runs recorded in snapshots but not yet written to the database.
    pub pending: usize,
    /// Runs per model, most runs first.
    pub models: Vec<ModelCount>,
}

/// Runs of one model in a [`CatalogSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelCount {
    /// The model (step or scenario) name.
    pub model: String,
    /// Its runs.
    pub runs: i64,
    /// How many were cache hits.
    pub cache_hits: i64,
    /// How many failed.
    pub failed: i64,
}

/// One scenario and its step runs (`consist scenarios --json` prints an array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioSummary {
    /// The header run's id.
    pub id: String,
    /// The scenario name (the header's model name).
    pub name: String,
    /// The header's status.
    pub status: String,
    /// When the scenario started.
    pub created_at: DateTime<Utc>,
    /// Its step runs.
    pub runs: i64,
    /// How many of them were cache hits.
    pub cache_hits: i64,
    /// Highest iteration + 1, if any step had an iteration.
    pub iterations: Option<i64>,
}

/// Row counts and referential checks of a store (the store's half of `consist db inspect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreIntegrity {
    /// Rows per provenance table, in [`crate::store::TABLES`] order.
    pub tables: Vec<(String, i64)>,
    /// Artifacts no run links to.
    pub orphan_artifacts: i64,
    /// Links whose run or artifact is missing.
    pub dangling_links: i64,
    /// Artifacts whose producing run is no longer recorded (purged); still used by other runs.
    pub missing_producers: i64,
}

/// The health of a catalog: its store's integrity plus what only the catalog knows
/// (`consist db inspect --json` prints this).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// Rows per provenance table.
    pub tables: Vec<(String, i64)>,
    /// Runs still `running` whose process, on this host, is gone: they will never finish.
    pub zombies: Vec<String>,
    /// Artifacts no run links to.
    pub orphan_artifacts: i64,
    /// Links whose run or artifact is missing.
    pub dangling_links: i64,
    /// Artifacts whose producing run is no longer recorded (purged); still used by other runs.
    pub missing_producers: i64,
    /// Runs recorded in snapshots but not yet in the database.
    pub pending: usize,
    /// Pending snapshots found unreadable (their runs are not in the catalog): restore them from
    /// a backup, or mark them lost by deleting the note in `<db>.consist/damaged/`.
    pub damaged: Vec<crate::run::DamagedSnapshot>,
    /// Artifacts recorded by an absolute path (outside their run directory and every mount):
    /// `(key, uri)`, at most `NOT_PORTABLE_SHOWN`; valid only where that path exists.
    pub not_portable: Vec<(String, String)>,
    /// How many artifacts are recorded by an absolute path in all.
    pub not_portable_count: i64,
}

/// How many non-portable artifacts [`Inspection`] lists.
pub const NOT_PORTABLE_SHOWN: usize = 20;

/// Rows of a read-only query or of a file: column names and JSON values, in order (`consist
/// query --json` prints exactly this).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueryRows {
    /// Column names.
    pub columns: Vec<String>,
    /// One vector of values per row, in column order.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// A view over one artifact key's Parquet/CSV files that [`crate::store::Store::query`] offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactView {
    /// The view's name: the key, or `<key>_artifacts` when the key is a provenance table's name.
    pub view: String,
    /// The artifact key.
    pub key: String,
    /// Files recorded under the key.
    pub files: usize,
    /// Of those, files that no longer exist (left out of the view).
    pub missing: usize,
    /// Distinct runs that produced them.
    pub runs: usize,
}
