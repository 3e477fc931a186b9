//! One connection per DuckDB file at a time within this process: two DuckDB instances of one file
//! in one process (the tracker's writer thread and a reader) would not see each other's writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;

use duckdb::Connection;

/// A connection, holding this process's turn at its file until dropped.
pub(super) struct Conn {
    pub(super) conn: Connection,
    pub(super) _guard: FileGuard,
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

/// Files with an open connection in this process, and which thread holds each (a thread that
/// already holds a file may open it again, as before).
static OPEN_FILES: std::sync::LazyLock<(Holders, Condvar)> = std::sync::LazyLock::new(Default::default);

/// Each open file's holding thread and how many connections it has open.
type Holders = Mutex<HashMap<PathBuf, (ThreadId, usize)>>;

/// This process's turn at one database file.
pub(super) struct FileGuard {
    path: PathBuf,
}

impl FileGuard {
    pub(super) fn acquire(path: &Path) -> FileGuard {
        let (lock, turn) = &*OPEN_FILES;
        let me = std::thread::current().id();
        let mut open = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match open.get_mut(path) {
                None => {
                    open.insert(path.to_path_buf(), (me, 1));
                    break;
                }
                Some((holder, depth)) if *holder == me => {
                    *depth += 1;
                    break;
                }
                Some(_) => open = turn.wait(open).unwrap_or_else(|e| e.into_inner()),
            }
        }
        FileGuard { path: path.to_path_buf() }
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        let (lock, turn) = &*OPEN_FILES;
        let mut open = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, depth)) = open.get_mut(&self.path) {
            *depth -= 1;
            if *depth == 0 {
                open.remove(&self.path);
                turn.notify_all();
            }
        }
    }
}
