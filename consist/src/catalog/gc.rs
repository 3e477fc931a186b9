//! Keeping a cache within bounds (`consist db gc`) and the pins it never evicts (`consist pin`).
//!
//! gc frees the output files of the least recently used executed runs and keeps every record:
//! provenance is never deleted. A run and the cache hits that reused it are one cache entry,
//! used last when the newest of them finished. An entry is kept when it was used within
//! `min_age` (a workflow may be about to read what it was just handed), when it, or one of its
//! hits, is pinned (`meta.pinned`) or carries a kept tag, when its scenario (or a hit's) is still
//! running, when a running run reads its artifacts, or when another run's outputs link its
//! artifacts. Only files in the run's own output directory (`<run_dir>/outputs/<run_id>/`), and
//! the copies made of them elsewhere (by its hits in theirs, `Hydration::OutputsAll`; by
//! consumers in their run dirs, `InputsMissing`), in a run dir of this catalog on this host, are
//! deleted; an entry whose files are not here is not touched.
//!
//! A run executed in a run dir that is not on this host (another host's, reached through a
//! remote; or one at the same path as a run dir here, where its snapshot is not) has only copies
//! here: those fetched from the remote to its own place under a run dir of this host
//! (`outputs/<run id>/`), its hits' and its consumers'. Evicting such an entry frees those copies
//! and nothing else: the run is not marked and stays a cache source, its files on its own host
//! untouched, and a later hit here fetches them again. A fetch is a use: the entry was last used
//! when its newest copy was written. Copies fetched under `.consist/remote/<hash>/` (content that
//! several runs may share) are not freed. A run dir that moved on this host (its snapshot is in a
//! run dir here, not at its recorded path) holds the run's own files. An entry whose artifacts a
//! running run reads (on any host) is kept.
//!
//! An evicted run is marked in the catalog (`meta.evicted`) before its files go, with the purge
//! epoch raised, and its signature-index entry is dropped, so no host serves a hit from it: a
//! later call with its signature executes again, cleanly. Pins and marks live in the catalog
//! (every host sees them), not in snapshots: a rebuild carries them over from the rows it
//! replaces; a catalog rebuilt after its database was lost forgets them (an evicted run is then
//! tried once as a source, found without its files and skipped, with a warning).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;

use crate::artifact::Artifact;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::run::{Run, RunStatus};
use crate::store::RUN_DIR_KEY;
use crate::store::RunQuery;

/// What [`Catalog::gc`] keeps and frees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcOptions {
    /// Free the least recently used entries until the files of the cache take at most this
    /// many bytes (pinned and otherwise kept entries count, and stay).
    pub max_size: Option<u64>,
    /// Free every entry last used longer ago than this.
    pub max_age: Option<Duration>,
    /// Keep entries carrying any of these tags (on the run or one of its hits).
    pub keep_tags: Vec<String>,
    /// Keep entries used within this long, whatever the bounds: a workflow running now may be
    /// about to read the outputs it was just handed (the CLI's default is one hour).
    pub min_age: Option<Duration>,
    /// Report what would be freed; change nothing.
    pub dry_run: bool,
    /// Evict none but these runs (the plan a user confirmed), whatever else the bounds select.
    pub only: Option<Vec<String>>,
}

/// One run whose output files gc freed (or would free).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvictedRun {
    /// The run that produced the files.
    pub run: String,
    /// Its model (step name).
    pub model: String,
    /// When it or one of its hits last finished.
    pub last_used: DateTime<Utc>,
    /// Files deleted.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Only this host's copies were freed: the run executed in a run dir that is not on this
    /// host, so it is not marked evicted and stays a cache source (see the module docs).
    pub copies_only: bool,
}

/// Files and bytes gc freed for one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Freed {
    /// Runs evicted.
    pub runs: usize,
    /// Files deleted.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// What [`Catalog::gc`] did (or, for a dry run, would do). Field names are stable (`--json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GcReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Output files of executed runs found on this host, before.
    pub files_before: usize,
    /// Their bytes, before.
    pub bytes_before: u64,
    /// Output files left after (would be left, for a dry run).
    pub files_after: usize,
    /// Their bytes after.
    pub bytes_after: u64,
    /// The runs evicted, least recently used first.
    pub evicted: Vec<EvictedRun>,
    /// What was freed, by model.
    pub by_model: BTreeMap<String, Freed>,
    /// Entries kept whatever their age or size, by reason (`pinned`, `tag paper`, `scenario
    /// running`, `linked by another run`).
    pub protected: BTreeMap<String, usize>,
    /// Files that could not be deleted, each with why (their runs are marked evicted, unless
    /// only copies were freed: the next `gc` deletes them).
    pub failed: Vec<String>,
}

/// One cache entry: an executed run, with its hits.
struct Entry<'a> {
    run: &'a Run,
    /// Marked evicted by an earlier gc whose deletion did not finish: its files go now.
    evicted: bool,
    /// Executed in a run dir not on this host: its files here are copies, freed without a mark.
    copies_only: bool,
    last_used: DateTime<Utc>,
    protected: Option<String>,
    /// Each output (a file, or a directory artifact) with its bytes and how many files it is.
    files: Vec<(PathBuf, u64, usize)>,
}

impl Entry<'_> {
    fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, b, _)| b).sum()
    }

    fn count(&self) -> usize {
        self.files.iter().map(|(_, _, n)| n).sum()
    }
}

/// Those of `paths` gc may free for run `run_id` of `run_dir`: inside its own output directory
/// (`<run_dir>/outputs/<run_id>/`, symlinks resolved on both sides, so a link inside it cannot
/// lead out) of a run dir (one with `.consist/`, whatever a catalog row claims), and kept by
/// `keep`; each with its bytes and how many files it is (a directory artifact counts with every
/// file in it).
fn deletable(
    run_dir: &Path,
    run_id: &str,
    paths: impl Iterator<Item = PathBuf>,
    keep: impl Fn(&PathBuf) -> bool,
) -> Vec<(PathBuf, u64, usize)> {
    if !run_dir.join(".consist").is_dir() {
        return Vec::new();
    }
    let dir = run_dir.join("outputs").join(run_id);
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    paths
        .filter(|p| p.components().all(|c| !matches!(c, Component::ParentDir)))
        .filter(|p| std::fs::canonicalize(p).is_ok_and(|p| p.starts_with(&dir) && p != dir))
        .filter(|p| keep(p))
        .filter_map(|p| {
            let meta = std::fs::symlink_metadata(&p).ok()?;
            let (count, len) = match meta.is_dir() {
                true => crate::files::tree::size(&p),
                false => (1, meta.is_file().then_some(meta.len())?),
            };
            Some((p, len, count))
        })
        .collect()
}

/// The copies finished consumers made of their inputs in their own run dirs
/// (`Hydration::InputsMissing`, at `<run dir>/outputs/<producer id>/...`), by the cache entry
/// they belong to: the producer, or the run a hit producer reused (a copy of a hit's own copy).
/// Each as (consumer run dir, producer id, path). A running consumer may be reading its copies:
/// they are left alone.
fn input_copies(runs: &[Run], by_id: &HashMap<&str, &Run>) -> HashMap<String, Vec<(PathBuf, String, PathBuf)>> {
    let mut found: HashMap<String, Vec<(PathBuf, String, PathBuf)>> = HashMap::new();
    for run in runs.iter().filter(|r| r.status != RunStatus::Running) {
        let Some(copies) = run.meta.get("hydrated_inputs").and_then(Json::as_object) else { continue };
        let Some(run_dir) = recorded_run_dir(run) else { continue };
        for path in copies.values().filter_map(Json::as_str).map(PathBuf::from) {
            let named = path.strip_prefix(run_dir.join("outputs")).ok().and_then(|rel| rel.components().next());
            let Some(Component::Normal(producer)) = named else { continue };
            let producer = producer.to_string_lossy().into_owned();
            let entry = by_id.get(producer.as_str()).and_then(|p| p.cache_source()).unwrap_or(&producer).to_owned();
            found.entry(entry).or_default().push((run_dir.clone(), producer, path));
        }
    }
    found
}

/// The run dir `run` was recorded in (`meta.run_dir`).
fn recorded_run_dir(run: &Run) -> Option<PathBuf> {
    run.meta.get(RUN_DIR_KEY).and_then(Json::as_str).map(PathBuf::from)
}

/// `path` with its directory's symlinks and spelling resolved (not the file's own link).
fn spelled_once(path: &Path) -> PathBuf {
    let dir = path.parent().and_then(|d| std::fs::canonicalize(d).ok());
    match (dir, path.file_name()) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Whether `run`'s files in `run_dir`, its recorded run dir, are its own (gc marks it evicted
/// when it frees them), not copies fetched from a remote (freed without a mark): the run dir is
/// one on this host (a tracker of this catalog used it here), and the run was executed on this
/// host (`meta.host`, none for records made before hosts were recorded) or wrote its snapshot
/// there (a run dir shared with its host). Another host's run dir at the same path on this one
/// holds only what this host fetched: no snapshot of it.
fn own_run_dir(run: &Run, run_dir: &Path, owned: &impl Fn(&Path) -> bool) -> bool {
    let here = run.meta.get("host").and_then(Json::as_str).is_none_or(|host| host == crate::run::host_name());
    run_dir.join(".consist").is_dir() && owned(run_dir) && (here || snapshot_in(run_dir, &run.id))
}

/// Whether run `run_id`'s snapshot is in `run_dir`: the run dir it ran in (maybe since moved).
fn snapshot_in(run_dir: &Path, run_id: &str) -> bool {
    crate::layout::snapshots_dir(run_dir).join(format!("{run_id}.json")).is_file()
}

/// Whether `run` carries a pin (`consist pin`).
fn pinned(run: &Run) -> bool {
    run.meta.get("pinned") == Some(&Json::Bool(true))
}

fn finished(run: &Run) -> DateTime<Utc> {
    run.ended_at.unwrap_or(run.started_at)
}

impl Catalog {
    /// Free the output files of the least recently used runs (see the module docs and
    /// [`GcOptions`]); at least one of `max_size` and `max_age` must be given.
    pub fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        if options.max_size.is_none() && options.max_age.is_none() {
            return Err(Error::Refused("say what to keep: give a maximum size, a maximum age, or both".into()));
        }
        if !self.exists() {
            return Err(Error::no_database(self.db_path()));
        }
        self.sync()?;
        // Three reads, whatever the catalog's size: runs, produced artifacts, output links.
        let runs = self.store().find_runs(&RunQuery::default())?;
        let mut produced: HashMap<String, Vec<Artifact>> = HashMap::new();
        for artifact in self.store().produced_artifacts()? {
            if let Some(run) = artifact.run_id.clone() {
                produced.entry(run).or_default().push(artifact);
            }
        }
        let links = self.store().output_links()?;
        // What running runs read (their records hold their inputs from their start).
        let running: Vec<String> =
            runs.iter().filter(|r| r.status == RunStatus::Running).map(|r| r.id.clone()).collect();
        let reading: HashSet<String> = match running.is_empty() {
            true => HashSet::new(),
            false => self.store().run_records(&running)?.into_iter().flat_map(|r| r.inputs).map(|a| a.id).collect(),
        };
        let mut entries = self.entries(&runs, &produced, &links, &reading, options);

        let mut report = GcReport { dry_run: options.dry_run, ..GcReport::default() };
        report.files_before = entries.iter().map(Entry::count).sum();
        report.bytes_before = entries.iter().map(Entry::bytes).sum();
        for reason in entries.iter().filter_map(|e| e.protected.clone()) {
            *report.protected.entry(reason).or_default() += 1;
        }
        // Least recently used first; then by id, so two hosts pick the same order.
        entries.sort_by(|a, b| (a.last_used, &a.run.id).cmp(&(b.last_used, &b.run.id)));
        // An age beyond the calendar keeps everything.
        let cutoff = options
            .max_age
            .and_then(|age| chrono::Duration::from_std(age).ok())
            .and_then(|age| Utc::now().checked_sub_signed(age));
        let allowed = |e: &Entry<'_>| options.only.as_ref().is_none_or(|only| only.contains(&e.run.id));
        let mut left = report.bytes_before;
        let mut evict = Vec::new();
        for entry in entries.iter().filter(|e| e.protected.is_none() && !e.files.is_empty() && allowed(e)) {
            let too_old = cutoff.is_some_and(|c| entry.last_used < c);
            let too_big = options.max_size.is_some_and(|max| left > max);
            if entry.evicted || too_old || too_big {
                left -= entry.bytes();
                evict.push(entry);
            }
        }
        if !options.dry_run {
            let failed = self.evict(&evict)?;
            // What could not be deleted is still there: not freed.
            for (path, bytes, count) in
                evict.iter().flat_map(|e| &e.files).filter(|(p, _, _)| failed.iter().any(|(f, _)| f == p))
            {
                left += bytes;
                report.files_after += count;
                tracing::debug!(file = %path.display(), "not freed");
            }
            report.failed = failed.into_iter().map(|(path, why)| format!("{}: {why}", path.display())).collect();
        }
        for entry in &evict {
            let freed = report.by_model.entry(entry.run.model_name.clone()).or_default();
            freed.runs += 1;
            freed.files += entry.count();
            freed.bytes += entry.bytes();
            report.evicted.push(EvictedRun {
                run: entry.run.id.clone(),
                model: entry.run.model_name.clone(),
                last_used: entry.last_used,
                files: entry.count(),
                bytes: entry.bytes(),
                copies_only: entry.copies_only,
            });
        }
        report.files_after += report.files_before - evict.iter().map(|e| e.count()).sum::<usize>();
        report.bytes_after = left;
        Ok(report)
    }

    /// The cache entries: executed, completed step runs not evicted yet, with their recency,
    /// what keeps them, and their files on this host.
    fn entries<'a>(
        &self,
        runs: &'a [Run],
        produced: &HashMap<String, Vec<Artifact>>,
        links: &[(String, String)],
        reading: &HashSet<String>,
        options: &GcOptions,
    ) -> Vec<Entry<'a>> {
        let by_id: HashMap<&str, &Run> = runs.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut hits: HashMap<&str, Vec<&Run>> = HashMap::new();
        for run in runs {
            if let Some(source) = run.cache_source() {
                hits.entry(source).or_default().push(run);
            }
        }
        // Which runs link each artifact as an output.
        let mut linked: HashMap<&str, Vec<&str>> = HashMap::new();
        for (run, artifact) in links {
            linked.entry(artifact.as_str()).or_default().push(run.as_str());
        }
        let mut input_copies = input_copies(runs, &by_id);
        let owned = self.owner();
        let local_dirs = self.local_run_dirs();
        let mut seen = HashSet::new();
        let live = |run: &Run| {
            run.parent_run_id.as_deref().and_then(|p| by_id.get(p)).is_some_and(|p| p.status == RunStatus::Running)
        };
        let recent_since = options
            .min_age
            .and_then(|age| chrono::Duration::from_std(age).ok())
            .and_then(|age| Utc::now().checked_sub_signed(age));
        let mut entries = Vec::new();
        for run in runs {
            let executed = run.status == RunStatus::Completed && !run.is_cache_hit() && !run.is_scenario();
            // Ids name directories here: a catalog row's id must be a plain name.
            if !executed || !crate::ids::is_plain(&run.id) {
                continue;
            }
            let evicted = run.meta.contains_key("evicted");
            // An evicted run's files left behind by a deletion that failed: those older than the
            // mark. Newer ones came since (a pull, a fetch for a running step): not gc's to take.
            let marked_at = run.meta.get("evicted").and_then(|m| m.get("at")).and_then(Json::as_str);
            let marked_at = marked_at.and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
            let leftover = |p: &PathBuf| {
                let modified = std::fs::symlink_metadata(p).and_then(|m| m.modified()).ok().map(DateTime::<Utc>::from);
                matches!((modified, marked_at), (Some(m), Some(at)) if m <= at)
            };
            let Some(run_dir) = recorded_run_dir(run) else { continue };
            let own = produced.get(&run.id).map_or(&[][..], Vec::as_slice);
            let group: Vec<&Run> =
                std::iter::once(run).chain(hits.get(run.id.as_str()).into_iter().flatten().copied()).collect();
            let members: HashSet<&str> = group.iter().map(|r| r.id.as_str()).collect();
            let shared =
                own.iter().any(|a| linked.get(a.id.as_str()).into_iter().flatten().any(|r| !members.contains(r)));
            let tag = group.iter().flat_map(|r| &r.tags).find(|t| options.keep_tags.contains(t));
            // Where its own files are: its recorded run dir when that is on this host and its
            // own (see `own_run_dir`), or a run dir here holding its snapshot (moved here); none
            // when only copies are here.
            let home = match own_run_dir(run, &run_dir, &owned) {
                true => Some(run_dir.clone()),
                false => local_dirs.iter().find(|d| snapshot_in(d, &run.id)).cloned(),
            };
            let copies_only = home.is_none();
            let keep = |p: &PathBuf| (!evicted || leftover(p)) && owned(p);
            let mut files = match &home {
                Some(home) => {
                    // A `./` URI from where the files are now (the recorded path may be an
                    // earlier home's).
                    let paths = own.iter().map(|a| match a.uri.strip_prefix("./") {
                        Some(relative) => home.join(relative),
                        None if a.path.is_relative() => run_dir.join(&a.path),
                        None => a.path.clone(),
                    });
                    deletable(home, &run.id, paths, keep)
                }
                None => self.fetched_copies(&local_dirs, own, &run.id, &keep),
            };
            // The copies consumers made of its outputs in their run dirs, and those its hits
            // made in their own output directories (`Hydration::OutputsAll`): freed with it, or
            // they would stay for ever.
            for (consumer_dir, dir_id, copy) in input_copies.remove(&run.id).unwrap_or_default() {
                files.extend(deletable(&consumer_dir, &dir_id, std::iter::once(copy), keep));
            }
            for hit in group.iter().skip(1).filter(|hit| crate::ids::is_plain(&hit.id)) {
                let Some(copies) = hit.meta.get("hydrated_outputs").and_then(Json::as_object) else { continue };
                let Some(hit_dir) = recorded_run_dir(hit) else { continue };
                let paths = copies
                    .values()
                    .filter_map(Json::as_str)
                    .filter_map(|uri| self.mounts().resolve(uri, &hit_dir).ok());
                files.extend(deletable(&hit_dir, &hit.id, paths, keep));
            }
            // A copy made where the file itself was (its run dir's own, since deleted, or where a
            // fetch put it too), or one file reached through two spellings of its run dir, counts
            // once.
            files.retain(|(path, _, _)| seen.insert(spelled_once(path)));
            let mut last_used = group.iter().map(|r| finished(r)).max().unwrap_or_else(|| finished(run));
            if copies_only {
                // A fetch is a use (a step may be reading what it fetched).
                let fetched =
                    files.iter().filter_map(|(p, _, _)| std::fs::symlink_metadata(p).and_then(|m| m.modified()).ok());
                last_used = fetched.map(DateTime::<Utc>::from).fold(last_used, DateTime::max);
            }
            let protected = if evicted {
                None
            } else if recent_since.is_some_and(|since| last_used > since) {
                Some("used within --min-age".to_owned())
            } else if group
                .iter()
                .any(|r| pinned(r) || r.parent_run_id.as_deref().and_then(|p| by_id.get(p)).is_some_and(|p| pinned(p)))
            {
                // Pinning a scenario pins its steps.
                Some("pinned".to_owned())
            } else if let Some(tag) = tag {
                Some(format!("tag {tag}"))
            } else if group.iter().any(|r| live(r)) {
                Some("scenario running".to_owned())
            } else if own.iter().any(|a| reading.contains(&a.id)) {
                Some("read by a running run".to_owned())
            } else if shared {
                Some("linked by another run".to_owned())
            } else {
                None
            };
            entries.push(Entry { run, evicted, copies_only, last_used, protected, files });
        }
        entries
    }

    /// The copies of run `run_id`'s outputs `own` fetched from a remote into the run dirs `dirs`
    /// at the output's own place (`./outputs/<run id>/...`; see `remote::ops::local_copy`).
    fn fetched_copies(
        &self,
        dirs: &[PathBuf],
        own: &[Artifact],
        run_id: &str,
        keep: &impl Fn(&PathBuf) -> bool,
    ) -> Vec<(PathBuf, u64, usize)> {
        let mut found = Vec::new();
        for dir in dirs {
            let placed = own
                .iter()
                .filter(|a| a.uri.starts_with(&format!("./outputs/{run_id}/")))
                .filter_map(|a| self.mounts().resolve(&a.uri, dir).ok());
            found.extend(deletable(dir, run_id, placed, keep));
        }
        found
    }

    /// Mark `evict` in the catalog (raising the purge epoch), drop their signature-index
    /// entries, then delete their files; returns the files that could not be deleted (a file
    /// already gone is deleted).
    fn evict(&self, evict: &[&Entry<'_>]) -> Result<Vec<(PathBuf, String)>> {
        if evict.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let marks: Vec<(String, Option<Json>)> = evict
            .iter()
            .filter(|e| !e.evicted && !e.copies_only)
            .map(|e| {
                let mark = serde_json::json!({ "at": now, "files": e.count(), "bytes": e.bytes() });
                (e.run.id.clone(), Some(mark))
            })
            .collect();
        if evict.iter().any(|e| !e.copies_only) {
            self.store().set_run_meta("evicted", &marks, true)?;
            self.adopt_seen();
            let ids: HashSet<&str> = evict.iter().filter(|e| !e.copies_only).map(|e| e.run.id.as_str()).collect();
            for entry in evict.iter().filter(|e| !e.copies_only) {
                self.index.remove_if_run(&entry.run.signature, &ids)?;
            }
            let epoch = self.store().identity()?.map_or(0, |i| i.purge_epoch);
            self.local.mark_purge(epoch).map_err(Error::io("marking the eviction in", self.local.dir()))?;
        }
        let mut failed = Vec::new();
        for entry in evict {
            for (path, _, _) in &entry.files {
                let removed = match path.is_dir() {
                    true => std::fs::remove_dir_all(path),
                    false => std::fs::remove_file(path),
                };
                match removed {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => failed.push((path.clone(), e.to_string())),
                    _ => {
                        if let Some(dir) = path.parent() {
                            let _ = std::fs::remove_dir(dir); // only if now empty
                        }
                    }
                }
            }
        }
        Ok(failed)
    }

    /// Pin (or with `pinned` false, unpin) runs: [`Catalog::gc`] never frees a pinned run's
    /// files, those of the run a pinned hit reused, nor those of a pinned scenario's steps.
    /// Returns the runs changed.
    pub fn pin(&self, run_ids: &[String], pinned: bool) -> Result<usize> {
        self.sync()?;
        // A running run's record is rewritten when it completes: a pin set now would be lost.
        // An evicted run has no files left to keep.
        for id in run_ids.iter().filter(|_| pinned) {
            match self.store().get_run(id)? {
                Some(r) if r.status == RunStatus::Running => {
                    return Err(Error::Refused(format!("run `{id}` is still running; pin it once it has completed")));
                }
                Some(r) if r.meta.contains_key("evicted") => {
                    return Err(Error::Refused(format!(
                        "run `{id}`'s files were freed by `db gc`; run its step again (it executes), then pin the new run"
                    )));
                }
                _ => {}
            }
        }
        let values: Vec<(String, Option<Json>)> =
            run_ids.iter().map(|id| (id.clone(), pinned.then_some(Json::Bool(true)))).collect();
        self.store().set_run_meta("pinned", &values, false)
    }
}
