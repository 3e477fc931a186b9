//! The catalog writer: one background thread per tracker that records cache hits and moves
//! finished runs into the store, so a step never waits for the database.
//!
//! Steps hand it hit records (kept in memory until the next batch) and tell it when an executed
//! run's durable snapshot has been queued. It writes a batch when `flush_every` runs have piled up,
//! when [`Writer::flush`] asks (it waits), when the oldest unwritten run is [`MAX_AGE`] old, and
//! when the tracker is dropped (it drains and stops). A batch is: the hits as one durable JSON-lines
//! snapshot file plus a pending-queue entry (the group commit), then [`Catalog::sync`], which
//! writes every pending run to the store in one transaction. Only this thread writes the store, so
//! steps running on many threads record through one writer. When steps run ahead of it, batches
//! follow each other at once in one write session ([`crate::store::Store::write_session`]: for a
//! DuckDB file one attach and one checkpoint for them all), for at most [`SESSION_MAX`]; a session
//! ends before a flush or the drop returns.
//!
//! A writer that runs longer than [`GIVE_BACK_EVERY`] hands the memory its writes freed back to
//! the system between sessions (glibc keeps it otherwise: a 100,000-step process held ~580 MiB).
//!
//! The store is written when something needs it there: an executed run, a flush, a full batch of
//! hits, a queue that [`Catalog::pending_due`] finds due, and the tracker's drop, so the catalog
//! holds every run of a process once it is gone. Only with `defer_hits` (an explicit option) may a
//! process that only hits leave its batch in the queue (every consist reader merges it) and never
//! open the database.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::run::RunRecord;

/// A run finished this long ago is written even if fewer than `flush_every` have piled up, so
/// other processes see it in the database soon.
const MAX_AGE: Duration = Duration::from_secs(2);

/// Batches of hits a step may run ahead of the writer.
const BACKLOG: usize = 4;

/// The longest the writer keeps the store open across batches that follow each other at once
/// (see [`Target::run`]): other processes wait for the file meanwhile.
const SESSION_MAX: Duration = Duration::from_secs(1);

/// How often at most a long-running writer hands the memory freed since back to the system
/// ([`give_back_memory`]); a process shorter than this never does.
const GIVE_BACK_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    /// Hit records not yet in a snapshot batch.
    hits: Vec<RunRecord>,
    /// Finished runs (hits and executed) not yet handed to the store.
    unwritten: usize,
    /// Whether an executed run was queued since the store was last written.
    executed: bool,
    /// When the oldest of them finished.
    oldest: Option<Instant>,
    /// Flush requests made / served (a flush waits until `served` reaches its ticket).
    requested: u64,
    served: u64,
    /// Runs written by the last batch, reported to the flushes it served, with the error of a
    /// failed batch.
    written: usize,
    error: Option<Error>,
    /// The last batch file of hits could not be written: retried every [`MAX_AGE`], and steps
    /// do not wait for the writer meanwhile.
    failing: bool,
    /// Writes that failed in a row (the first is warned about, the retries are not).
    failed_writes: u32,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The background writer of one tracker.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    flush_every: usize,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// When the writer writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batches {
    /// Runs that make a batch.
    pub every: usize,
    /// Whether hits may stay in the queue when the tracker is dropped
    /// ([`crate::TrackerBuilder::defer_hit_writes`]).
    pub defer_hits: bool,
}

/// What the writer thread needs to write a batch.
struct Target {
    catalog: Arc<Catalog>,
    run_dir: PathBuf,
    session: String,
    batches: Batches,
}

impl Writer {
    /// Start the writer thread; it first syncs what earlier processes left pending, if that is
    /// due (see [`Catalog::pending_due`]). Fails only if the system refuses a new thread.
    pub(crate) fn start(catalog: Arc<Catalog>, run_dir: PathBuf, session: String, batches: Batches) -> Result<Writer> {
        let leftovers = catalog.pending_due();
        let shared =
            Arc::new(Shared { state: Mutex::new(State::default()), wake: Condvar::new(), done: Condvar::new() });
        let failed = Error::io("starting the catalog writer thread of", run_dir.clone());
        let target = Target { catalog, run_dir, session, batches };
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("consist-writer".into())
            .spawn(move || target.run(&thread_shared, leftovers))
            .map_err(failed)?;
        Ok(Writer { shared, flush_every: batches.every, thread: Mutex::new(Some(thread)) })
    }

    /// Record a cache hit (written with the next batch). When the writer falls behind by more
    /// than [`BACKLOG`] batches of hits, the step waits for it: memory stays bounded.
    pub(crate) fn hit(&self, record: RunRecord) {
        let mut state = self.shared.lock();
        while state.hits.len() >= BACKLOG.saturating_mul(self.flush_every) && !state.stop && !state.failing {
            self.shared.wake.notify_one();
            state = self.shared.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.hits.push(record);
        self.finished(&mut state);
    }

    /// Hits recorded but not yet in a snapshot batch.
    pub(crate) fn unwritten(&self) -> Vec<RunRecord> {
        self.shared.lock().hits.clone()
    }

    /// Note that an executed run's snapshot is durable and queued for the store.
    pub(crate) fn queued(&self) {
        let mut state = self.shared.lock();
        state.executed = true;
        self.finished(&mut state);
    }

    fn finished(&self, state: &mut State) {
        state.unwritten += 1;
        state.oldest.get_or_insert_with(Instant::now);
        self.shared.wake.notify_one();
    }

    /// Write everything recorded so far and wait for it; returns how many runs reached the store.
    pub(crate) fn flush(&self) -> Result<usize> {
        let mut state = self.shared.lock();
        if state.stop {
            return Ok(0);
        }
        state.requested += 1;
        let ticket = state.requested;
        state.error = None;
        self.shared.wake.notify_one();
        while state.served < ticket {
            state = self.shared.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        match state.error.take() {
            Some(error) => Err(error),
            None => Ok(state.written),
        }
    }

    /// Drain and stop the thread (the tracker is being dropped).
    pub(crate) fn stop(&self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Target {
    fn run(self, shared: &Shared, leftovers: bool) {
        let mut batch = 0u64;
        let mut state = shared.lock();
        let mut first = leftovers;
        // The store kept open while batches follow each other at once (the steps are ahead of
        // the writer): one open and one close (for DuckDB, the checkpoint that rewrites the
        // tables' last row groups) for all of them instead of one each; with when it started,
        // and whether a write was made in it.
        let mut open: Option<(crate::store::Session, Instant, bool)> = None;
        let started = Instant::now();
        let mut given_back = started;
        loop {
            let due = |s: &State| {
                s.stop
                    || s.requested > s.served
                    || (s.unwritten >= self.batches.every && !s.failing)
                    || s.oldest.is_some_and(|t| t.elapsed() >= MAX_AGE)
            };
            while !first && !due(&state) {
                let timeout = state.oldest.map_or(Duration::from_secs(3600), |t| MAX_AGE.saturating_sub(t.elapsed()));
                state = shared.wake.wait_timeout(state, timeout).unwrap_or_else(|e| e.into_inner()).0;
            }
            let mut hits = std::mem::take(&mut state.hits);
            let ticket = state.requested;
            let stop = state.stop;
            // A full batch of hits goes on to the store as well: waiting saves a long run of hits
            // nothing (its writes are amortized already) and would grow the next write.
            let full = hits.len() >= self.batches.every;
            // The tracker's drop leaves the store complete, unless hits may wait.
            let last = stop && !self.batches.defer_hits;
            let store = first || full || last || std::mem::take(&mut state.executed) || state.requested > state.served;
            first = false;
            state.unwritten = 0;
            state.oldest = None;
            drop(state);
            let result = self.write(&mut hits, &mut batch, store);
            state = shared.lock();
            // A session starts when the next batch is due as soon as one is written, and ends
            // when one is not, after SESSION_MAX, and always before a flush or the tracker's drop
            // hears its runs are written (this batch serves a flush if its ticket is newer than
            // the last served), so the file is complete and free for other processes by then. A
            // process that writes one batch never holds one.
            let more = result.is_ok() && !stop && ticket == state.served && due(&state);
            if let Some((_, _, wrote)) = &mut open {
                *wrote |= matches!(result, Ok(n) if n > 0);
            }
            match &open {
                None if more && store => open = Some((self.catalog.write_session(), Instant::now(), false)),
                Some((_, since, _)) if more && since.elapsed() < SESSION_MAX => {}
                None => {}
                Some((_, _, wrote)) => {
                    let wrote = *wrote;
                    drop(state);
                    open = None;
                    if wrote {
                        // Its end checkpointed the file: the fingerprint its writes left is stale.
                        self.catalog.adopt_seen();
                    }
                    state = shared.lock();
                }
            }
            // Once no write session holds the store, the memory DuckDB's writes freed goes back
            // to the system, at most every GIVE_BACK_EVERY and after the last write of a writer
            // that ran longer: never in a short process (its exit gives everything back).
            let last = stop && started.elapsed() >= GIVE_BACK_EVERY;
            if open.is_none() && (last || given_back.elapsed() >= GIVE_BACK_EVERY) {
                drop(state);
                give_back_memory();
                given_back = Instant::now();
                state = shared.lock();
            }
            // An executed run whose write failed is retried with the next batch, or after
            // MAX_AGE (a catalog server that was down gets the runs once it is back).
            let retry = store && result.is_err();
            state.executed |= retry;
            if retry {
                state.oldest.get_or_insert_with(Instant::now);
            }
            let streak = state.failed_writes;
            state.failed_writes = if result.is_err() { streak + 1 } else { 0 };
            state.written = 0;
            state.failing = !hits.is_empty();
            match result {
                Ok(n) => state.written = n,
                Err(e) if !hits.is_empty() && stop => {
                    // The tracker is going away and the hits' batch cannot be written: say so and
                    // end (these are records of reuse; every executed run is already durable).
                    crate::logging::warning!(error = %e, hits = hits.len(), "could not record these cache hits");
                    state.error = Some(e);
                }
                Err(e) => {
                    if streak == 0 {
                        crate::logging::warning!(error = %e, "database sync failed; runs stay queued and will be retried");
                    } else {
                        tracing::debug!(error = %e, attempt = streak + 1, "database sync failed again");
                    }
                    if !hits.is_empty() {
                        // Their batch file could not be written: keep them for a retry in MAX_AGE.
                        state.unwritten += hits.len();
                        state.oldest = Some(Instant::now());
                        let newer = std::mem::replace(&mut state.hits, hits);
                        state.hits.extend(newer);
                    }
                    state.error = Some(e);
                }
            }
            state.served = ticket;
            shared.done.notify_all();
            if stop && (state.hits.is_empty() || state.failing) && state.requested == state.served {
                return;
            }
        }
    }

    /// One batch: the hits' snapshot file (durable) and its queue entry, then the store if
    /// `store` or the queue is due. `hits` is emptied once they are in a snapshot file (on
    /// failure before that, they stay). Returns how many runs reached the store.
    fn write(&self, hits: &mut Vec<RunRecord>, batch: &mut u64, store: bool) -> Result<usize> {
        if !hits.is_empty() {
            let name = format!("hits-{}-{:06}", self.session, *batch + 1);
            let path = crate::catalog::snapshot::write_batch(&self.run_dir, &name, hits)?;
            *batch += 1;
            hits.clear();
            self.catalog.enqueue(&name, &path)?;
        }
        if store || self.catalog.pending_due() { self.catalog.sync() } else { Ok(0) }
    }
}

/// Return to the system the free memory glibc keeps (a DuckDB write into a big catalog frees
/// hundreds of MiB, spread over per-thread arenas that glibc does not shrink on its own). One
/// call took 7 ms (median, 14 at most) in a process that had written 100,000 runs.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free memory of the allocator; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
