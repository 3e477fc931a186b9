//! The engine: from a declared step run to a recorded one. Signature, cache lookup, running the
//! body, recording the outcome (`execute.rs`); the body's view of its run (`context.rs`); how
//! returned values become artifacts (`output.rs`); what it is given and returns (`spec.rs`).
//!
//! Below the user API (`Tracker`, `StepBuilder`, `StepCall`, `Scenario`), above the catalog: it
//! never names a user-API type.

pub(crate) mod context;
pub(crate) mod execute;
pub(crate) mod output;
pub(crate) mod spec;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::catalog::Catalog;
use crate::error::Result;
use crate::filehash::{FileHasher, HashingStrategy};
use crate::run::RunRecord;
use crate::snapshot;

pub use context::StepContext;
pub use output::{Output, Outputs, Value};
pub use spec::{BoxError, CacheMode, Hydration, Input, MaybeInput, RunResult, StepResult, Validation};

/// The engine behind a [`crate::Tracker`]: the run directory, the catalog, the cache policy and
/// the file hasher, shared by every clone of the tracker.
pub(crate) struct Engine {
    pub(crate) run_dir: PathBuf,
    pub(crate) hashing: HashingStrategy,
    pub(crate) cache_mode: CacheMode,
    pub(crate) validation: Validation,
    pub(crate) hydration: Hydration,
    pub(crate) catalog: Catalog,
    pub(crate) files: FileHasher,
    /// Identifies this tracker (one per process, usually) in miss-explanation footprints.
    pub(crate) session: String,
    pub(crate) unsynced: AtomicUsize,
    pub(crate) flush_every: usize,
}

impl Engine {
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

impl Drop for Engine {
    fn drop(&mut self) {
        if self.unsynced.load(Ordering::Relaxed) > 0
            && let Err(e) = self.flush()
        {
            tracing::warn!(error = %e, "database sync at exit failed; runs stay queued for the next process");
        }
    }
}
