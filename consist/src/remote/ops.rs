//! What `consist remote ...` does, on a catalog's runs: which outputs to push (for a catalog made
//! before the remote existed) or pull (to another host), where each is, and which objects no kept
//! run references.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::{Remote, Transfer};
use crate::artifact::Artifact;
use crate::catalog::Catalog;
use crate::error::Result;
use crate::export::ExportScope;
use crate::store::RunQuery;

/// Where the outputs of a selection of runs are. Field names are stable (`--json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RemoteStatus {
    /// Distinct outputs (by content) of the runs selected.
    pub outputs: usize,
    /// On this host only: not yet pushed.
    pub local_only: usize,
    /// On the remote only: pull them to have them here.
    pub remote_only: usize,
    /// On both.
    pub both: usize,
    /// On neither: lost (the run can only be executed again).
    pub neither: usize,
}

/// What `remote gc` removed (or, for a dry run, would remove). Field names are stable.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RemoteGcReport {
    /// Nothing was removed.
    pub dry_run: bool,
    /// Objects the remote holds.
    pub objects: usize,
    /// Objects kept: referenced by a kept run.
    pub kept: usize,
    /// Objects kept though no kept run references them: written within `--min-age` (a host may
    /// be about to record the run that does).
    pub recent: usize,
    /// Objects removed.
    pub removed: usize,
    /// Bytes removed.
    pub bytes: u64,
}

/// The runs whose objects `remote gc` keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepRuns {
    /// Every run the catalog holds.
    All,
    /// Runs of this model (step name).
    Model(String),
    /// Runs carrying this tag.
    Tag(String),
    /// A scenario's header run and its runs (an id or a unique prefix).
    Scenario(String),
}

impl KeepRuns {
    /// Parse `all`, `model=NAME`, `tag=TAG` or `scenario=ID`.
    pub fn parse(text: &str) -> std::result::Result<KeepRuns, String> {
        match text.split_once('=') {
            None if text == "all" => Ok(KeepRuns::All),
            Some(("model", v)) if !v.is_empty() => Ok(KeepRuns::Model(v.to_owned())),
            Some(("tag", v)) if !v.is_empty() => Ok(KeepRuns::Tag(v.to_owned())),
            Some(("scenario", v)) if !v.is_empty() => Ok(KeepRuns::Scenario(v.to_owned())),
            _ => Err(format!("`{text}`: write all, model=NAME, tag=TAG or scenario=ID")),
        }
    }
}

impl Catalog {
    /// The outputs of the runs in `scope` that have a content hash, one per hash, each with its
    /// path on this host as found ([`Catalog::export_records`] locates them).
    pub fn output_artifacts(&self, scope: &ExportScope) -> Result<Vec<Artifact>> {
        let mut by_hash: BTreeMap<String, Artifact> = BTreeMap::new();
        for record in self.export_records(scope)? {
            for artifact in record.outputs {
                if let Some(hash) = artifact.hash.clone() {
                    // A copy that is here wins over one recorded elsewhere.
                    let here = artifact.path.exists();
                    let slot = by_hash.entry(hash).or_insert_with(|| artifact.clone());
                    if here && !slot.path.exists() {
                        *slot = artifact;
                    }
                }
            }
        }
        Ok(by_hash.into_values().collect())
    }
}

impl Catalog {
    /// The outputs of the runs in `scope` to upload: one per content, from where it is here
    /// ([`Remote::push`] reports those that are not on this host as missing). A directory
    /// artifact is its listing and its files (see `remote/tree.rs`).
    pub fn pushable(&self, scope: &ExportScope) -> Result<Vec<Transfer>> {
        let scratch = self.local_dir().join("remote-trees");
        let mut items = Vec::new();
        for artifact in self.output_artifacts(scope)? {
            // A tree not on this host (or changed since recorded) is reported as missing.
            match super::tree::transfers(&artifact, &scratch) {
                Ok(tree) => items.extend(tree),
                Err(_) => items.extend(artifact.hash.map(|hash| Transfer { hash, path: artifact.path })),
            }
        }
        Ok(items)
    }

    /// The outputs of the runs in `scope` that this host lacks, each to download from `remote`
    /// under `run_dir` where a tracker there finds it (see `local_copy`); a directory as the
    /// files its listing names (read from `remote`; one whose listing cannot be read is left to
    /// the first hit that needs it, with a warning). One per destination: two runs that wrote
    /// the same content each get their copy.
    pub fn pullable(&self, remote: &Remote, scope: &ExportScope, run_dir: &Path) -> Result<Vec<Transfer>> {
        let mut by_path: BTreeMap<PathBuf, String> = BTreeMap::new();
        // A run whose files `db gc` freed serves no hit: nothing of it is pulled.
        let records = self.export_records(scope)?.into_iter().filter(|r| !r.run.meta.contains_key("evicted"));
        for artifact in records.flat_map(|r| r.outputs) {
            if artifact.path.exists() {
                continue;
            }
            let (Some(path), Some(hash)) = (local_copy(&artifact, run_dir, self.mounts()), artifact.hash) else {
                continue;
            };
            if artifact.driver != crate::Driver::Directory {
                by_path.entry(path).or_insert(hash);
                continue;
            }
            // A partly pulled tree is not its recorded tree: a hit fetches it again, whole.
            match super::tree::read_listing(remote, &hash) {
                Ok(files) => by_path.extend(files.into_iter().map(|(name, h)| (path.join(name), h))),
                Err(e) => crate::logging::warning!(dir = %path.display(), error = %e, "directory not pulled"),
            }
        }
        Ok(by_path.into_iter().map(|(path, hash)| Transfer { hash, path }).collect())
    }
}

impl Remote {
    /// Where the outputs of the runs in `scope` are: here (where recorded, or where a tracker in
    /// `run_dir` would find a copy), on the remote, both, neither.
    pub fn status(&self, catalog: &Catalog, scope: &ExportScope, run_dir: Option<&Path>) -> Result<RemoteStatus> {
        let on_remote: HashSet<String> = self.objects()?.into_iter().map(|o| o.hash).collect();
        let mut status = RemoteStatus::default();
        for artifact in catalog.output_artifacts(scope)? {
            let remote = artifact.hash.as_ref().is_some_and(|h| on_remote.contains(h));
            let copy = run_dir.and_then(|dir| local_copy(&artifact, dir, catalog.mounts()));
            let here = artifact.path.exists() || copy.is_some_and(|p| p.exists());
            status.outputs += 1;
            match (here, remote) {
                (true, false) => status.local_only += 1,
                (false, true) => status.remote_only += 1,
                (true, true) => status.both += 1,
                (false, false) => status.neither += 1,
            }
        }
        Ok(status)
    }

    /// Remove the objects that no run in `keep` references (as an output or an input) and that
    /// were written more than `min_age` ago: a host uploads a run's outputs before the catalog
    /// hears of the run, so a younger object may be about to be referenced. The remote may serve
    /// other catalogs too: their objects are not known here, so run this only on a remote this
    /// catalog owns.
    pub fn gc(&self, catalog: &Catalog, keep: &KeepRuns, min_age: Duration, dry_run: bool) -> Result<RemoteGcReport> {
        let ids = |query: RunQuery| -> Result<Vec<String>> {
            Ok(catalog.find_runs(&query)?.into_iter().map(|r| r.id).collect())
        };
        let records = match keep {
            KeepRuns::Scenario(id) => catalog.export_records(&ExportScope::Scenario(id.clone()))?,
            KeepRuns::Model(m) => catalog.run_records(&ids(RunQuery::default().model(m))?)?,
            KeepRuns::Tag(t) => catalog.run_records(&ids(RunQuery::default().tag(t))?)?,
            KeepRuns::All => catalog.run_records(&ids(RunQuery::default())?)?,
        };
        let objects = self.objects()?;
        let stored: HashSet<&str> = objects.iter().map(|o| o.hash.as_str()).collect();
        let mut referenced: HashSet<String> = HashSet::new();
        for artifact in records.into_iter().flat_map(|r| r.inputs.into_iter().chain(r.outputs)) {
            // A directory on the remote is its listing and the files it names: all are kept. (A
            // directory never uploaded, such as a raw input, has no listing and nothing to keep.)
            if artifact.driver == crate::Driver::Directory
                && let Some(hash) = &artifact.hash
                && stored.contains(hash.as_str())
                && referenced.insert(hash.clone())
            {
                referenced.extend(self.tree_members(&artifact, hash)?);
            }
            referenced.extend(artifact.hash);
        }
        let cutoff = chrono::Utc::now() - chrono::TimeDelta::from_std(min_age).unwrap_or(chrono::TimeDelta::MAX);
        let mut report = RemoteGcReport { dry_run, objects: objects.len(), ..RemoteGcReport::default() };
        for object in objects {
            if referenced.contains(&object.hash) {
                report.kept += 1;
                continue;
            }
            if object.modified > cutoff {
                report.recent += 1;
                continue;
            }
            if !dry_run {
                self.delete(&object.hash)?;
            }
            report.removed += 1;
            report.bytes += object.size;
        }
        Ok(report)
    }
}

impl Remote {
    /// The file hashes a directory artifact's listing names: read from its tree on this host
    /// when it is here and unchanged, else from the remote. A listing that cannot be read
    /// stops `gc` (deleting without it could take a kept tree's files).
    fn tree_members(&self, artifact: &Artifact, hash: &str) -> Result<Vec<String>> {
        let files = match super::tree::local_listing(&artifact.path, hash) {
            Ok((files, _)) => files,
            Err(_) => super::tree::read_listing(self, hash)?,
        };
        Ok(files.into_iter().map(|(_, h)| h).collect())
    }
}

/// Where a copy of `artifact` fetched from a remote goes under `run_dir`: where its own run wrote
/// it (`./outputs/<run id>/...`, as its URI says) unless another file is there, else
/// `.consist/remote/<hash>/<file name>`: a directory of its own content. Never outside `run_dir`,
/// never in place of another file (whatever a catalog row says). `None` without a blake3 hash.
pub(crate) fn local_copy(artifact: &Artifact, run_dir: &Path, mounts: &crate::mounts::Mounts) -> Option<PathBuf> {
    let hash = artifact.hash.as_deref().filter(|h| super::is_content_hash(h))?;
    let own = artifact.run_id.as_deref().filter(|id| crate::ids::is_plain(id)).and_then(|id| {
        let prefix = format!("./outputs/{id}/");
        let path = artifact.uri.starts_with(&prefix).then(|| mounts.resolve(&artifact.uri, run_dir).ok()).flatten()?;
        let dir = crate::mounts::normalize(&run_dir.join("outputs").join(id));
        crate::mounts::normalize(&path).starts_with(dir).then_some(path)
    });
    if let Some(path) = own.filter(|p| !p.exists() || crate::files::hash::hash_file(p).is_ok_and(|h| h == hash)) {
        return Some(path);
    }
    let name = artifact.path.file_name().map_or_else(|| artifact.key.clone(), |n| n.to_string_lossy().into_owned());
    let name = if crate::ids::is_plain(&name) { name } else { "artifact".to_owned() };
    Some(run_dir.join(".consist").join("remote").join(hash).join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(uri: &str, run_id: &str) -> Artifact {
        let hash = blake3::hash(uri.as_bytes()).to_hex().to_string();
        let mut a = Artifact::for_file(
            "table",
            Path::new("/elsewhere/table.bin"),
            uri.to_owned(),
            crate::Driver::Bincode,
            Some(hash),
        );
        a.run_id = Some(run_id.to_owned());
        a
    }

    #[test]
    fn a_fetched_copy_goes_where_its_run_wrote_it_or_into_a_directory_of_its_own_content() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("runs");
        let mounts = crate::mounts::Mounts::default();
        let plain = artifact("./outputs/seed_1/table.bin", "seed_1");
        assert_eq!(local_copy(&plain, &run_dir, &mounts), Some(run_dir.join("outputs/seed_1/table.bin")));
        // Anything else a row could name (another run's directory, the catalog's state, a
        // project file) is not a destination.
        for uri in
            ["./outputs/other_2/table.bin", "./.consist/provenance.duckdb", "./run.sh", "./outputs/seed_1/../../x"]
        {
            let a = artifact(uri, "seed_1");
            let copy = local_copy(&a, &run_dir, &mounts).unwrap();
            assert_eq!(copy, run_dir.join(".consist/remote").join(a.hash.as_ref().unwrap()).join("table.bin"), "{uri}");
        }
        // A file already there with other bytes is never replaced.
        std::fs::create_dir_all(run_dir.join("outputs/seed_1")).unwrap();
        std::fs::write(run_dir.join("outputs/seed_1/table.bin"), b"someone else's").unwrap();
        let copy = local_copy(&plain, &run_dir, &mounts).unwrap();
        assert!(copy.starts_with(run_dir.join(".consist/remote")), "{}", copy.display());
        let mut upper = plain.clone();
        upper.hash = upper.hash.map(|h| h.to_uppercase());
        assert_eq!(local_copy(&upper, &run_dir, &mounts), None, "a hash names an object in lower case only");
    }
}
