//! What `consist remote ...` does, on a catalog's runs: which outputs to push (for a catalog made
//! before the remote existed) or pull (to another host), where each is, and which objects no kept
//! run references.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

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
    /// ([`Remote::push`] reports those that are not on this host as missing).
    pub fn pushable(&self, scope: &ExportScope) -> Result<Vec<Transfer>> {
        Ok(self
            .output_artifacts(scope)?
            .into_iter()
            .filter_map(|a| Some(Transfer { hash: a.hash?, path: a.path }))
            .collect())
    }

    /// The outputs of the runs in `scope` that this host lacks, each to download under `run_dir`
    /// where a tracker there finds it (see [`local_copy`]).
    pub fn pullable(&self, scope: &ExportScope, run_dir: &Path) -> Result<Vec<Transfer>> {
        Ok(self
            .output_artifacts(scope)?
            .into_iter()
            .filter(|a| !a.path.exists())
            .filter_map(|a| Some(Transfer { path: local_copy(&a, run_dir, self.mounts())?, hash: a.hash? }))
            .collect())
    }
}

impl Remote {
    /// Where the outputs of the runs in `scope` are: here (where recorded, or where a tracker in
    /// `run_dir` would find a copy), on the remote, both, neither.
    pub fn status(&self, catalog: &Catalog, scope: &ExportScope, run_dir: Option<&Path>) -> Result<RemoteStatus> {
        let on_remote: HashSet<String> = self.objects()?.into_iter().map(|(hash, _)| hash).collect();
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

    /// Remove the objects that no run in `keep` references (as an output or an input). The remote
    /// may serve other catalogs too: their objects are not known here, so run this only on a
    /// remote this catalog owns.
    pub fn gc(&self, catalog: &Catalog, keep: &KeepRuns, dry_run: bool) -> Result<RemoteGcReport> {
        let scope = match keep {
            KeepRuns::Scenario(id) => Some(ExportScope::Scenario(id.clone())),
            _ => None,
        };
        let ids: Vec<String> = match (keep, &scope) {
            (_, Some(scope)) => catalog.export_records(scope)?.into_iter().map(|r| r.run.id).collect(),
            (KeepRuns::Model(m), _) => {
                catalog.find_runs(&RunQuery::default().model(m))?.into_iter().map(|r| r.id).collect()
            }
            (KeepRuns::Tag(t), _) => {
                catalog.find_runs(&RunQuery::default().tag(t))?.into_iter().map(|r| r.id).collect()
            }
            _ => catalog.find_runs(&RunQuery::default())?.into_iter().map(|r| r.id).collect(),
        };
        let referenced: HashSet<String> = catalog
            .run_records(&ids)?
            .into_iter()
            .flat_map(|r| r.inputs.into_iter().chain(r.outputs))
            .filter_map(|a| a.hash)
            .collect();
        let objects = self.objects()?;
        let mut report = RemoteGcReport { dry_run, objects: objects.len(), ..RemoteGcReport::default() };
        for (hash, size) in objects {
            if referenced.contains(&hash) {
                report.kept += 1;
                continue;
            }
            if !dry_run {
                self.delete(&hash)?;
            }
            report.removed += 1;
            report.bytes += size;
        }
        Ok(report)
    }
}

/// Where a copy of `artifact` fetched from a remote goes under `run_dir`: its `./` URI there (as
/// its own run wrote it), else `.consist/remote/<hash>/<file name>`; never outside `run_dir`.
/// `None` for an artifact without a hash.
pub(crate) fn local_copy(artifact: &Artifact, run_dir: &Path, mounts: &crate::mounts::Mounts) -> Option<PathBuf> {
    let hash = artifact.hash.as_deref()?;
    let under_run_dir = artifact
        .uri
        .starts_with("./")
        .then(|| mounts.resolve(&artifact.uri, run_dir).ok())
        .flatten()
        .filter(|p| crate::mounts::normalize(p).starts_with(crate::mounts::normalize(run_dir)));
    let name = artifact.path.file_name().map_or_else(|| artifact.key.clone(), |n| n.to_string_lossy().into_owned());
    let name = if crate::ids::is_plain(&name) { name } else { "artifact".to_owned() };
    under_run_dir.or_else(|| {
        crate::ids::signature_problem(hash)
            .is_none()
            .then(|| run_dir.join(".consist").join("remote").join(hash).join(name))
    })
}
