//! Sessions on a DuckDB catalog file, per thread: reads that share one connection, and writes
//! that share one attachment, until the session ends ([`Store::read_session`],
//! [`Store::write_session`]). Outside a session every call attaches the file and detaches it.
//!
//! [`Store::read_session`]: crate::store::Store::read_session
//! [`Store::write_session`]: crate::store::Store::write_session

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use duckdb::Connection;

use super::turn::Conn;
use crate::store::Session;

thread_local! {
    /// Read connections kept open on this thread by a read session, by absolute file path.
    static READS: RefCell<HashMap<PathBuf, Rc<Conn>>> = RefCell::new(HashMap::new());
    /// Write sessions open on this thread, by absolute file path: the connection of the session's
    /// first write, kept (and so the file attached) until the session ends.
    static WRITES: RefCell<HashMap<PathBuf, Option<Conn>>> = RefCell::new(HashMap::new());
}

/// A read connection: this call's own, or the one a read session keeps for its scope.
pub(super) enum ReadConn {
    Own(Conn),
    Shared(Rc<Conn>),
}

impl std::ops::Deref for ReadConn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            ReadConn::Own(c) => c,
            ReadConn::Shared(c) => c,
        }
    }
}

/// The connection a read session on this thread keeps for `path`, if one is open.
pub(super) fn shared_read(path: &Path) -> Option<ReadConn> {
    READS.with(|s| s.borrow().get(path).cloned()).map(ReadConn::Shared)
}

/// Start a read session keeping `conn` for `path`'s reads on this thread.
pub(super) fn begin_read(path: &Path, conn: Conn) -> Session {
    let path = path.to_path_buf();
    READS.with(|s| s.borrow_mut().insert(path.clone(), Rc::new(conn)));
    Session::ending(move || {
        READS.with(|s| s.borrow_mut().remove(&path));
    })
}

/// Start a write session for `path` on this thread (nothing, if one is open already: the outer
/// one ends it). Nothing is attached before its first write ([`after_write`]), so a session that
/// writes nothing leaves the file alone.
pub(super) fn begin_write(path: &Path) -> Session {
    let path = path.to_path_buf();
    let nested = WRITES.with(|s| {
        let mut sessions = s.borrow_mut();
        let nested = sessions.contains_key(&path);
        if !nested {
            sessions.insert(path.clone(), None);
        }
        nested
    });
    if nested {
        return Session::default();
    }
    Session::ending(move || {
        // Detached (so checkpointed) here, unless a write let it go already.
        let held = WRITES.with(|s| s.borrow_mut().remove(&path)).flatten();
        drop(held);
    })
}

/// After a write's transaction: in a write session, the first write's connection stays for the
/// next writes; with `release`, it goes now (and the file with it), the session's connection too.
pub(super) fn after_write(path: &Path, conn: Conn, release: bool) {
    let held = WRITES.with(|s| match s.borrow_mut().get_mut(path) {
        Some(slot) if release => slot.take(),
        Some(slot @ None) => slot.replace(conn),
        _ => Some(conn),
    });
    drop(held);
}
