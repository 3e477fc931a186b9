//! Where a catalog's files live: the snapshots of a run directory and the state directory beside
//! a DuckDB catalog (or a server catalog's local state).
//!
//! Layout:
//! ```text
//! <run_dir>/.consist/snapshots/<run_id>.json   one snapshot per executed run, replaced atomically
//! <run_dir>/.consist/snapshots/hits-<session>-<n>.jsonl
//!                                              snapshots of cache hits, one JSON line per run,
//!                                              written a batch at a time (group commit)
//! <db_path>.consist/pending/<name>             absolute path of a snapshot file the database lacks
//! <db_path>.consist/merged/<run_id>.json       copy of a snapshot merged from another database
//! <db_path>.consist/purged/<run_id>            marker of a purged run (never rebuilt)
//! ```

use std::path::{Path, PathBuf};

use crate::error::Result;

/// Directory holding the snapshots of a run directory.
pub fn snapshots_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(".consist").join("snapshots")
}

/// Directory beside a database that holds its signature index and pending queue.
pub fn catalog_dir(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(".consist");
    db_path.with_file_name(name)
}

/// Directory in a catalog holding copies of the snapshots of runs merged in from another
/// database (`consist db merge`), so a rebuild restores them wherever their run directories live.
pub(crate) fn merged_dir(catalog: &Path) -> PathBuf {
    catalog.join("merged")
}

/// Directory in a catalog holding one marker per purged run (`<run_id>`, content `local` or
/// `merged`), so a rebuild never restores a purged run from a copy of its snapshot elsewhere.
pub(crate) fn purged_dir(catalog: &Path) -> PathBuf {
    catalog.join("purged")
}

/// The purge marker of `run_id` in the catalog state directory `catalog`, once the run id is
/// checked to name one file there.
pub(crate) fn purge_marker(catalog: &Path, run_id: &str) -> Result<PathBuf> {
    let dir = purged_dir(catalog);
    let id = crate::ids::run_id(run_id, &dir.display())?;
    Ok(dir.join(id))
}

/// Directory in a catalog holding one note per pending snapshot found damaged
/// (`<name>.json`, a [`DamagedSnapshot`]), listed by `consist db inspect`.
pub(crate) fn damaged_dir(catalog: &Path) -> PathBuf {
    catalog.join("damaged")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_sits_beside_the_database() {
        assert_eq!(catalog_dir(Path::new("/x/provenance.duckdb")), Path::new("/x/provenance.duckdb.consist"));
    }
}
