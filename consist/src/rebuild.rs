//! Rebuilding a catalog from the snapshots: the database's rows and the signature index, with
//! every snapshot that cannot be read reported by file and run, never silently dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::index::IndexEntry;
use crate::run::{RunRecord, RunStatus};
use crate::snapshot::{self, DamagedSnapshot};

/// What [`Catalog::rebuild`] did.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct RebuildReport {
    /// Runs now in the store: restored from snapshots, plus those kept (below).
    pub restored: usize,
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

impl Catalog {
    /// Replace the store's content with the snapshots found under `root` (searched recursively)
    /// and the copies of runs merged from other databases, except purged runs.
    ///
    /// A snapshot that cannot be read is reported in [`RebuildReport::damaged`]; its run keeps the
    /// rows the database already held for it ([`RebuildReport::kept`]) instead of being dropped.
    /// The signature index gets an entry again for every signature whose newest executed run is
    /// completed and which has none (a lost `<db>.consist/` directory no longer turns every step
    /// into a miss). The pending queue is emptied of restored runs.
    pub fn rebuild(&self, root: &Path) -> Result<RebuildReport> {
        let dir = snapshot::catalog_dir(self.db_path());
        let list = |dir: PathBuf| std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path());
        let merged = list(snapshot::merged_dir(&dir)).filter(|p| p.extension().is_some_and(|e| e == "json"));
        let purged: HashSet<String> =
            list(snapshot::purged_dir(&dir)).filter_map(|p| Some(p.file_name()?.to_str()?.to_owned())).collect();
        let mut report = RebuildReport::default();
        // A run's own snapshot, found under `root`, wins over a merged copy of it.
        let mut by_id = BTreeMap::new();
        for path in merged.chain(snapshot::find_all(root)?) {
            let (records, damaged) = snapshot::read_checked(&path).unwrap_or_else(|e| {
                let run_id = snapshot::run_id_of(&path);
                (Vec::new(), vec![DamagedSnapshot { file: path.clone(), line: None, run_id, reason: e.to_string() }])
            });
            for record in records.into_iter().filter(|r| !purged.contains(&r.run.id)) {
                by_id.insert(record.run.id.clone(), record);
            }
            report
                .damaged
                .extend(damaged.into_iter().filter(|d| d.run_id.as_ref().is_none_or(|id| !purged.contains(id))));
        }
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
            for record in self.store().run_records(&unread)? {
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
            tracing::warn!(
                file = %bad.file.display(),
                line = bad.line,
                run = bad.run_id.as_deref().unwrap_or("?"),
                reason = %bad.reason,
                "unreadable snapshot: {}",
                if report.lost.contains(bad) { "its run is not restored" } else { "its run is restored" }
            );
        }
        let mut records: Vec<RunRecord> = by_id.into_values().collect();
        records.sort_by_key(|r| r.run.created_at);
        self.store().replace_all(&records)?;
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
        for record in records.iter().filter(|r| r.run.status == RunStatus::Completed && !is_hit(r)) {
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
            self.index.put(IndexEntry {
                signature: signature.to_owned(),
                run_id: record.run.id.clone(),
                run_dir: record.run_dir.clone(),
                outputs: record.outputs.clone(),
                confirmed: false,
            })?;
            written += 1;
        }
        Ok(written)
    }
}

/// Whether a run reused a cached result (its outputs belong to its cache source).
fn is_hit(record: &RunRecord) -> bool {
    record.run.meta.get("cache_hit").and_then(serde_json::Value::as_bool) == Some(true)
}
