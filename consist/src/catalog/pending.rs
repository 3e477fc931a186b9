//! The pending queue: snapshots the database beside a catalog's state directory has not stored
//! yet (`<state>/pending/<name>`, each the path of a snapshot file), written through by any
//! process that opens the database.

use std::path::{Path, PathBuf};

use super::snapshot::is_batch;
use crate::error::{Error, Result};
use crate::files::atomic::{TMP_MARK, abandoned, tmp_pid, write_atomic};

/// What a [`PendingQueue`] holds, by kind (see [`PendingQueue::backlog`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backlog {
    /// Batches of cache hits.
    pub(crate) hit_batches: usize,
    /// Whether anything else is queued: an executed run's snapshot.
    pub(crate) runs: bool,
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
        let path = self.dir.join(crate::ids::run_id(run_id, &self.dir.display())?);
        let text = snapshot.to_string_lossy();
        write_atomic(&path, text.as_bytes(), false)
            .or_else(|_| {
                std::fs::create_dir_all(&self.dir)?;
                write_atomic(&path, text.as_bytes(), false)
            })
            .map_err(Error::io("queueing run for the database in", &self.dir))
    }

    /// Queued entries: (run id, snapshot path). Unreadable entries are skipped; an entry left
    /// half-written by a killed process is finished first (see [`PendingQueue::recover`]).
    pub(crate) fn list(&self) -> Vec<(String, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<(String, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let name = if name.contains(TMP_MARK) { self.recover(&name)? } else { name };
                let target = std::fs::read_to_string(self.dir.join(&name)).ok()?;
                Some((name, PathBuf::from(target)))
            })
            .collect();
        out.sort();
        out
    }

    /// Whether nothing is queued (one directory read; entries' contents are not read).
    pub(crate) fn is_empty(&self) -> bool {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return true };
        !entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.contains(TMP_MARK) || self.recover(&name).is_some()
        })
    }

    /// Finish a queue entry that a killed process left as its temporary file
    /// (`<name>.tmp.<pid>.<n>`, written but never renamed): once abandoned (its process is gone,
    /// or it is over 10 minutes old), it is renamed into place if it names a snapshot file that
    /// exists, else removed. Without this, a run killed in that instant stayed invisible until
    /// `consist db rebuild`. Returns the entry's name when it is now queued.
    fn recover(&self, tmp_name: &str) -> Option<String> {
        let name = tmp_name.split_once(TMP_MARK)?.0;
        let pid = tmp_pid(tmp_name)?;
        let tmp = self.dir.join(tmp_name);
        if !abandoned(&tmp, pid) {
            return None;
        }
        let target = std::fs::read_to_string(&tmp).ok().map(PathBuf::from);
        let entry = self.dir.join(name);
        if target.is_some_and(|t| t.is_file()) && !entry.exists() && std::fs::rename(&tmp, &entry).is_ok() {
            crate::logging::warning!(entry = name, "finished a pending-queue entry left by a killed process");
            return Some(name.to_owned());
        }
        let _ = std::fs::remove_file(&tmp);
        None
    }

    /// What is queued, from the entries' names alone: how many batches of hits, and whether any
    /// other entry (a run's own snapshot, or an entry a killed process left half-written) is.
    pub(crate) fn backlog(&self) -> Backlog {
        let mut backlog = Backlog::default();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_batch(&name) && !name.contains(TMP_MARK) {
                backlog.hit_batches += 1;
            } else {
                backlog.runs = true;
            }
        }
        backlog
    }

    /// The snapshot path queued for `run_id`, if it is queued.
    pub(crate) fn get(&self, run_id: &str) -> Option<PathBuf> {
        if crate::ids::run_id_problem(run_id).is_some() {
            return None;
        }
        std::fs::read_to_string(self.dir.join(run_id)).ok().map(PathBuf::from)
    }

    /// Drop a synced entry (already gone is fine: another process synced it). A name that is
    /// not a plain run id names no entry.
    pub(crate) fn remove(&self, run_id: &str) {
        if crate::ids::run_id_problem(run_id).is_none() {
            let _ = std::fs::remove_file(self.dir.join(run_id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(q.backlog(), Backlog { hit_batches: 0, runs: true });
        q.remove("r2");
        q.push("hits-s-000001", Path::new("/s/hits-s-000001.jsonl")).unwrap();
        q.push("hits-s-000002", Path::new("/s/hits-s-000002.jsonl")).unwrap();
        assert_eq!(q.backlog(), Backlog { hit_batches: 2, runs: false });
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn an_entry_a_killed_process_left_half_written_is_finished_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let q = PendingQueue::new(dir.path());
        std::fs::create_dir_all(dir.path().join("pending")).unwrap();
        let snapshot = dir.path().join("r1.json");
        std::fs::write(&snapshot, b"{}").unwrap();
        // pid 0 is never a user process: the writer is gone.
        let orphan = dir.path().join("pending").join("r1.tmp.0.7");
        std::fs::write(&orphan, snapshot.to_string_lossy().as_bytes()).unwrap();
        let dangling = dir.path().join("pending").join("r2.tmp.0.8");
        std::fs::write(&dangling, b"/nowhere/r2.json").unwrap();
        let live = dir.path().join("pending").join(format!("r3.tmp.{}.9", std::process::id()));
        std::fs::write(&live, b"/nowhere/r3.json").unwrap();
        assert!(!q.is_empty(), "the finished entry counts");
        assert_eq!(q.list(), vec![("r1".into(), snapshot)]);
        assert!(!orphan.exists() && !dangling.exists(), "abandoned temporary files are gone");
        assert!(live.exists(), "a temporary file of a running process is left alone");
    }
}
