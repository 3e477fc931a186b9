//! Caching and provenance for scientific simulation workflows.
//!
//! Every step run gets a signature, `blake3(model, code identity, canonical config, inputs)`;
//! inputs produced by earlier runs contribute their producer's signature, so a change invalidates
//! exactly the steps downstream of it. A step whose signature was already recorded does not
//! execute: its outputs come back from the cache, typed. Runs, artifacts and their links are kept
//! in an embedded DuckDB database (the schema Python Consist uses), mirrored by one JSON snapshot
//! per run from which the database can always be rebuilt.
//!
//! ```no_run
//! use consist::{Tracker, Value};
//! use serde::Serialize;
//!
//! #[derive(Serialize)]
//! struct Params { value: i64 }
//!
//! # fn main() -> consist::Result<()> {
//! let tracker = Tracker::builder("./runs").db_path("./provenance.duckdb").open()?;
//! let params = Params { value: 5 };
//! let result = tracker
//!     .step("square")
//!     .code_version("1")
//!     .config(&params)
//!     .outputs(["squared"])
//!     .run(|_ctx| Ok(Value(params.value * params.value)))?;
//! println!("{} squared={} cache_hit={}", result.run.id, result.value()?.0, result.cache_hit());
//! # Ok(()) }
//! ```
//!
//! A plain function becomes a step with [`step`] (see there for parameters, outputs and code
//! identity); it stays callable without a tracker:
//!
//! ```no_run
//! use consist::polars::prelude::*;
//! use consist::{StepResult, Tracker, step};
//!
//! const SCALE: f64 = 2.0; // part of the code identity: editing it re-runs `scale`
//!
//! #[step(outputs = ["scaled"])]
//! fn scale(raw: &DataFrame, factor: f64) -> StepResult<DataFrame> {
//!     let scaled = raw.column("value")?.f64()? * (factor * SCALE);
//!     let mut out = raw.clone();
//!     out.with_column(scaled.into_column())?;
//!     Ok(out)
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let tracker = Tracker::builder("./runs").open()?;
//! let run = tracker.run(scale::step("data/raw.parquet", 1.5))?; // executes, or returns the cached frame
//! let next = tracker.run(scale::step(run.output("scaled")?, 2.0))?; // an output feeds a step
//! let frame: &DataFrame = next.value()?;   // typed, hit or not (a hit reads it now)
//! let again = scale(frame, 1.0)?;                                  // still a plain function
//! # Ok(()) }
//! ```

#![warn(missing_docs, missing_debug_implementations)]

#[doc(hidden)]
pub mod __private;
mod artifact;
mod canonical;
mod catalog;
#[cfg(feature = "cli")]
pub mod cli;
mod engine;
mod error;
mod export;
mod facet;
mod files;
pub mod guide;
mod ids;
mod layout;
mod lineage;
mod location;
mod logging;
mod mounts;
mod names;
mod panics;
mod registry;
mod relocate;
mod remote;
mod run;
mod scenario;
mod signature;
mod step;
pub mod store;
mod toolchain;
mod tracker;
#[cfg(feature = "cli")]
pub mod ui;

pub use consist_macros::{Outputs, helper, step, toolchain};

/// The polars version consist reads and writes frames with: use it (`consist::polars::prelude::*`)
/// so your frames are consist's frames and no second polars is compiled.
pub use polars;

pub use crate::run::DamagedSnapshot;
pub use artifact::{Artifact, Driver, resolve_uri, uri_for};
pub use catalog::Catalog;
pub use catalog::explain::MissExplanation;
pub use engine::{
    BoxError, CacheMode, Dir, FrameSet, Hydration, Input, MaybeInput, Output, Outputs, RunResult, StepContext,
    StepResult, Validation, Value,
};
pub use error::{DatabaseError, Error, Result};
pub use files::frame::read_parquet;
pub use files::hash::{HashingStrategy, hash_file};
pub use lineage::{GraphRun, LineageGraph, LineageNode, Producer};
pub use location::{CATALOG_ENV, CatalogLocation, PostgresUrl};
pub use logging::init_logging;
pub use mounts::{Mounts, is_portable};
pub use remote::{REMOTE_ENV, Remote};
pub use run::{HOST_ENV, Run, RunRecord, RunStatus};
pub use scenario::{Scenario, ScenarioBuilder};
pub use step::{StepBuilder, StepCall};
pub use store::{ArtifactQuery, Direction, LineageStart, RunArtifacts, RunOrder, RunQuery, RunSort};
pub use toolchain::Toolchain;
pub use tracker::{DEFER_HITS_ENV, Tracker, TrackerBuilder};

/// Maintaining, checking and reporting on a catalog: what [`Catalog`]'s maintenance,
/// validation, export, comparison and remote operations take and return, and the steps linked
/// into this binary.
pub mod admin {
    pub use crate::catalog::diff::{Changes, RunDiff, RunExplanation};
    pub use crate::catalog::gc::{EvictedRun, Freed, GcOptions, GcReport};
    pub use crate::catalog::maintenance::{CopyReport, KeptFile, MergeReport, OnConflict, PurgeOptions, PurgeReport};
    pub use crate::catalog::rebuild::{DamagedFate, RebuildReport};
    pub use crate::catalog::validate::{ArtifactProblem, FileProblem, ValidationReport};
    pub use crate::export::{ExportFormat, ExportReport, ExportScope};
    pub use crate::registry::{StepInfo, StepStatus, registered_steps, step_report};
    pub use crate::remote::{KeepRuns, RemoteGcReport, RemoteStatus, Transfer, TransferReport, Uploaded};
    pub use crate::run::DamagedSnapshot;
}

/// What the crate's own tests and benchmarks reach inside (snapshot files, table names, the
/// signature and the cache lookup); not public API.
#[doc(hidden)]
pub mod testing {
    pub use crate::catalog::HIT_BATCHES_WAITING;
    pub use crate::catalog::index::IndexEntry;
    pub use crate::catalog::snapshot::{find_all, read, read_all};
    pub use crate::files::codec::{CODEC, CODEC_VERSION};
    pub use crate::layout::snapshots_dir;
    pub use crate::signature::{InputEntry, hash_config_value, input_hash, signature};
    pub use crate::store::TABLES;

    /// The cache lookup of a step run's signature (what a step does before deciding to run):
    /// its first candidate source.
    pub fn cached(catalog: &crate::Catalog, signature: &str) -> crate::Result<Option<IndexEntry>> {
        Ok(catalog.sources(signature)?.into_iter().next())
    }

    /// Record `entry` in a catalog's signature index (as a completed run does).
    pub fn index(catalog: &crate::Catalog, entry: IndexEntry) -> crate::Result<()> {
        catalog.index_source(entry)
    }
}

/// What nearly every user imports: `use consist::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Artifact, CacheMode, Dir, HashingStrategy, Outputs, RunResult, Scenario, StepContext, StepResult, Tracker,
        Value, helper, step,
    };
}
