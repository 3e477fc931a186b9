//! The engine: from a declared step run to a recorded one. Signature, cache lookup, running the
//! body, recording the outcome (`execute.rs`); the body's view of its run (`context.rs`); how
//! returned values become artifacts (`output.rs`); what it is given (`spec.rs`) and returns (`result.rs`);
//! per-signature claims so concurrent twins do not both execute, and the leases that tell live
//! runs from dead ones (`claim.rs`); lifecycle hooks (`hooks.rs`); the background
//! writer of hits and store batches (`writer.rs`); uploads to and downloads from a remote
//! (`remote.rs`).
//!
//! Below the user API (`Tracker`, `StepBuilder`, `StepCall`, `Scenario`), above the catalog: it
//! never names a user-API type.

pub(crate) mod claim;
pub(crate) mod context;
pub(crate) mod execute;
pub(crate) mod frame_set;
pub(crate) mod hooks;
pub(crate) mod hydrate;
pub(crate) mod output;
pub(crate) mod remote;
pub(crate) mod result;
pub(crate) mod spec;
pub(crate) mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::files::hash::{FileHasher, HashingStrategy};
use crate::run::RunRecord;

pub use context::StepContext;
pub use frame_set::FrameSet;
pub use output::{Dir, Output, Outputs, Value};
pub use result::RunResult;
pub use spec::{BoxError, CacheMode, Hydration, Input, MaybeInput, StepResult, Validation};

/// The engine behind a [`crate::Tracker`]: the run directory, the catalog, the cache policy and
/// the file hasher, shared by every clone of the tracker.
pub(crate) struct Engine {
    pub(crate) run_dir: PathBuf,
    pub(crate) hashing: HashingStrategy,
    pub(crate) cache_mode: CacheMode,
    pub(crate) validation: Validation,
    pub(crate) hydration: Hydration,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) files: FileHasher,
    /// The toolchain recorded for steps that did not capture their own.
    pub(crate) toolchain: crate::Toolchain,
    /// Whether the toolchain joins every step's code identity.
    pub(crate) toolchain_in_signature: bool,
    /// The cache epoch joined to every step's code identity (`0`: none).
    pub(crate) cache_epoch: u64,
    /// Identifies this tracker (one per process, usually) in miss-explanation footprints.
    pub(crate) session: String,
    /// Records hits and writes the store in the background (`None` in read-only mode).
    pub(crate) writer: Option<writer::Writer>,
    /// Runs that could not be queued for the database, and the first reason.
    pub(crate) unqueued: std::sync::Mutex<(std::collections::BTreeSet<String>, String)>,
    /// Claims on signatures and the leases that keep executing runs alive.
    pub(crate) claims: claim::Claims,
    /// Where outputs are uploaded and missing files fetched from (see [`crate::Remote`]).
    pub(crate) remote: Option<Arc<crate::Remote>>,
    /// What to call when a run starts, completes or fails.
    pub(crate) hooks: hooks::Hooks,
}

impl Engine {
    /// Write a run's snapshot (durably once it has ended) and queue it for the database. A
    /// `running` run is queued here; its final snapshot replaces the file the entry names.
    pub(crate) fn persist(&self, record: &RunRecord) -> Result<()> {
        let path = crate::catalog::snapshot::write(record)?;
        let terminal = record.run.status.is_terminal();
        if (!terminal || !self.catalog.is_queued(&record.run.id))
            && let Err(error) = self.catalog.enqueue(&record.run.id, &path)
        {
            let mut unqueued = self.unqueued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if unqueued.0.is_empty() {
                unqueued.1 = error.to_string();
                crate::logging::warning!(%error, "runs cannot be queued for the database: they are recorded in their snapshots only");
            }
            unqueued.0.insert(record.run.id.clone());
        }
        if terminal && let Some(writer) = &self.writer {
            writer.queued();
        }
        Ok(())
    }

    /// Record a cache hit: its snapshot is written with the writer's next batch.
    pub(crate) fn persist_hit(&self, record: RunRecord) {
        if let Some(writer) = &self.writer {
            writer.hit(record);
        }
    }

    /// This tracker's hits not yet written to a snapshot batch.
    pub(crate) fn unwritten_hits(&self) -> Vec<RunRecord> {
        self.writer.as_ref().map(writer::Writer::unwritten).unwrap_or_default()
    }

    /// Write every recorded run to the database now; returns how many runs were written.
    /// A run that could not be queued did not fail: its snapshot is the record; it is reported
    /// here (`Error::Unqueued`, until `consist db rebuild` brings it in).
    pub(crate) fn flush(&self) -> Result<usize> {
        let written = match &self.writer {
            Some(writer) => writer.flush()?,
            None => 0,
        };
        let unqueued = self.unqueued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !unqueued.0.is_empty() {
            return Err(Error::Unqueued {
                runs: unqueued.0.len(),
                run_dir: self.run_dir.clone(),
                reason: unqueued.1.clone(),
            });
        }
        Ok(written)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(writer) = &self.writer {
            writer.stop();
        }
        let unqueued = self.unqueued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !unqueued.0.is_empty() {
            tracing::error!(
                runs = unqueued.0.len(),
                reason = %unqueued.1,
                "runs are recorded only in their snapshots; run `consist db rebuild --run-dir {}` once the catalog's \
                 directory is writable",
                self.run_dir.display()
            );
        }
    }
}
