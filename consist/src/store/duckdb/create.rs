//! A DuckDB catalog file's header: checked before anything opens it, and a new file created so
//! that no process ever sees it without one.
//!
//! DuckDB creates a file (`open` with `O_CREAT`), then locks it, then writes its header. A second
//! process that opens the path in between finds an empty file, takes the lock first and fails
//! with "not a valid DuckDB database file": seen when a sweep's processes all started on a new
//! catalog. Here a new database is made under a private name in the catalog's sidecar directory
//! and hard-linked into place; the link fails if another process got there first, and the path
//! only ever holds a complete database.

use std::path::Path;

use crate::error::{Error, Result};

/// The size below which a file cannot hold DuckDB's header (its magic bytes end at byte 12).
const HEADER_LEN: u64 = 12;

/// Refuse an existing file that is not a DuckDB database (its header lacks DuckDB's magic
/// bytes), without opening it; a missing file is fine (it will be created), and so is an empty
/// one (another process may be creating it; an open names it if it stays empty).
pub(crate) fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut header = [0u8; HEADER_LEN as usize];
    let Ok(mut file) = std::fs::File::open(path) else { return Ok(()) };
    match file.read_exact(&mut header) {
        Ok(()) if &header[8..12] == b"DUCK" => Ok(()),
        Err(_) if file.metadata().is_ok_and(|m| m.len() == 0) => Ok(()),
        _ => Err(Error::NotADatabase {
            path: path.to_path_buf(),
            reason: "the file does not start with DuckDB's header".into(),
        }),
    }
}

/// Create the database at `path` if nothing is there, atomically. A filesystem without hard
/// links falls back to DuckDB's own creation (the race above, narrowed by
/// [`is_being_created`]'s retry).
pub(super) fn create_if_missing(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    let dir = crate::layout::catalog_dir(path);
    std::fs::create_dir_all(&dir).map_err(Error::io("creating the catalog's directory", &dir))?;
    sweep(&dir);
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let tmp = dir.join(format!("new-{}-{nonce}.duckdb", std::process::id()));
    let made = super::turn::create_file(&tmp)
        .map_err(|e| Error::Database { path: tmp.clone(), source: crate::error::DatabaseError(e) });
    let linked = made.map(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => tracing::debug!(db = %path.display(), "created the catalog file"),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => tracing::debug!(db = %path.display(), error = %e, "no hard link here; DuckDB creates the file"),
    });
    for leftover in [tmp.clone(), tmp.with_extension("duckdb.wal")] {
        let _ = std::fs::remove_file(leftover);
    }
    linked
}

/// Remove what a process killed while creating a catalog left in `dir`: `new-*` files over ten
/// minutes old (a creation takes milliseconds; age, not a pid, since the directory may be shared
/// by hosts). Best effort.
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(std::result::Result::ok) {
        let path = entry.path();
        let ours = entry.file_name().to_string_lossy().starts_with("new-");
        if ours && crate::files::atomic::older_than(&path, crate::files::atomic::ABANDONED_AFTER) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether `path` is shorter than DuckDB's header: a file another process is creating (on a
/// filesystem without hard links), or one left empty by a crash at its creation.
pub(super) fn is_being_created(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() < HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_catalog_is_created_whole_and_old_leftovers_of_a_killed_creation_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.duckdb");
        let sidecar = crate::layout::catalog_dir(&db);
        std::fs::create_dir_all(&sidecar).unwrap();
        let (old, fresh) = (sidecar.join("new-1-1.duckdb"), sidecar.join("new-2-2.duckdb"));
        for file in [&old, &fresh] {
            std::fs::write(file, b"").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&old).unwrap().set_modified(long_ago).unwrap();
        create_if_missing(&db).unwrap();
        assert!(check_header(&db).is_ok() && !is_being_created(&db), "a whole DuckDB file");
        assert!(!old.exists(), "an hour-old leftover is removed");
        assert!(fresh.exists(), "a young one may be another process's creation in progress");
        let names: Vec<String> =
            std::fs::read_dir(&sidecar).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, ["new-2-2.duckdb"], "nothing of this creation is left");
    }
}
