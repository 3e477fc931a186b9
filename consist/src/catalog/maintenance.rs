//! Catalog maintenance that changes what is recorded: purging runs, merging another database in.
//!
//! Both keep the catalog's promises. A purge removes a run everywhere a later process could find
//! it (signature index, snapshots, merged copies, pending queue, miss history, database), so no
//! cache hit points at a purged run and no rebuild brings it back. A merge writes a copy of every
//! merged snapshot beside the database before the database itself, so a rebuild restores merged
//! runs too.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::artifact::Artifact;
use crate::catalog::Catalog;
use crate::catalog::index::IndexEntry;
use crate::error::{Error, Result};
use crate::run::{RunRecord, RunStatus};
use crate::store::RunQuery;

/// How [`Catalog::purge`] chooses and removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeOptions {
    /// Also purge the runs whose parent is purged (a scenario's steps), recursively.
    pub include_children: bool,
    /// Delete the files of removed artifacts, when they lie in their producing run's own output
    /// directory (`<run_dir>/outputs/<run_id>/`); other files are never touched.
    pub delete_files: bool,
    /// Purge runs still marked `running` even when their process may be alive.
    pub force: bool,
    /// Report what would be removed; remove nothing.
    pub dry_run: bool,
}

impl Default for PurgeOptions {
    fn default() -> Self {
        PurgeOptions { include_children: true, delete_files: false, force: false, dry_run: false }
    }
}

/// What a purge removed (or, for a dry run, would remove). Field names are stable (`--json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PurgeReport {
    /// Nothing was removed.
    pub dry_run: bool,
    /// Every purged run: the ones asked for, then their children.
    pub runs: Vec<String>,
    /// The runs included because their parent was purged.
    pub children: Vec<String>,
    /// Artifacts no remaining run links, removed with the runs. Artifacts that remaining runs
    /// still read or reuse stay, with their producer recorded as it was.
    pub artifacts: Vec<String>,
    /// Snapshot files removed (for a run merged from another database, this catalog's copy
    /// only). A purge marker per run keeps any other copy out of later rebuilds.
    pub snapshots: Vec<PathBuf>,
    /// Signature-index entries removed, so no later cache hit points at a purged run.
    pub index_entries: usize,
    /// Files deleted (`delete_files`).
    pub files_deleted: Vec<PathBuf>,
    /// Files of removed artifacts left on disk, each with the reason.
    pub files_kept: Vec<KeptFile>,
}

/// A file a purge left on disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptFile {
    /// The file.
    pub path: PathBuf,
    /// Why it was kept.
    pub reason: String,
}

/// What [`Catalog::merge`] does with a run id recorded in both databases with different content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Merge nothing and name the conflicting runs.
    #[default]
    Error,
    /// Keep this database's runs and merge the rest.
    Skip,
}

/// What a merge copied in (or, for a dry run, would copy). Field names are stable (`--json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MergeReport {
    /// The catalog merged from (a path, or a URL without its password).
    pub source: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// Runs copied in.
    pub merged: Vec<String>,
    /// Runs already here with the same signature and status (merging twice changes nothing).
    pub already_present: Vec<String>,
    /// Runs whose id is recorded here with different content, left as they are here.
    pub conflicts_skipped: Vec<String>,
    /// Runs still `running` in the source, left for a later merge.
    pub running_skipped: Vec<String>,
    /// Artifact links of the merged runs (inputs and outputs).
    pub artifact_links: usize,
    /// Signature-index entries added: merged runs whose outputs exist on this machine now serve
    /// cache hits here (a signature that already has an entry keeps it).
    pub index_entries: usize,
}

/// What `db copy` did (`--json` prints this): the merge, and the check that followed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CopyReport {
    /// What the copy merged in, and what it left out (runs still running in the source).
    pub merge: MergeReport,
    /// Finished runs of the source found in the destination with the same signature and status.
    pub runs_checked: usize,
    /// Their artifact links (inputs and outputs), all found in the destination.
    pub links_checked: usize,
}

/// Purge-marker content of a run recorded by a tracker of this catalog.
const LOCAL: &str = "local";
/// Purge-marker content of a run merged from another database.
const MERGED: &str = "merged";

impl Catalog {
    /// Where a run purged earlier was recorded ([`LOCAL`] or [`MERGED`]), from its purge marker.
    fn purged_origin(&self, run_id: &str) -> Option<&'static str> {
        let marker = crate::layout::purge_marker(&crate::layout::catalog_dir(self.db_path()), run_id).ok()?;
        match std::fs::read_to_string(marker).ok()?.as_str() {
            LOCAL => Some(LOCAL),
            _ => Some(MERGED),
        }
    }

    /// Remove runs (by exact id) from everything the catalog keeps; see [`PurgeOptions`].
    ///
    /// Order matters for a process killed part-way: index entries go first (no hit can point at
    /// a run being purged), then a purge marker per run (no rebuild restores it, even from a
    /// copy of its snapshot elsewhere), then snapshots, then the database rows in one
    /// transaction, then files. Until the database step, running the purge again finishes it.
    /// A run merged from another database loses only this catalog's copy of its snapshot; its
    /// own snapshot and files belong to that database and are never touched.
    pub fn purge(&self, run_ids: &[String], options: PurgeOptions) -> Result<PurgeReport> {
        if !self.exists() {
            return Err(Error::no_database(self.db_path()));
        }
        // Even a dry run moves pending runs into the database first (as any writer would), so
        // its answer covers them; it removes nothing.
        self.sync()?;
        let (records, children) = self.with_children(run_ids, options.include_children)?;
        let runs: Vec<String> = records.iter().map(|r| r.run.id.clone()).collect();
        if !options.force {
            refuse_live(&records)?;
        }
        let purged: HashSet<&str> = runs.iter().map(String::as_str).collect();
        let mut report = PurgeReport { dry_run: options.dry_run, children, ..PurgeReport::default() };

        let catalog_dir = crate::layout::catalog_dir(self.db_path());
        let merged_dir = crate::layout::merged_dir(&catalog_dir);
        // Where each run was recorded: [`MERGED`] runs have a copy of their snapshot here.
        let mut origins: BTreeMap<&str, &'static str> = BTreeMap::new();
        let owned = self.owner();
        for record in &records {
            let name = format!("{}.json", record.run.id);
            let copy = merged_dir.join(&name);
            if copy.exists() {
                // Its own snapshot belongs to the database it was merged from: leave it there.
                origins.insert(&record.run.id, MERGED);
                report.snapshots.push(copy);
            } else {
                origins.insert(&record.run.id, LOCAL);
                // Only in a run dir of this catalog on this host: a path a record merely names
                // (another host's, or a hostile catalog's) is never deleted.
                let own = crate::layout::snapshots_dir(&record.run_dir).join(&name);
                if own.exists() && owned(&own) {
                    report.snapshots.push(own);
                }
            }
        }
        let signatures: HashSet<&str> = records.iter().map(|r| r.run.signature.as_str()).collect();
        if options.dry_run {
            report.index_entries = signatures
                .iter()
                .filter(|s| self.index.get(s).ok().flatten().is_some_and(|e| purged.contains(e.run_id.as_str())))
                .count();
        } else {
            for signature in &signatures {
                report.index_entries += usize::from(self.index.remove_if_run(signature, &purged)?);
            }
            // Trackers still open on this catalog forget what they remembered at their next lookup.
            let epoch = self.store().identity_seen().map_or(0, |i| i.purge_epoch + 1);
            self.local.mark_purge(epoch).map_err(Error::io("marking the purge in", self.local.dir()))?;
            let tombstones = crate::layout::purged_dir(&catalog_dir);
            std::fs::create_dir_all(&tombstones).map_err(Error::io("creating", &tombstones))?;
            for (id, origin) in &origins {
                let path = crate::layout::purge_marker(&catalog_dir, id)?;
                crate::files::atomic::write_atomic(&path, origin.as_bytes(), true)
                    .map_err(Error::io("marking purged", &path))?;
            }
            for path in &report.snapshots {
                crate::files::atomic::remove_if_present(path, "removing snapshot")?;
            }
            let mut steps = HashSet::new();
            for record in &records {
                self.pending.remove(&record.run.id);
                steps.insert(record.run.model_name.as_str());
            }
            for step in steps {
                if let Err(e) = self.history.forget(step, &purged) {
                    crate::logging::warning!(step, error = %e, "could not drop purged runs from the miss history");
                }
            }
        }

        let removed = self.store().purge(&runs, options.dry_run)?;
        self.adopt_seen();
        let by_id: BTreeMap<&str, &RunRecord> = records.iter().map(|r| (r.run.id.as_str(), r)).collect();
        for artifact in &removed {
            let producer = artifact.run_id.as_deref().and_then(|id| by_id.get(id).copied());
            // Where the producer was recorded: purged now, purged before (its marker), or unknown.
            let origin =
                artifact.run_id.as_deref().and_then(|id| origins.get(id).copied().or_else(|| self.purged_origin(id)));
            match file_plan(artifact, producer, origin, options.delete_files, &owned) {
                FilePlan::Absent => {}
                FilePlan::Delete(path) => {
                    if !options.dry_run {
                        match std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                            true => std::fs::remove_dir_all(&path)
                                .map_err(Error::io("deleting artifact directory", &path))?,
                            false => crate::files::atomic::remove_if_present(&path, "deleting artifact file")?,
                        }
                        if let Some(dir) = path.parent() {
                            let _ = std::fs::remove_dir(dir); // only if now empty
                        }
                    }
                    report.files_deleted.push(path);
                }
                FilePlan::Keep(kept) => report.files_kept.push(kept),
            }
        }
        report.artifacts = removed.into_iter().map(|a| a.id).collect();
        report.runs = runs;
        Ok(report)
    }

    /// The records of `ids`, then of their descendants when asked (each once), and the
    /// descendants' ids. Parent links are read for all runs in one query, not one per run.
    fn with_children(&self, ids: &[String], include: bool) -> Result<(Vec<RunRecord>, Vec<String>)> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut runs: Vec<String> = ids.iter().filter(|id| seen.insert((*id).clone())).cloned().collect();
        let named = runs.len();
        let mut children = Vec::new();
        if include {
            let mut by_parent: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for run in self.find_runs(&RunQuery::default())? {
                if let Some(parent) = run.parent_run_id {
                    by_parent.entry(parent).or_default().push(run.id);
                }
            }
            let mut next = 0;
            while next < runs.len() {
                for child in by_parent.remove(&runs[next]).unwrap_or_default() {
                    if seen.insert(child.clone()) {
                        runs.push(child);
                    }
                }
                next += 1;
            }
            children = runs[named..].to_vec();
        }
        let mut records = self.run_records(&runs)?;
        let position: std::collections::HashMap<&str, usize> =
            runs.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        if records.len() < runs.len() {
            let found: HashSet<&str> = records.iter().map(|r| r.run.id.as_str()).collect();
            let missing = runs.iter().find(|id| !found.contains(id.as_str())).cloned().unwrap_or_default();
            return Err(Error::RunNotFound(missing));
        }
        records.sort_by_key(|r| position.get(r.run.id.as_str()).copied());
        Ok((records, children))
    }

    /// Copy the runs of `source` into this catalog: database rows, a snapshot copy of each beside
    /// this database (so `rebuild` restores them), and signature-index entries for completed
    /// runs whose outputs exist here. See [`MergeReport`] for what is left out.
    pub fn merge(&self, source: &Catalog, on_conflict: OnConflict, dry_run: bool) -> Result<MergeReport> {
        if !source.exists() {
            return Err(Error::io("opening the database to merge from", source.db_path())(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such database (nor runs pending beside it); check the path given to `db merge`",
            )));
        }
        if same_file(self.db_path(), source.db_path()) {
            return Err(Error::SameCatalog { location: source.location().to_string() });
        }
        let ours: BTreeMap<String, (String, RunStatus)> = if self.exists() {
            let runs = self.find_runs(&RunQuery::default())?;
            runs.into_iter().map(|r| (r.id, (r.signature, r.status))).collect()
        } else {
            BTreeMap::new()
        };
        let mut report = MergeReport { source: source.location().to_string(), dry_run, ..MergeReport::default() };
        let mut conflicts = Vec::new();
        let mut wanted = Vec::new();
        for run in source.find_runs(&RunQuery::default())?.into_iter().rev() {
            match ours.get(&run.id) {
                _ if !run.status.is_terminal() => report.running_skipped.push(run.id),
                Some((signature, status)) if *signature == run.signature && *status == run.status => {
                    report.already_present.push(run.id)
                }
                Some(_) => conflicts.push(run.id),
                None => wanted.push(run.id),
            }
        }
        if !conflicts.is_empty() && on_conflict == OnConflict::Error {
            let shown: Vec<&str> = conflicts.iter().take(5).map(String::as_str).collect();
            let more = if conflicts.len() > 5 { format!(" and {} more", conflicts.len() - 5) } else { String::new() };
            return Err(Error::Refused(format!(
                "{} run id(s) are recorded in both databases with different content ({}{more}); nothing was merged. \
                 Pass --conflict skip to keep this database's runs and merge the others",
                conflicts.len(),
                shown.join(", ")
            )));
        }
        report.conflicts_skipped = conflicts;
        let records = source.run_records(&wanted)?;
        report.artifact_links = records.iter().map(|r| r.inputs.len() + r.outputs.len()).sum();
        let entries: Vec<IndexEntry> = records.iter().filter_map(|r| self.new_index_entry(r)).collect();
        report.index_entries = entries.len();
        report.merged = records.iter().map(|r| r.run.id.clone()).collect();
        if dry_run || records.is_empty() {
            return Ok(report);
        }
        let catalog_dir = crate::layout::catalog_dir(self.db_path());
        let copies = crate::layout::merged_dir(&catalog_dir);
        for record in &records {
            crate::catalog::snapshot::write_in(&copies, record)?;
            // Merging a run purged here before brings it back, deliberately.
            let _ = std::fs::remove_file(crate::layout::purge_marker(&catalog_dir, &record.run.id)?);
        }
        if self.has_store() {
            self.store().unpurge(&report.merged)?;
        }
        self.write_store(&records)?;
        for entry in entries {
            self.index.put(entry)?;
        }
        Ok(report)
    }

    /// Copy every finished run of `source` into this catalog, as [`Catalog::merge`] does (a run
    /// id recorded here with other content refuses the whole copy), then check that each run of
    /// the source is here with its signature and all its artifact links. A failed check removes
    /// nothing: it names the first run that differs.
    pub fn copy_from(&self, source: &Catalog) -> Result<CopyReport> {
        if same_file(self.db_path(), source.db_path()) {
            return Err(Error::SameCatalog { location: source.location().to_string() });
        }
        self.store().init()?;
        let merge = self.merge(source, OnConflict::Error, false)?;
        let ids: Vec<String> = merge.merged.iter().chain(&merge.already_present).cloned().collect();
        let theirs = source.run_records(&ids)?;
        let ours: BTreeMap<String, RunRecord> =
            self.run_records(&ids)?.into_iter().map(|r| (r.run.id.clone(), r)).collect();
        let mut links_checked = 0;
        for record in &theirs {
            let same = ours.get(&record.run.id).is_some_and(|here| {
                here.run.signature == record.run.signature
                    && here.run.status == record.run.status
                    && here.inputs.len() == record.inputs.len()
                    && here.outputs.len() == record.outputs.len()
            });
            if !same {
                return Err(Error::Refused(format!(
                    "after copying, run `{}` of {} is missing from {} or differs there; nothing was removed",
                    record.run.id,
                    source.location(),
                    self.location()
                )));
            }
            links_checked += record.inputs.len() + record.outputs.len();
        }
        Ok(CopyReport { runs_checked: theirs.len(), links_checked, merge })
    }

    /// The index entry a merged run contributes: a completed step run that executed, whose
    /// signature has no entry here and whose outputs all exist on this machine.
    fn new_index_entry(&self, record: &RunRecord) -> Option<IndexEntry> {
        let run = &record.run;
        let eligible = run.status == RunStatus::Completed
            && !run.is_cache_hit()
            && !run.is_scenario()
            && crate::ids::signature_problem(&run.signature).is_none()
            && record.outputs.iter().all(|a| a.path.exists())
            && matches!(self.index.get(&run.signature), Ok(None));
        eligible.then(|| IndexEntry {
            signature: run.signature.clone(),
            run_id: run.id.clone(),
            ..IndexEntry::of(record)
        })
    }
}

/// Refuse to purge runs that may still be running: their process would write them back.
fn refuse_live(records: &[RunRecord]) -> Result<()> {
    let live: Vec<&RunRecord> =
        records.iter().filter(|r| r.run.status == RunStatus::Running && !r.run.is_orphaned()).collect();
    let Some(first) = live.first() else { return Ok(()) };
    let meta = &first.run.meta;
    let process = match (meta.get("pid"), meta.get("host").and_then(|h| h.as_str())) {
        (Some(pid), Some(host)) => format!("process {pid} on {host}"),
        _ => "an unknown process".to_owned(),
    };
    Err(Error::Refused(format!(
        "{} run(s) are still marked running, e.g. `{}` ({process} may be alive); wait for them to finish, \
         or pass --force if their process is gone",
        live.len(),
        first.run.id
    )))
}

enum FilePlan {
    /// No file on disk.
    Absent,
    /// The file lies in its producer's own output directory.
    Delete(PathBuf),
    /// The file stays.
    Keep(KeptFile),
}

/// What to do with the file of an artifact a purge removed. `producer` is its producing run's
/// record when that run is purged now; `origin` says where the producer was recorded, if it was
/// purged at all ([`LOCAL`]: by a tracker of this catalog; [`MERGED`]: by another database).
fn file_plan(
    artifact: &Artifact,
    producer: Option<&RunRecord>,
    origin: Option<&str>,
    delete: bool,
    owned: &dyn Fn(&Path) -> bool,
) -> FilePlan {
    let path = match producer {
        Some(record) if artifact.path.is_relative() => record.run_dir.join(&artifact.path),
        _ => artifact.path.clone(),
    };
    // A file, or a directory artifact's tree (not a link to one: a link goes as a file).
    if std::fs::symlink_metadata(&path).is_err() {
        return FilePlan::Absent;
    }
    let keep = |reason: String| FilePlan::Keep(KeptFile { path: path.clone(), reason });
    if !delete {
        return keep("--delete-files not given".to_owned());
    }
    let run_id = match (artifact.run_id.as_deref(), origin) {
        (Some(run_id), Some(LOCAL)) => run_id,
        (_, Some(_)) => return keep("written by a run merged from another database, which still records it".into()),
        (_, None) => return keep("not written by a purged run".to_owned()),
    };
    // `<run_dir>/outputs/<run_id>/...` of its producer: the directory only that run writes into,
    // in a run dir of this catalog on this host.
    let plain = path.components().all(|c| !matches!(c, Component::ParentDir));
    let own = producer.is_some_and(|r| path.starts_with(r.run_dir.join("outputs").join(run_id)));
    if plain && own && owned(&path) {
        FilePlan::Delete(path)
    } else {
        keep(format!("outside its run's output directory (outputs/{run_id}/) in a run dir of this catalog"))
    }
}

/// Whether two paths name the same file (either may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}
