//! Claims and liveness: a signature executes in one place at a time, and a run executing
//! somewhere is known to be alive, across threads, processes and hosts.
//!
//! - **Claims.** A step about to execute claims its signature; a twin (the same signature
//!   elsewhere) waits for it and then reuses its result. On a DuckDB catalog a claim is an
//!   exclusive file lock, `<db>.consist/claims/<signature>.lock` (`flock`: released by the kernel
//!   when a process dies), removed by its owner while still locked; a waiter that wakes on a
//!   removed file opens the path again, so one lock per signature is ever held. On a PostgreSQL
//!   catalog shared by many hosts it is a lease row (`store::Leases`) that the tracker renews
//!   while it holds it (a heartbeat every third of the lease's time-to-live), so a killed host's
//!   claim lapses after at most one time-to-live; the holder writes its run to the catalog
//!   before it lets go, so the waiter finds it there. A catalog that cannot be reached falls
//!   back to the file lock (twins on one host still wait for each other).
//! - **Liveness.** Every executed run holds a lease for as long as it executes: its claim (a
//!   claim's lock file names the run holding it), or a lease of its own, or on DuckDB a lock file
//!   `<db>.consist/live/<run_id>.lock` (a run that executes unclaimed). A run still
//!   `running` whose lease is gone is a zombie, whatever host or container it ran in: the
//!   hostname and process id are not what decides it.
//!
//! A step run inside a parallel map (a rayon worker) never waits for a claim: it executes
//! unclaimed when its twin holds it, since a blocked worker can deadlock the pool.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::catalog::Catalog;
use crate::store::LeaseState;

/// How long a lease lasts unless renewed (the default of `TrackerBuilder::lease_ttl`).
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(30);

/// The value of `meta.liveness` on a run whose liveness is its lease.
pub(crate) const LIVENESS_LEASE: &str = "lease";

/// The claims and leases of one tracker.
pub(crate) struct Claims {
    catalog: Arc<Catalog>,
    /// This tracker's session: each lease it takes is held as `<session>/<run id>`, so two runs
    /// of one tracker (threads, a parallel map) never share one.
    session: String,
    ttl: Duration,
    /// The leases this tracker holds (renewed by the heartbeat) and those whose release failed
    /// (retried by it): (name, holder).
    leases: Arc<LeaseBook>,
    heartbeat: Option<Heartbeat>,
}

/// The leases one tracker holds, and those it let go of but could not release.
#[derive(Default)]
struct LeaseBook {
    held: Mutex<Vec<(String, String)>>,
    unreleased: Mutex<Vec<(String, String)>>,
}

/// A held claim on a signature; released when dropped.
pub(crate) struct Claim {
    /// `None`: the wait ended because the result appeared elsewhere (nothing is held).
    kind: Option<Held>,
    /// Whether another holder made us wait (its result may now be recorded).
    pub(crate) waited: bool,
}

/// A held lock file or lease.
enum Held {
    File { file: File, path: PathBuf },
    Lease { name: String, holder: String, catalog: Arc<Catalog>, book: Arc<LeaseBook> },
}

/// Proof that an executing run is alive, held until it ends.
pub(crate) struct Alive {
    _kind: Option<Held>,
}

impl Claims {
    /// The claims of a tracker with holder id `holder`; on a catalog with leases, a heartbeat
    /// thread renews this tracker's leases every third of `ttl` while it holds any. Fails only if
    /// the system refuses that thread.
    pub(crate) fn new(catalog: Arc<Catalog>, session: String, ttl: Duration) -> std::io::Result<Claims> {
        let leases = Arc::new(LeaseBook::default());
        let heartbeat = catalog
            .store()
            .leases()
            .is_some()
            .then(|| Heartbeat::start(Arc::clone(&catalog), ttl, Arc::clone(&leases)))
            .transpose()?;
        Ok(Claims { catalog, session, ttl, leases, heartbeat })
    }

    /// Claim `sig` for run `run_id` of step `step`, waiting while another thread, process or
    /// host holds it. While it waits on a shared catalog, `ready` is asked every second or so
    /// whether the result is there already (the holder may have recorded it and lost its lease
    /// release); if so the wait ends with nothing held. `None` when claims cannot be used (the
    /// claims directory cannot be written, or a parallel map's worker found it held): the step
    /// then runs unclaimed.
    pub(crate) fn acquire(&self, sig: &str, step: &str, run_id: &str, ready: &dyn Fn() -> bool) -> Option<Claim> {
        if self.catalog.store().leases().is_some() {
            match self.lease(&format!("sig:{sig}"), step, run_id, ready) {
                Ok(claim) => return claim,
                Err(e) => tracing::debug!(error = %e, "lease unavailable; claiming on this host only"),
            }
        }
        let dir = crate::layout::catalog_dir(self.catalog.db_path()).join("claims");
        lock_file(&dir.join(format!("{sig}.lock")), step, true).map(|(kind, waited)| Claim { kind: Some(kind), waited })
    }

    /// Take lease `name` for run `run_id`, waiting (polling with growing pauses) while another
    /// live holder has it. `Ok(None)` for a parallel map's worker that found it held.
    fn lease(&self, name: &str, step: &str, run_id: &str, ready: &dyn Fn() -> bool) -> crate::Result<Option<Claim>> {
        let leases = self.catalog.store().leases().expect("checked by the caller");
        let host = crate::run::host_name();
        let holder = format!("{}/{run_id}", self.session);
        let mut pause = Duration::from_millis(20);
        let mut waited = false;
        let mut asked = std::time::Instant::now();
        loop {
            match leases.take(name, &holder, run_id, host, self.ttl)? {
                LeaseState::Taken => {
                    lock(&self.leases.held).push((name.to_owned(), holder.clone()));
                    let kind = Held::Lease {
                        name: name.to_owned(),
                        holder,
                        catalog: Arc::clone(&self.catalog),
                        book: Arc::clone(&self.leases),
                    };
                    return Ok(Some(Claim { kind: Some(kind), waited }));
                }
                LeaseState::Held { .. } if rayon::current_thread_index().is_some() => {
                    tracing::debug!(step, name, "the same step is executing elsewhere; a parallel map runs it anyway");
                    return Ok(None);
                }
                LeaseState::Held { host, run_id } => {
                    if !waited {
                        tracing::info!(
                            step,
                            host = host.as_deref().unwrap_or("?"),
                            run = run_id.as_deref().unwrap_or("?"),
                            "the same step is executing on another host; waiting for its result"
                        );
                    }
                    waited = true;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                    if asked.elapsed() >= Duration::from_secs(1) {
                        if ready() {
                            return Ok(Some(Claim { kind: None, waited }));
                        }
                        asked = std::time::Instant::now();
                    }
                }
            }
        }
    }

    /// Hold run `run_id` alive while it executes: nothing more when its claim is a lease that
    /// names it; else a lease of its own (PostgreSQL) and, on a DuckDB catalog, a lock file.
    pub(crate) fn alive(&self, run_id: &str, claim: Option<&Claim>) -> Alive {
        match claim.and_then(|c| c.kind.as_ref()) {
            Some(Held::Lease { .. }) => return Alive { _kind: None },
            // The claim's lock file names the run holding it: one file, not two, per execution.
            Some(Held::File { file, .. }) if name_holder(file, run_id).is_ok() => return Alive { _kind: None },
            _ => {}
        }
        if self.catalog.store().leases().is_some() {
            match self.lease(&format!("run:{run_id}"), "", run_id, &|| false) {
                Ok(Some(claim)) => return Alive { _kind: claim.kind },
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, run_id, "no lease for the run; it is alive on this host only"),
            }
        }
        let path = live_path(&self.catalog, run_id);
        Alive { _kind: path.and_then(|p| lock_file(&p, "", false)).map(|(kind, _)| kind) }
    }
}

impl Drop for Claims {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        match self {
            Held::File { file, path } => {
                let _ = std::fs::remove_file(&*path);
                let _ = file.unlock();
            }
            Held::Lease { name, holder, catalog, book } => {
                let key = (std::mem::take(name), std::mem::take(holder));
                lock(&book.held).retain(|held| *held != key);
                if let Some(leases) = catalog.store().leases()
                    && let Err(e) = leases.release(&key.0, &key.1)
                {
                    // Not renewed any more, it lapses by itself; the heartbeat retries meanwhile.
                    tracing::debug!(error = %e, name = %key.0, "could not release a lease; retrying");
                    lock(&book.unreleased).push(key);
                }
            }
        }
    }
}

/// The lock file that keeps run `run_id` alive on a DuckDB catalog.
fn live_path(catalog: &Catalog, run_id: &str) -> Option<PathBuf> {
    crate::ids::is_plain(run_id)
        .then(|| crate::layout::catalog_dir(catalog.db_path()).join("live").join(format!("{run_id}.lock")))
}

/// Whether run `run_id`, recorded as `running` with lease liveness, is still alive: its lease
/// is live on a server catalog (`live` holds the runs of live leases), or its lock file is held
/// (a DuckDB catalog; on a server catalog, a run that started while the server was unreachable,
/// alive on this host).
pub(crate) fn is_alive(catalog: &Catalog, run: &crate::Run, live: Option<&std::collections::HashSet<String>>) -> bool {
    if live.is_some_and(|live| live.contains(&run.id)) {
        return true;
    }
    let dir = crate::layout::catalog_dir(catalog.db_path());
    // Its signature's claim, held by it (the file names its holder), or a lock file of its own.
    let claim = crate::ids::signature_problem(&run.signature)
        .is_none()
        .then(|| dir.join("claims").join(format!("{}.lock", run.signature)));
    if claim.is_some_and(|path| locked(&path).is_some_and(|holder| holder.trim() == run.id)) {
        return true;
    }
    live_path(catalog, &run.id).is_some_and(|path| locked(&path).is_some())
}

/// The content of the lock file at `path` when another process holds its lock.
fn locked(path: &Path) -> Option<String> {
    let file = OpenOptions::new().read(true).write(true).open(path).ok()?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(TryLockError::WouldBlock) => Some(std::fs::read_to_string(path).unwrap_or_default()),
        Err(TryLockError::Error(_)) => None,
    }
}

/// Write `run_id` into the claim file `file` this process holds.
fn name_holder(mut file: &File, run_id: &str) -> std::io::Result<()> {
    use std::io::Write;
    file.set_len(0)?;
    file.write_all(run_id.as_bytes())
}

/// Lock `path` exclusively, waiting (when `wait`) while another holder has it. Returns the held
/// lock and whether it waited; `None` when the file cannot be locked here, or when a parallel
/// map's worker found it held.
fn lock_file(path: &Path, step: &str, wait: bool) -> Option<(Held, bool)> {
    let mut waited = false;
    loop {
        let file = match open(path) {
            Ok(file) => file,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot lock; running unclaimed");
                return None;
            }
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) if !wait => return None,
            Err(TryLockError::WouldBlock) if rayon::current_thread_index().is_some() => {
                // A rayon worker must not block: while it waits, the task it stole from a
                // step holding this very claim could never resume (a deadlock). It runs
                // unclaimed, as a twin did before claims existed.
                tracing::debug!(step, "the same step is executing elsewhere; a parallel map runs it anyway");
                return None;
            }
            Err(TryLockError::WouldBlock) => {
                tracing::info!(step, "the same step is executing elsewhere; waiting for its result");
                waited = true;
                if let Err(e) = file.lock() {
                    tracing::debug!(path = %path.display(), error = %e, "cannot wait for the claim; running unclaimed");
                    return None;
                }
            }
            Err(TryLockError::Error(e)) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot lock; running unclaimed");
                return None;
            }
        }
        // The owner we waited for removes the file before unlocking: ours must still be the
        // file at `path`, else open it again.
        if same_file(&file, path) {
            return Some((Held::File { file, path: path.to_path_buf() }, waited));
        }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    let open = || OpenOptions::new().create(true).truncate(false).write(true).open(path);
    open().or_else(|_| {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        open()
    })
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// One beat: renew the leases held now, retry the releases that failed.
fn beat(leases: &dyn crate::store::Leases, book: &LeaseBook, ttl: Duration) {
    let held: Vec<String> = lock(&book.held).iter().map(|(_, holder)| holder.clone()).collect();
    if !held.is_empty()
        && let Err(e) = leases.renew(&held, ttl)
    {
        crate::logging::warning!(error = %e, "could not renew this tracker's leases; they lapse if the catalog stays unreachable");
    }
    let unreleased = std::mem::take(&mut *lock(&book.unreleased));
    for (name, holder) in unreleased {
        if leases.release(&name, &holder).is_err() {
            lock(&book.unreleased).push((name, holder));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The thread that renews a tracker's leases while it holds any, and retries the releases that
/// failed.
struct Heartbeat {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

impl Heartbeat {
    fn start(catalog: Arc<Catalog>, ttl: Duration, book: Arc<LeaseBook>) -> std::io::Result<Heartbeat> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("consist-heartbeat".into()).spawn(move || {
            let (flag, wake) = &*signal;
            let mut stopped = lock(flag);
            while !*stopped {
                stopped = wake.wait_timeout(stopped, ttl / 3).unwrap_or_else(|e| e.into_inner()).0;
                if *stopped {
                    continue;
                }
                drop(stopped);
                if let Some(leases) = catalog.store().leases() {
                    beat(leases, &book, ttl);
                }
                stopped = lock(flag);
            }
        })?;
        Ok(Heartbeat { stop, thread })
    }

    fn stop(self) {
        *self.stop.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn twins_take_turns_and_the_file_is_gone_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc.lock");
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (path, inside, most, start) = (path.clone(), inside.clone(), most.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..25 {
                        let claim = lock_file(&path, "step", true).expect("claims work in a temp dir");
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(claim);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "never two holders of one signature at once");
        assert!(!path.exists());
        let other = lock_file(&path, "step", true).unwrap();
        assert!(lock_file(&dir.path().join("def.lock"), "step", true).is_some(), "another signature is not blocked");
        assert!(lock_file(&path, "step", false).is_none(), "a held lock is not taken without waiting");
        drop(other);
    }
}
