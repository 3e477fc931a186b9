//! Per-run JSON snapshots (the durable record) and the queue of snapshots not yet in the database.
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
//! A completed or failed run's snapshot is written (temp file, fsync, rename) before anything else
//! learns of it, so a database failure or a killed process never loses it: `rebuild` restores the
//! database from snapshots, and any process that opens the database syncs the pending queue. A
//! `running` snapshot is not fsynced (a run that never ends is a zombie either way), and hit
//! snapshots are fsynced a batch at a time: a hit lost in a crash loses a record of a reuse, never
//! a result, and can never cause a false hit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::run::RunRecord;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `path` atomically: readers see the old content or the new, never a mix.
/// With `durable`, the data is fsynced before the rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp.{}.{n}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Remove a file; one that is already gone is fine (another process got there first).
pub(crate) fn remove_if_present(path: &Path, action: &'static str) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(action, path)(e)),
        _ => Ok(()),
    }
}

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

/// Write a run's snapshot into its run directory (durably once the run has ended); returns its
/// path.
pub(crate) fn write(record: &RunRecord) -> Result<PathBuf> {
    let dir = snapshots_dir(&record.run_dir);
    write_file(&dir, &format!("{}.json", record.run.id), &pretty(record), record.run.status.is_terminal())
}

/// Write a run's snapshot durably as `<dir>/<run_id>.json`; returns its path.
pub(crate) fn write_in(dir: &Path, record: &RunRecord) -> Result<PathBuf> {
    write_file(dir, &format!("{}.json", record.run.id), &pretty(record), true)
}

/// Write a batch of hit snapshots durably as `<run_dir>/.consist/snapshots/<name>.jsonl`, one
/// compact JSON line per run; returns its path.
pub(crate) fn write_batch(run_dir: &Path, name: &str, records: &[RunRecord]) -> Result<PathBuf> {
    let mut bytes = Vec::with_capacity(records.len() * 2048);
    for record in records {
        serde_json::to_writer(&mut bytes, record).expect("a RunRecord always serializes");
        bytes.push(b'\n');
    }
    write_file(&snapshots_dir(run_dir), &format!("{name}.jsonl"), &bytes, true)
}

fn pretty(record: &RunRecord) -> Vec<u8> {
    serde_json::to_vec_pretty(record).expect("a RunRecord always serializes")
}

fn write_file(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> Result<PathBuf> {
    let path = dir.join(name);
    write_atomic(&path, bytes, durable)
        .or_else(|_| {
            std::fs::create_dir_all(dir)?;
            write_atomic(&path, bytes, durable)
        })
        .map_err(Error::io("writing snapshot", &path))?;
    Ok(path)
}

/// Whether a snapshot or pending-entry name is a batch of hits (`hits-...`).
pub(crate) fn is_batch(name: &str) -> bool {
    name.starts_with("hits-")
}

/// Read one snapshot.
pub fn read(path: &Path) -> Result<RunRecord> {
    let bytes = std::fs::read(path).map_err(Error::io("reading snapshot", path))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::CorruptRecord { path: path.to_path_buf(), reason: e.to_string() })
}

/// Every run record in a snapshot file: one for `<run_id>.json`, one per line for a `.jsonl`
/// batch. A batch line that cannot be read is skipped with a warning naming the file and line.
pub fn read_all(path: &Path) -> Result<Vec<RunRecord>> {
    if path.extension().is_none_or(|e| e != "jsonl") {
        return read(path).map(|r| vec![r]);
    }
    let bytes = std::fs::read(path).map_err(Error::io("reading snapshot batch", path))?;
    let mut records = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
        match serde_json::from_slice(line) {
            Ok(record) => records.push(record),
            Err(e) => {
                tracing::warn!(file = %path.display(), line = n + 1, error = %e, "skipping an unreadable run in a snapshot batch")
            }
        }
    }
    Ok(records)
}

/// Every snapshot file (`.json` or `.jsonl` batch) under `root`, searched recursively (for
/// `rebuild`; read each with [`read_all`]).
pub fn find_all(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if dir == root => return Err(Error::io("listing snapshots in", root)(e)),
            Err(_) => continue,
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json" || e == "jsonl")
                && path.parent().is_some_and(|p| p.ends_with(".consist/snapshots"))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The queue of snapshots that the database beside `catalog` has not stored yet.
#[derive(Debug, Clone)]
pub(crate) struct PendingQueue {
    dir: PathBuf,
}

impl PendingQueue {
    pub(crate) fn new(catalog: &Path) -> PendingQueue {
        PendingQueue { dir: catalog.join("pending") }
    }

    /// Note that `run_id`'s snapshot at `snapshot` must reach the database. Not fsynced: a lost
    /// entry only delays the sync, and `rebuild` finds the snapshot anyway.
    pub(crate) fn push(&self, run_id: &str, snapshot: &Path) -> Result<()> {
        let path = self.dir.join(run_id);
        let text = snapshot.to_string_lossy();
        write_atomic(&path, text.as_bytes(), false)
            .or_else(|_| {
                std::fs::create_dir_all(&self.dir)?;
                write_atomic(&path, text.as_bytes(), false)
            })
            .map_err(Error::io("queueing run for the database in", &self.dir))
    }

    /// Queued entries: (run id, snapshot path). Unreadable entries are skipped.
    pub(crate) fn list(&self) -> Vec<(String, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<(String, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                if name.contains(".tmp.") {
                    return None;
                }
                let target = std::fs::read_to_string(e.path()).ok()?;
                Some((name, PathBuf::from(target)))
            })
            .collect();
        out.sort();
        out
    }

    /// Whether nothing is queued (one directory read; entries' contents are not read).
    pub(crate) fn is_empty(&self) -> bool {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return true };
        !entries.flatten().any(|e| !e.file_name().to_string_lossy().contains(".tmp."))
    }

    /// The snapshot path queued for `run_id`, if it is queued.
    pub(crate) fn get(&self, run_id: &str) -> Option<PathBuf> {
        std::fs::read_to_string(self.dir.join(run_id)).ok().map(PathBuf::from)
    }

    /// Drop a synced entry (already gone is fine: another process synced it).
    pub(crate) fn remove(&self, run_id: &str) {
        let _ = std::fs::remove_file(self.dir.join(run_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"first", true).unwrap();
        write_atomic(&p, b"second", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left behind");
    }

    #[test]
    fn catalog_sits_beside_the_database() {
        assert_eq!(catalog_dir(Path::new("/x/provenance.duckdb")), Path::new("/x/provenance.duckdb.consist"));
    }

    #[test]
    fn pending_queue_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let q = PendingQueue::new(dir.path());
        assert!(q.list().is_empty());
        q.push("r1", Path::new("/s/r1.json")).unwrap();
        q.push("r2", Path::new("/s/r2.json")).unwrap();
        assert_eq!(q.list(), vec![("r1".into(), "/s/r1.json".into()), ("r2".into(), "/s/r2.json".into())]);
        q.remove("r1");
        q.remove("r1");
        assert_eq!(q.list().len(), 1);
    }
}
