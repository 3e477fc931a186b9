//! This process's DuckDB instance, and its turn at each database file: a call attaches the file
//! to one in-memory instance kept for the process and detaches it when done, so the file is held
//! (and locked against other processes) only for the call, as when each call opened its own
//! instance, without paying for a new instance each time (14-20 ms of DuckDB registering its
//! functions; an attach costs 1-7 ms, more on a bigger file). Detaching checkpoints the file, so it
//! is complete for other tools as soon as the call returns (or, in a session that keeps the
//! attachment across calls, when the session ends).
//!
//! Within this process, one thread at a time works on a file: a thread that holds it may open
//! it again (the nested connection shares the attachment), another waits for its turn, at most
//! the store's lock timeout.
//!
//! No query on the shared instance may scan every attached database (`duckdb_tables()`,
//! `duckdb_databases()`, `information_schema`): while it runs it holds them all open, and a
//! DETACH on another thread then returns before its file is closed. SQL a user writes runs in an
//! instance of its own (`DuckDbStore::open_private`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use duckdb::{Config, Connection};

use super::sql::{quote_ident, quote_text};

/// The instance's own catalog, the default of a connection between attachments.
const HOME: &str = "memory";

/// The process's instance; `None` until first used, and after it was let go (see
/// [`discard_instance`]).
static INSTANCE: Mutex<Option<Connection>> = Mutex::new(None);

/// Held while any DuckDB instance of this process is being made (the shared one or a private
/// one): DuckDB's start-up crashed (SIGSEGV) when two instances were made at once in one process
/// (`consist query` under load, 2 of 360). A process exiting while one was being made did not
/// crash (0 of 10,500 library processes; RELIABILITY.md); the CLI waits for it all the same.
static MAKING: Mutex<bool> = Mutex::new(false);

/// Make a DuckDB instance with `make`, never while another is being made in this process.
pub(super) fn making<T>(make: impl FnOnce() -> T) -> T {
    let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    make()
}

/// Before the process exits: wait for an instance being made in the background, and make none
/// from now on in the background ([`prepare_instance`]); calls that need one still make it.
#[cfg(feature = "cli")]
pub(crate) fn settle() {
    *MAKING.lock().unwrap_or_else(|e| e.into_inner()) = true;
}

/// Numbers the attachments, whose names are the instance's (and so the process's) to share.
static ATTACHMENTS: AtomicU64 = AtomicU64::new(0);

/// A name for a database attached to the process's instance, unique within the process.
pub(super) fn fresh_name(prefix: &str) -> String {
    format!("{prefix}_{}", ATTACHMENTS.fetch_add(1, Ordering::Relaxed))
}

/// A new connection to the process's instance, creating the instance first if there is none.
pub(crate) fn instance() -> duckdb::Result<Connection> {
    let mut slot = INSTANCE.lock().unwrap_or_else(|e| e.into_inner());
    match slot.as_ref() {
        Some(home) => home.try_clone(),
        // The same order of locks as every caller of `making`: the slot, then `MAKING`.
        None => making(|| fill(&mut slot)),
    }
}

/// Make the process's instance into the empty `slot` (its caller holds `MAKING`) and return a
/// connection to it.
fn fill(slot: &mut Option<Connection>) -> duckdb::Result<Connection> {
    // Spilled blocks go to a directory of this process's own, not the current directory
    // (DuckDB's default for an in-memory instance); DuckDB creates it only if it spills.
    let spill = std::env::temp_dir().join(format!("consist-duckdb-{}", std::process::id()));
    let config = Config::default().with("temp_directory", spill.to_string_lossy())?;
    let home = Connection::open_in_memory_with_flags(config)?;
    let conn = home.try_clone()?;
    *slot = Some(home);
    Ok(conn)
}

/// Create an empty database file at `path` (nothing may be there), through the process's instance.
pub(super) fn create_file(path: &Path) -> duckdb::Result<()> {
    let Some(text) = path.to_str() else { return Err(duckdb::Error::InvalidPath(path.to_path_buf())) };
    let conn = instance()?;
    let name = quote_ident(&fresh_name("consist_new"));
    conn.execute_batch(&format!("ATTACH {} AS {name}", quote_text(text)))?;
    conn.execute_batch(&format!("DETACH {name}")).inspect_err(discard_instance)
}

/// Create the process's instance now, on a thread of its own, so that the first call to need it
/// does not wait for it (a tracker starts this when it opens).
pub(crate) fn prepare_instance() {
    // `try_lock`: while another thread is making the instance, there is nothing to do.
    if INSTANCE.try_lock().is_ok_and(|slot| slot.is_none()) {
        let _ = std::thread::Builder::new().name("consist-duckdb".into()).spawn(|| {
            let mut slot = INSTANCE.lock().unwrap_or_else(|e| e.into_inner());
            // Nothing is made once the process settled (it is about to exit). The same order of
            // locks as every caller of `making`.
            let settled = MAKING.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() && !*settled {
                let _ = fill(&mut slot);
            }
        });
    }
}

/// Let the instance go: it closes with its last connection, releasing every file still attached
/// to it, and the next call creates a new one.
fn discard_instance(error: &duckdb::Error) {
    tracing::warn!(%error, "letting this process's DuckDB instance go; the next call creates a new one");
    *INSTANCE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// After an error that invalidated the instance (DuckDB refuses all further work on it after a
/// fatal error), let it go.
fn discard_if_invalidated(error: &duckdb::Error) {
    if error.to_string().contains("invalidated") {
        discard_instance(error);
    }
}

/// A connection to one database file, holding this process's turn at the file until dropped.
pub(super) struct Conn {
    pub(super) conn: Connection,
    pub(super) turn: FileGuard,
}

impl std::ops::Deref for Conn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(name) = self.turn.last_attachment() else { return };
        // Detaching checkpoints the file and releases its lock. DuckDB reports a failed
        // checkpoint as an error of a DETACH that happened all the same; a DETACH refused (a
        // transaction left open) is tried again after a rollback.
        let detach = format!("USE {HOME}; DETACH DATABASE IF EXISTS {}", quote_ident(&name));
        if let Err(error) = self.conn.execute_batch(&detach) {
            tracing::warn!(db = %self.turn.path.display(), %error, "detaching the catalog file failed");
            let _ = self.conn.execute_batch("ROLLBACK");
            if attached(&self.conn, &name) && self.conn.execute_batch(&detach).is_err() && attached(&self.conn, &name) {
                // Still attached, the file would stay locked for the life of the process.
                discard_instance(&error);
            }
        }
        self.turn.set_attachment(None);
    }
}

/// Whether a database of this name is attached to the instance of `conn`: whether it can be
/// used (not read from `duckdb_databases()`, which would hold every attached database open
/// while it scans them; see `missing_table` in `mod.rs`).
fn attached(conn: &Connection, name: &str) -> bool {
    let used = conn.execute_batch(&format!("USE {}", quote_ident(name))).is_ok();
    let _ = conn.execute_batch(&format!("USE {HOME}"));
    used
}

/// How this process has a file attached.
#[derive(Clone)]
pub(super) struct Attachment {
    name: String,
    /// Attached read-only.
    pub(super) read_only: bool,
}

/// Which thread holds each open file, how many connections it has open on it, and under what
/// name it is attached.
struct Holder {
    thread: ThreadId,
    depth: usize,
    attachment: Option<Attachment>,
}

/// Files with an open connection in this process.
static OPEN_FILES: std::sync::LazyLock<(Mutex<HashMap<PathBuf, Holder>>, Condvar)> =
    std::sync::LazyLock::new(Default::default);

/// This process's turn at one database file.
pub(super) struct FileGuard {
    path: PathBuf,
}

impl FileGuard {
    /// Wait for this thread's turn at `path` (immediate if this thread holds it already), at most
    /// `timeout`: past it, how long it waited. Bounded, so that a thread that waits for another
    /// while holding the file (a session kept across a flush) gets an error, not a hang.
    pub(super) fn acquire(path: &Path, timeout: Duration) -> Result<FileGuard, Duration> {
        let (lock, turn) = &*OPEN_FILES;
        let me = std::thread::current().id();
        let start = Instant::now();
        let mut open = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match open.get_mut(path) {
                None => {
                    open.insert(path.to_path_buf(), Holder { thread: me, depth: 1, attachment: None });
                    break;
                }
                Some(holder) if holder.thread == me => {
                    holder.depth += 1;
                    break;
                }
                Some(_) => {
                    let left = timeout.checked_sub(start.elapsed()).filter(|left| !left.is_zero());
                    let Some(left) = left else { return Err(start.elapsed()) };
                    open = turn.wait_timeout(open, left).unwrap_or_else(|e| e.into_inner()).0;
                }
            }
        }
        Ok(FileGuard { path: path.to_path_buf() })
    }

    fn holder<T>(&self, f: impl FnOnce(&mut Holder) -> T) -> Option<T> {
        let mut open = OPEN_FILES.0.lock().unwrap_or_else(|e| e.into_inner());
        open.get_mut(&self.path).map(f)
    }

    fn set_attachment(&self, attachment: Option<Attachment>) {
        self.holder(|h| h.attachment = attachment);
    }

    /// The attachment's name if this is the last connection on it.
    fn last_attachment(&self) -> Option<String> {
        self.holder(|h| if h.depth == 1 { h.attachment.as_ref().map(|a| a.name.clone()) } else { None }).flatten()
    }

    /// The attachment this thread already has for the file (a nested open), if any.
    pub(super) fn attachment(&self) -> Option<Attachment> {
        self.holder(|h| h.attachment.clone()).flatten()
    }

    /// A connection on `held`, the attachment this thread already has for the file.
    pub(super) fn join(&self, held: &Attachment) -> duckdb::Result<Connection> {
        let conn = instance()?;
        conn.execute_batch(&format!("USE {}", quote_ident(&held.name)))?;
        Ok(conn)
    }

    /// Attach the file to the process's instance and return a connection whose default catalog
    /// it is. Fails as opening the file would (another process holds it, not a database...).
    pub(super) fn attach(&self, read_only: bool) -> duckdb::Result<Connection> {
        // A path that is not UTF-8 cannot be written into the statement unchanged.
        let Some(path) = self.path.to_str() else { return Err(duckdb::Error::InvalidPath(self.path.clone())) };
        let conn = instance()?;
        let name = fresh_name("consist");
        let mode = if read_only { " (READ_ONLY)" } else { "" };
        let attach = format!("ATTACH {} AS {}{mode}", quote_text(path), quote_ident(&name));
        if let Err(error) = conn.execute_batch(&attach) {
            discard_if_invalidated(&error);
            return Err(error);
        }
        if let Err(error) = conn.execute_batch(&format!("USE {}", quote_ident(&name))) {
            let _ = conn.execute_batch(&format!("DETACH {}", quote_ident(&name)));
            return Err(error);
        }
        self.set_attachment(Some(Attachment { name, read_only }));
        Ok(conn)
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        let (lock, turn) = &*OPEN_FILES;
        let mut open = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(holder) = open.get_mut(&self.path) {
            holder.depth -= 1;
            if holder.depth == 0 {
                open.remove(&self.path);
                turn.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::DuckDbStore;
    use super::FileGuard;
    use crate::store::{QueryAccess, RunQuery, Store};

    #[test]
    fn a_file_held_by_another_thread_under_another_spelling_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let plain = DuckDbStore::new(dir.path().join("p.duckdb"), Duration::from_secs(10));
        // `Path` equality already ignores a `.`; it does not resolve a `..`.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let other = DuckDbStore::new(dir.path().join("sub/../p.duckdb"), Duration::from_secs(10));
        plain.init().unwrap();
        let (held, release) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let conn = plain.open(false).unwrap();
            held.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(conn);
        });
        release.recv().unwrap();
        // DuckDB refuses a second attachment of the file ("Unique file handle conflict"): this
        // thread's turn comes when the other detaches it.
        let started = Instant::now();
        other.init().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
        holder.join().unwrap();
    }

    #[test]
    fn a_confined_query_leaves_the_process_instance_unconfined() {
        let dir = tempfile::tempdir().unwrap();
        let first = catalog(&dir.path().join("a.duckdb"));
        let outside = dir.path().join("outside.csv");
        std::fs::write(&outside, "a\n1\n").unwrap();
        let read = format!("SELECT * FROM read_csv('{}')", outside.display());
        let refused = first.query_sql(&read, QueryAccess::CatalogOnly);
        assert!(refused.is_err(), "a confined query read a file outside the catalog");
        assert!(first.query_sql(&read, QueryAccess::External).is_ok(), "the file is readable");
        // Attaching another file needs external access: a confined process instance refuses it.
        catalog(&dir.path().join("b.duckdb"));
        let rows = first.query_sql("SELECT count(*) FROM run", QueryAccess::CatalogOnly).unwrap();
        assert_eq!(rows.rows.len(), 1);
    }

    #[test]
    fn every_call_detaches_its_file_a_read_session_and_a_compaction_included() {
        let dir = tempfile::tempdir().unwrap();
        let store = catalog(&dir.path().join("p.duckdb"));
        store.find_runs(&RunQuery::default()).unwrap();
        {
            let _session = store.read_session().unwrap();
            store.find_runs(&RunQuery::default()).unwrap();
            store.summary().unwrap();
            let sql = store.query_sql("SELECT 1", QueryAccess::CatalogOnly).unwrap_err();
            assert!(sql.to_string().contains("while this thread has the catalog open"), "{sql}");
            let write = store.init().unwrap_err();
            assert!(write.to_string().contains("a read session is open on this thread"), "{write}");
        }
        store.compact().unwrap();
        let again = reattach(&dir.path().join("p.duckdb"));
        assert!(again.is_ok(), "a file of this catalog is still attached to the process's instance: {again:?}");
    }

    #[test]
    fn writes_in_a_write_session_are_checkpointed_once_when_it_ends_and_other_threads_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.duckdb");
        let store = catalog(&path);
        let record = |i: usize| {
            let now = chrono::Utc::now();
            let mut run = crate::run::Run::starting("step", serde_json::Map::new(), now).with_id(&format!("step_{i}"));
            run.end(crate::run::RunStatus::Completed);
            crate::run::RunRecord::starting(run, serde_json::json!({}), Default::default(), dir.path().into(), vec![])
        };
        let absent = dir.path().join("absent.duckdb");
        drop(DuckDbStore::new(&absent, Duration::from_secs(10)).write_session().unwrap());
        assert!(!absent.exists(), "a session that wrote nothing made a file");
        let wal = dir.path().join("p.duckdb.wal");
        let reader = {
            let _session = store.write_session().unwrap();
            for i in 0..3 {
                store.write(&[record(i)]).unwrap();
            }
            // Committed (in the write-ahead log) and readable on this thread; not checkpointed
            // write by write, which detaching after each would do.
            assert_eq!(store.count_runs(&RunQuery::default()).unwrap(), 3);
            assert!(wal.exists(), "the writes were checkpointed one by one");
            // Another thread's turn comes when the session ends.
            let other = DuckDbStore::new(&path, Duration::from_secs(10));
            let (counted, reader) = std::sync::mpsc::channel();
            std::thread::spawn(move || counted.send(other.count_runs(&RunQuery::default()).unwrap()));
            assert!(reader.recv_timeout(Duration::from_millis(200)).is_err(), "another thread read during the session");
            reader
        };
        assert_eq!(reader.recv_timeout(Duration::from_secs(10)).unwrap(), 3, "the session's end let it in");
        // Ended: checkpointed (no log left) and detached.
        assert!(!wal.exists(), "the session's end left the write-ahead log");
        let again = reattach(&path);
        assert!(again.is_ok(), "the file is still attached after the session: {again:?}");
        // A reader of another process asking to be let in ends the hold at the next write.
        {
            let _session = store.write_session().unwrap();
            store.write(&[record(3)]).unwrap();
            assert!(wal.exists());
            let flag = crate::layout::catalog_dir(&path).join("reader-waiting");
            std::fs::create_dir_all(flag.parent().unwrap()).unwrap();
            std::fs::write(&flag, b"").unwrap();
            store.write(&[record(4)]).unwrap();
            assert!(!wal.exists(), "the file stayed attached while a reader asked for it");
            assert!(reattach(&path).is_ok(), "the file stayed attached while a reader asked for it");
            std::fs::remove_file(&flag).unwrap();
        }
        assert_eq!(store.count_runs(&RunQuery::default()).unwrap(), 5);
    }

    #[test]
    fn another_threads_turn_is_waited_for_at_most_the_lock_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.duckdb");
        let store = catalog(&path);
        let _session = store.read_session().unwrap();
        let other = DuckDbStore::new(&path, Duration::from_millis(200));
        let started = Instant::now();
        let refused = std::thread::spawn(move || other.count_runs(&RunQuery::default())).join().unwrap();
        let waited = started.elapsed();
        let Err(crate::error::Error::DatabaseBusy { reason, .. }) = refused else { panic!("{refused:?}") };
        assert!(reason.contains("another thread of this process"), "{reason}");
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(5), "{waited:?}");
    }

    /// A new catalog at `path`, its schema made, waiting up to 10 s for its file.
    fn catalog(path: &std::path::Path) -> DuckDbStore {
        let store = DuckDbStore::new(path, Duration::from_secs(10));
        store.init().unwrap();
        store
    }

    /// Attach `path` to the process's instance and let it go again. DuckDB refuses to attach a
    /// file twice, so this succeeds only if every call let it go (listing `duckdb_databases()`
    /// would hold other tests' files open meanwhile).
    fn reattach(path: &std::path::Path) -> Result<(), String> {
        let guard = FileGuard::acquire(&std::path::absolute(path).unwrap(), Duration::from_secs(10)).unwrap();
        let conn = guard.attach(true).map_err(|e| e.to_string())?;
        drop(super::Conn { conn, turn: guard });
        Ok(())
    }

    #[test]
    fn a_call_has_closed_its_file_when_it_returns_while_other_threads_read_other_catalogs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.duckdb"), dir.path().join("b.duckdb"));
        let (first, second) = (catalog(&a), catalog(&b));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    second.identity().unwrap();
                    second.find_runs(&RunQuery::default()).unwrap();
                }
            })
        };
        for _ in 0..100 {
            first.init().unwrap();
            // Closed: attaching it again succeeds (a close deferred to the reader's thread would
            // still hold it: "Unique file handle conflict").
            let again = reattach(&a);
            assert!(again.is_ok(), "the file was still open after the call returned: {again:?}");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap();
    }
}
