//! Rebuilding a catalog from the snapshots: the database's rows and the signature index, with
//! every snapshot that cannot be read reported by file and run, never silently dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::Catalog;
use crate::catalog::index::IndexEntry;
use crate::error::Result;
use crate::run::DamagedSnapshot;
use crate::run::{RunRecord, RunStatus};
use crate::store::RunQuery;

/// What [`Catalog::rebuild`] did.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct RebuildReport {
    /// Runs now in the store from this rebuild: restored from snapshots, plus those kept (below).
    pub restored: usize,
    /// Runs removed: recorded on this host under the scanned directory, but their snapshots are
    /// gone (with `--replace-all`: every run not restored).
    pub removed: Vec<String>,
    /// Runs the catalog holds that this rebuild did not read and left as they were: other run
    /// dirs, other hosts, rows without a snapshot (Python Consist's).
    pub untouched: usize,
    /// Snapshot files, or lines of hit batches, that could not be read.
    pub damaged: Vec<DamagedSnapshot>,
    /// Runs whose snapshot could not be read but whose rows the database still held: kept as
    /// they were.
    pub kept: Vec<String>,
    /// Signatures whose cache entry was missing from the signature index and was written again.
    pub indexed: usize,
    /// The damaged snapshots whose run is not in the store now (its id unknown, or read from no
    /// other snapshot and not in the database before the rebuild either): what a user must look at.
    pub lost: Vec<DamagedSnapshot>,
}

/// What became of the run of a snapshot a rebuild could not read ([`RebuildReport::fate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamagedFate {
    /// Its run is not in the store: restore the file from a backup and rebuild again.
    NotRestored,
    /// Its run keeps the rows the database already held.
    RowsKept,
    /// Its run was restored from another copy of its snapshot.
    RestoredFromCopy,
}

impl RebuildReport {
    /// What became of the run of `damaged` (one of [`RebuildReport::damaged`]).
    pub fn fate(&self, damaged: &DamagedSnapshot) -> DamagedFate {
        if self.lost.contains(damaged) {
            DamagedFate::NotRestored
        } else if damaged.run_id.as_ref().is_some_and(|id| self.kept.contains(id)) {
            DamagedFate::RowsKept
        } else {
            DamagedFate::RestoredFromCopy
        }
    }
}

/// The runs a rebuild read: by id, the files it read them from (with their size and mtime),
/// the directories it could not list, what it reported.
struct Scan {
    by_id: BTreeMap<String, RunRecord>,
    files: HashMap<PathBuf, Option<Stamp>>,
    unlisted: Vec<PathBuf>,
    report: RebuildReport,
}

/// A file's size and mtime, to tell whether it changed since it was read.
type Stamp = (u64, std::time::SystemTime);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

impl Catalog {
    /// Write the runs of the snapshots found under `root` (searched recursively) and of the
    /// copies of runs merged from other databases into the store, except purged runs, and
    /// remove the runs recorded on this host under `root` whose snapshots are gone. Everything
    /// else the catalog holds is left as it is: runs of other run dirs and other hosts, rows
    /// without a snapshot (runs Python Consist wrote). Runs synced by other processes while the
    /// rebuild runs are kept: the snapshots are listed again just before the write, and a run
    /// still queued is never removed. See [`Catalog::rebuild_replacing_all`] for a rebuild that
    /// keeps nothing else.
    ///
    /// A snapshot that cannot be read is reported in [`RebuildReport::damaged`]; its run keeps the
    /// rows the database already held for it ([`RebuildReport::kept`]) instead of being dropped.
    /// A snapshot whose run id or signature could not name a file is refused, and nothing is
    /// written. The signature index gets an entry again for every signature whose newest
    /// executed run is completed and which has none. The pending queue is emptied of restored
    /// runs.
    pub fn rebuild(&self, root: &Path) -> Result<RebuildReport> {
        let purged = self.purged_ids()?;
        let mut scan = self.scan(root, &purged, &HashMap::new())?;
        let mut gone: Vec<(String, String)> = Vec::new();
        if self.has_store() {
            let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| crate::mounts::normalize(root));
            let queued: HashSet<String> = self.pending_records().into_iter().map(|r| r.run.id).collect();
            let stored = self.store().find_runs(&RunQuery::default())?;
            // Whether a recorded run dir lies under `root`: resolved once per distinct dir.
            let mut under_root: HashMap<String, bool> = HashMap::new();
            let mut untouched = 0;
            for run in stored {
                if scan.by_id.contains_key(&run.id) {
                    continue;
                }
                let ours = run.meta.get("host").and_then(|h| h.as_str()) == Some(crate::run::host_name());
                let here = |dir: &str| {
                    *under_root.entry(dir.to_owned()).or_insert_with(|| {
                        std::fs::canonicalize(dir)
                            .unwrap_or_else(|_| crate::mounts::normalize(Path::new(dir)))
                            .starts_with(&real_root)
                    })
                };
                let run_dir = run.meta.get(crate::store::RUN_DIR_KEY).and_then(|d| d.as_str());
                if ours && !queued.contains(&run.id) && run_dir.is_some_and(here) {
                    gone.push((run.id, run.signature));
                } else {
                    untouched += 1;
                }
            }
            // Snapshots written or rewritten since the scan (a run synced or finished meanwhile)
            // are read again, and their runs are not gone.
            let late = self.scan(root, &purged, &scan.files)?;
            gone.retain(|(id, _)| !late.by_id.contains_key(id));
            scan.by_id.extend(late.by_id);
            scan.unlisted.extend(late.unlisted);
            scan.report.untouched = untouched;
            if !scan.unlisted.is_empty() && !gone.is_empty() {
                crate::logging::warning!(
                    dirs = ?scan.unlisted,
                    runs = gone.len(),
                    "some directories could not be listed: no run is taken for gone, none removed"
                );
                scan.report.untouched += gone.len();
                gone.clear();
            }
        }
        let mut records = self.restore(&mut scan)?;
        // Read as late as possible: a pin or an eviction made while the scan ran is kept too.
        if self.has_store() {
            keep_marks(&mut records, &catalog_marks(&self.store().find_runs(&RunQuery::default())?));
        }
        let removed: Vec<String> = gone.iter().map(|(id, _)| id.clone()).collect();
        self.store().replace_runs(&records, &removed)?;
        self.forget_removed(&gone)?;
        scan.report.removed = removed;
        self.finish(scan.report, records)
    }

    /// After runs left the store: no index entry here names them, and trackers still open
    /// forget what they remembered (the store raised its purge epoch for other hosts).
    fn forget_removed(&self, gone: &[(String, String)]) -> Result<()> {
        if gone.is_empty() {
            return Ok(());
        }
        let ids: HashSet<&str> = gone.iter().map(|(id, _)| id.as_str()).collect();
        for (_, signature) in gone {
            self.index.remove_if_run(signature, &ids)?;
        }
        let epoch = self.store().identity_seen().map_or(0, |i| i.purge_epoch);
        self.local.mark_purge(epoch).map_err(crate::error::Error::io("marking the removal in", self.local.dir()))
    }

    /// [`Catalog::rebuild`] that replaces the store's whole content with the runs read under
    /// `root` (and merged copies): every other run is removed, whoever recorded it. What `consist
    /// db rebuild --replace-all` does, after asking.
    pub fn rebuild_replacing_all(&self, root: &Path) -> Result<RebuildReport> {
        let purged = self.purged_ids()?;
        let mut scan = self.scan(root, &purged, &HashMap::new())?;
        let mut records = self.restore(&mut scan)?;
        let mut gone = Vec::new();
        if self.has_store() {
            let stored = self.store().find_runs(&RunQuery::default())?;
            keep_marks(&mut records, &catalog_marks(&stored));
            let restored: HashSet<&str> = records.iter().map(|r| r.run.id.as_str()).collect();
            gone =
                stored.into_iter().filter(|r| !restored.contains(r.id.as_str())).map(|r| (r.id, r.signature)).collect();
        }
        self.store().replace_all(&records)?;
        self.forget_removed(&gone)?;
        scan.report.removed = gone.into_iter().map(|(id, _)| id).collect();
        self.finish(scan.report, records)
    }

    /// Runs purged from this catalog: the store's record of purges and this host's markers.
    fn purged_ids(&self) -> Result<HashSet<String>> {
        let dir = crate::layout::purged_dir(&crate::layout::catalog_dir(self.db_path()));
        let mut purged: HashSet<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some(e.file_name().to_str()?.to_owned()))
            .collect();
        if self.has_store() {
            purged.extend(self.store().purged()?);
        }
        Ok(purged)
    }

    /// Read the merged copies and the snapshots under `root`, skipping purged runs and the files
    /// in `skip` that have not changed since. A run's own snapshot, found under `root`, wins over
    /// a merged copy of it. A record whose ids could not name a file refuses the whole rebuild.
    fn scan(&self, root: &Path, purged: &HashSet<String>, skip: &HashMap<PathBuf, Option<Stamp>>) -> Result<Scan> {
        let dir = crate::layout::catalog_dir(self.db_path());
        let merged: Vec<PathBuf> = std::fs::read_dir(crate::layout::merged_dir(&dir))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        let (found, unlisted) = crate::catalog::snapshot::find_all_checked(root)?;
        let mut scan =
            Scan { by_id: BTreeMap::new(), files: HashMap::new(), unlisted, report: RebuildReport::default() };
        for path in merged.into_iter().chain(found) {
            let stamp = stamp(&path);
            if skip.get(&path).is_some_and(|seen| *seen == stamp) {
                continue;
            }
            let (records, damaged) = crate::catalog::snapshot::read_checked(&path).unwrap_or_else(|e| {
                let run_id = crate::catalog::snapshot::run_id_of(&path);
                (Vec::new(), vec![DamagedSnapshot { file: path.clone(), line: None, run_id, reason: e.to_string() }])
            });
            crate::ids::check_records(&records, &path.display())?;
            for record in records.into_iter().filter(|r| !purged.contains(&r.run.id)) {
                scan.by_id.insert(record.run.id.clone(), record);
            }
            scan.report
                .damaged
                .extend(damaged.into_iter().filter(|d| d.run_id.as_ref().is_none_or(|id| !purged.contains(id))));
            scan.files.insert(path, stamp);
        }
        Ok(scan)
    }

    /// The records to write: those read, plus the stored rows of runs whose snapshot is damaged
    /// (kept), with the damaged ones reported.
    fn restore(&self, scan: &mut Scan) -> Result<Vec<RunRecord>> {
        let Scan { by_id, report, .. } = scan;
        // A damaged snapshot's run may still be whole in the database: keep those rows.
        let unread: Vec<String> = report
            .damaged
            .iter()
            .filter_map(|d| d.run_id.clone())
            .filter(|id| !by_id.contains_key(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !unread.is_empty() && self.has_store() {
            for record in self.run_records(&unread)? {
                report.kept.push(record.run.id.clone());
                by_id.insert(record.run.id.clone(), record);
            }
        }
        report.kept.sort();
        // A damaged snapshot's run may also have been read from another copy (a merged one).
        report.lost = report
            .damaged
            .iter()
            .filter(|d| d.run_id.as_ref().is_none_or(|id| !by_id.contains_key(id)))
            .cloned()
            .collect();
        for bad in &report.damaged {
            crate::logging::warning!(
                file = %bad.file.display(),
                line = bad.line,
                run = bad.run_id.as_deref().unwrap_or("?"),
                reason = %bad.reason,
                "unreadable snapshot: {}",
                if report.lost.contains(bad) { "its run is not restored" } else { "its run is restored" }
            );
        }
        let mut records: Vec<RunRecord> = std::mem::take(by_id).into_values().collect();
        records.sort_by_key(|r| r.run.created_at);
        Ok(records)
    }

    /// After the store is written: the local state follows the catalog's identity, missing
    /// index entries are written again, and restored runs leave the pending queue.
    fn finish(&self, mut report: RebuildReport, records: Vec<RunRecord>) -> Result<RebuildReport> {
        self.adopt_seen();
        report.indexed = self.reindex(&records)?;
        let restored: HashSet<&str> = records.iter().map(|r| r.run.id.as_str()).collect();
        for (name, entry) in self.pending_entries() {
            if entry.iter().all(|r| r.run.status.is_terminal() && restored.contains(r.run.id.as_str())) {
                self.pending.remove(&name);
            }
        }
        report.restored = records.len();
        Ok(report)
    }

    /// Give every signature whose newest executed run is completed a signature-index entry, unless
    /// its entry already names a completed run; returns how many entries were written.
    fn reindex(&self, records: &[RunRecord]) -> Result<usize> {
        let completed: HashSet<&str> =
            records.iter().filter(|r| r.run.status == RunStatus::Completed).map(|r| r.run.id.as_str()).collect();
        let mut newest: HashMap<&str, &RunRecord> = HashMap::new();
        let indexable = |r: &&RunRecord| crate::ids::signature_problem(&r.run.signature).is_none();
        let source = |r: &&RunRecord| !is_hit(r) && !r.run.meta.contains_key("evicted");
        for record in records.iter().filter(|r| r.run.status == RunStatus::Completed).filter(source).filter(indexable) {
            let slot = newest.entry(record.run.signature.as_str()).or_insert(record);
            if (record.run.ended_at, &record.run.id) > (slot.run.ended_at, &slot.run.id) {
                *slot = record;
            }
        }
        let mut written = 0;
        for (signature, record) in newest {
            let current = self.index.get(signature)?;
            if current.is_some_and(|e| completed.contains(e.run_id.as_str())) {
                continue;
            }
            self.index.put(IndexEntry { signature: signature.to_owned(), ..IndexEntry::of(record) })?;
            written += 1;
        }
        Ok(written)
    }
}

/// What only the catalog holds of a run, not its snapshot: a pin (`consist pin`) and gc's mark
/// of an eviction (`meta.pinned`, `meta.evicted`), by run id.
fn catalog_marks(stored: &[crate::run::Run]) -> HashMap<String, serde_json::Map<String, serde_json::Value>> {
    stored
        .iter()
        .filter_map(|run| {
            let marks: serde_json::Map<String, serde_json::Value> = ["pinned", "evicted"]
                .iter()
                .filter_map(|key| Some(((*key).to_owned(), run.meta.get(*key)?.clone())))
                .collect();
            (!marks.is_empty()).then(|| (run.id.clone(), marks))
        })
        .collect()
}

/// Carry the catalog's marks into the records a rebuild writes over their rows.
fn keep_marks(records: &mut [RunRecord], marks: &HashMap<String, serde_json::Map<String, serde_json::Value>>) {
    for record in records {
        if let Some(marks) = marks.get(&record.run.id) {
            record.run.meta.extend(marks.clone());
        }
    }
}

/// Whether a run reused a cached result (its outputs belong to its cache source).
fn is_hit(record: &RunRecord) -> bool {
    record.run.meta.get("cache_hit").and_then(serde_json::Value::as_bool) == Some(true)
}
