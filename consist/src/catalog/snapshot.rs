//! Per-run JSON snapshots, the durable record: written before anything else learns of a run,
//! read back by `rebuild`, found under a directory.
//!
//! A completed or failed run's snapshot is written (temp file, fsync, rename) before anything else
//! learns of it, so a database failure or a killed process never loses it: `rebuild` restores the
//! database from snapshots, and any process that opens the database syncs the pending queue. A
//! `running` snapshot is not fsynced (a run that never ends is a zombie either way), and hit
//! snapshots are fsynced a batch at a time: a hit lost in a crash loses a record of a reuse, never
//! a result, and can never cause a false hit.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::files::atomic::{abandoned, tmp_pid, write_atomic};
use crate::layout::{damaged_dir, snapshots_dir};
use crate::run::{DamagedSnapshot, RunRecord};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
