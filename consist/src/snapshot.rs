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

/// What marks a temporary file of [`write_atomic`]: `<name>.tmp.<pid>.<n>`.
pub(crate) const TMP_MARK: &str = ".tmp.";

/// Write `bytes` to `path` atomically: readers see the old content or the new, never a mix.
/// With `durable`, the data is fsynced before the rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    write_atomic_with(path, durable, |file| file.write_all(bytes))
}

/// [`write_atomic`] with the content written by `write` into the temporary file
/// (`<name>.tmp.<pid>.<n>` beside `path`, removed on failure).
pub(crate) fn write_atomic_with(
    path: &Path,
    durable: bool,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        write(&mut file)?;
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

/// A fresh temporary name beside `path` (`<name>.tmp.<pid>.<n>`), for writing then renaming.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!("{TMP_MARK}{}.{n}", std::process::id()));
    path.with_file_name(tmp_name)
}

/// Whether the temporary file `tmp` of [`write_atomic`], written by process `pid`, was abandoned:
/// its process is no longer running on this host (Linux), or it is over 10 minutes old (a write
/// takes milliseconds; this also covers a process on another host of a shared file system).
pub(crate) fn abandoned(tmp: &Path, pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let old = std::fs::metadata(tmp)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > std::time::Duration::from_secs(600)));
    let gone = cfg!(target_os = "linux") && !Path::new("/proc").join(pid.to_string()).exists();
    old || gone
}

/// The writing process of a temporary file of [`write_atomic`], from its name.
pub(crate) fn tmp_pid(name: &str) -> Option<u32> {
    name.split_once(TMP_MARK)?.1.split('.').next()?.parse().ok()
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
    write_file(&dir, &snapshot_name(record, &dir)?, &pretty(record), record.run.status.is_terminal())
}

/// Write a run's snapshot durably as `<dir>/<run_id>.json`; returns its path.
pub(crate) fn write_in(dir: &Path, record: &RunRecord) -> Result<PathBuf> {
    write_file(dir, &snapshot_name(record, dir)?, &pretty(record), true)
}

/// `<run_id>.json`, once the run id is checked to name one file in `dir`.
fn snapshot_name(record: &RunRecord, dir: &Path) -> Result<String> {
    Ok(format!("{}.json", crate::ids::run_id(&record.run.id, &dir.display())?))
}

/// The purge marker of `run_id` in the catalog state directory `catalog`, once the run id is
/// checked to name one file there.
pub(crate) fn purge_marker(catalog: &Path, run_id: &str) -> Result<PathBuf> {
    let dir = purged_dir(catalog);
    let id = crate::ids::run_id(run_id, &dir.display())?;
    Ok(dir.join(id))
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

/// Whether a snapshot or pending-entry name is a batch of hits (`hits-<session>-<n>`, no `_`),
/// not a run's (a run id always ends in `_<hex>`, even that of a step named `hits-...`).
pub(crate) fn is_batch(name: &str) -> bool {
    name.starts_with("hits-") && !name.contains('_')
}

/// Read one snapshot, refusing one whose run id, signature or producer ids could not name a
/// file (see `crate::ids`).
pub fn read(path: &Path) -> Result<RunRecord> {
    let record = read_unchecked(path)?;
    crate::ids::check_record(&record, &path.display())?;
    Ok(record)
}

/// Read one snapshot whose ids the caller checks.
fn read_unchecked(path: &Path) -> Result<RunRecord> {
    let bytes = std::fs::read(path).map_err(Error::io("reading snapshot", path))?;
    parse(&bytes).map_err(|reason| Error::CorruptRecord { path: path.to_path_buf(), reason })
}

/// One run record from JSON: damaged JSON, or a record of another snapshot format (written by a
/// newer consist), is an error saying which.
fn parse(bytes: &[u8]) -> std::result::Result<RunRecord, String> {
    let record: RunRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if record.format != crate::run::SNAPSHOT_FORMAT {
        return Err(format!(
            "its format is `{}`, which this consist does not know (it reads `{}`); use the consist version \
             that wrote it, or a newer one",
            record.format,
            crate::run::SNAPSHOT_FORMAT
        ));
    }
    Ok(record)
}

/// Every run record in a snapshot file: one for `<run_id>.json` (read as [`read`] does), one per
/// line for a `.jsonl` batch. A batch line that cannot be read, or whose ids could not name a
/// file, is skipped with a warning naming the file and line.
pub fn read_all(path: &Path) -> Result<Vec<RunRecord>> {
    if !is_jsonl(path) {
        return read(path).map(|r| vec![r]);
    }
    let (records, damaged) = read_checked(path)?;
    for bad in damaged {
        crate::logging::warning!(file = %path.display(), line = bad.line, run = bad.run_id.as_deref().unwrap_or("?"), error = %bad.reason, "skipping an unreadable run in a snapshot batch");
    }
    let source = path.display();
    Ok(records
        .into_iter()
        .filter(|r| match crate::ids::check_record(r, &source) {
            Ok(()) => true,
            Err(e) => {
                crate::logging::warning!(file = %path.display(), error = %e, "skipping a run in a snapshot batch");
                false
            }
        })
        .collect())
}

fn is_jsonl(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "jsonl")
}

/// A snapshot, or a line of a batch, that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DamagedSnapshot {
    /// The snapshot file.
    pub file: PathBuf,
    /// The line of a batch (1-based); `None` for a one-run snapshot.
    pub line: Option<usize>,
    /// The run it held, when its id can still be read (a one-run snapshot is named after it).
    pub run_id: Option<String>,
    /// Why it cannot be read.
    pub reason: String,
}

/// The records of a snapshot file with its damaged parts, without warning and without checking
/// the records' ids (the caller does: see [`crate::ids::check_record`]): `Err` only when the
/// file cannot be read at all (for a one-run snapshot, also when its JSON is damaged).
pub(crate) fn read_checked(path: &Path) -> Result<(Vec<RunRecord>, Vec<DamagedSnapshot>)> {
    if !is_jsonl(path) {
        return read_unchecked(path).map(|r| (vec![r], Vec::new()));
    }
    let bytes = std::fs::read(path).map_err(Error::io("reading snapshot batch", path))?;
    let mut records = Vec::new();
    let mut damaged = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
        match parse(line) {
            Ok(record) => records.push(record),
            Err(reason) => damaged.push(DamagedSnapshot {
                file: path.to_path_buf(),
                line: Some(n + 1),
                run_id: first_id(line),
                reason,
            }),
        }
    }
    Ok((records, damaged))
}

/// The first `"id":"..."` value of a (possibly torn) JSON record: its run's id, which a record
/// writes before any other id.
fn first_id(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let rest = &text[text.find("\"id\":\"")? + 6..];
    let id = &rest[..rest.find('"')?];
    (!id.is_empty() && !id.contains('\\')).then(|| id.to_owned())
}

/// Directory in a catalog holding one note per pending snapshot found damaged
/// (`<name>.json`, a [`DamagedSnapshot`]), listed by `consist db inspect`.
pub(crate) fn damaged_dir(catalog: &Path) -> PathBuf {
    catalog.join("damaged")
}

/// Keep a note of a damaged pending snapshot; returns whether it was written.
pub(crate) fn note_damaged(catalog: &Path, name: &str, damaged: &DamagedSnapshot) -> bool {
    let dir = damaged_dir(catalog);
    let bytes = serde_json::to_vec_pretty(damaged).unwrap_or_default();
    write_file(&dir, &format!("{name}.json"), &bytes, true).is_ok()
}

/// The notes of damaged pending snapshots, oldest name first.
pub(crate) fn damaged_notes(catalog: &Path) -> Vec<DamagedSnapshot> {
    let Ok(entries) = std::fs::read_dir(damaged_dir(catalog)) else { return Vec::new() };
    let mut notes: Vec<DamagedSnapshot> =
        entries.flatten().filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()).collect();
    notes.sort_by(|a: &DamagedSnapshot, b| a.file.cmp(&b.file));
    notes
}

/// The run a one-run snapshot file holds, from its name (`<run_id>.json`).
pub(crate) fn run_id_of(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    (path.extension().is_some_and(|e| e == "json") && !is_batch(stem)).then(|| stem.to_owned())
}

/// Every snapshot file (`.json` or `.jsonl` batch) under `root`, searched recursively (for
/// `rebuild`; read each with [`read_all`]). Temporary snapshot files abandoned by killed
/// processes are removed on the way.
pub fn find_all(root: &Path) -> Result<Vec<PathBuf>> {
    find_all_checked(root).map(|(found, _)| found)
}

/// [`find_all`], with the directories under `root` that could not be listed (their snapshots,
/// if any, were not found: a rebuild must not take their runs for gone).
pub(crate) fn find_all_checked(root: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut found = Vec::new();
    let mut unlisted = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if dir == root => return Err(Error::io("listing snapshots in", root)(e)),
            Err(_) => {
                unlisted.push(dir);
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let in_snapshots = path.parent().is_some_and(|p| p.ends_with(".consist/snapshots"));
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if in_snapshots
                && tmp_pid(&entry.file_name().to_string_lossy()).is_some_and(|pid| abandoned(&path, pid))
            {
                // A snapshot write a killed process never finished: the run's previous snapshot
                // (or none) stands.
                if std::fs::remove_file(&path).is_ok() {
                    tracing::info!(file = %path.display(), "removed a temporary snapshot file left by a killed process");
                }
            } else if in_snapshots && path.extension().is_some_and(|e| e == "json" || e == "jsonl") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok((found, unlisted))
}

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
    fn a_torn_batch_line_names_its_file_line_and_run() {
        let dir = tempfile::tempdir().unwrap();
        let batch = dir.path().join("hits-s-1.jsonl");
        std::fs::write(&batch, b"{\"format\":\"x\",\"run\":{\"id\":\"step_ab12\",\"sta\n\n").unwrap();
        let (records, damaged) = read_checked(&batch).unwrap();
        assert!(records.is_empty());
        assert_eq!(damaged.len(), 1);
        assert_eq!((damaged[0].line, damaged[0].run_id.as_deref()), (Some(1), Some("step_ab12")));
        assert_eq!(run_id_of(Path::new("/s/step_ab12.json")).as_deref(), Some("step_ab12"));
        assert_eq!(run_id_of(&batch), None);
        // A step named `hits-...` makes runs, not batches.
        assert!(is_batch("hits-0123456789ab-000001") && !is_batch("hits-per-day_1a2b3c4d"));
        assert_eq!(run_id_of(Path::new("/s/hits-per-day_1a2b3c4d.json")).as_deref(), Some("hits-per-day_1a2b3c4d"));
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
