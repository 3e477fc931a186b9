//! Checking a catalog: recorded outputs against their files (missing, unreadable or modified
//! since recorded), its database's integrity, and the runs its killed processes left behind.

use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::run::RunStatus;
use crate::store::{Inspection, RunQuery};

/// What is wrong with one artifact's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileProblem {
    /// The file does not exist.
    Missing,
    /// The file exists but cannot be read.
    Unreadable,
    /// The file's blake3 differs from the recorded hash.
    Modified,
}

impl FileProblem {
    /// The lowercase name (`missing`, `unreadable`, `modified`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileProblem::Missing => "missing",
            FileProblem::Unreadable => "unreadable",
            FileProblem::Modified => "modified",
        }
    }
}

/// One produced artifact that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactProblem {
    /// Artifact id.
    pub id: String,
    /// Artifact key.
    pub key: String,
    /// The run that produced it.
    pub run_id: Option<String>,
    /// The file checked.
    pub path: String,
    /// What is wrong.
    pub problem: FileProblem,
}

/// The result of [`Catalog::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    /// Produced artifacts checked (stored and pending).
    pub checked: usize,
    /// Those that failed, oldest first.
    pub problems: Vec<ArtifactProblem>,
    /// Artifacts of runs whose files `db gc` freed (`meta.evicted`): not checked, not missing.
    pub evicted: usize,
}

impl Catalog {
    /// Check every artifact written by a run, stored or still pending: its file must exist and,
    /// unless `exists_only`, match its recorded blake3.
    pub fn validate(&self, exists_only: bool) -> Result<ValidationReport> {
        let mut artifacts = if self.has_store() { self.store().produced_artifacts()? } else { Vec::new() };
        let mut seen: std::collections::HashSet<String> = artifacts.iter().map(|a| a.id.clone()).collect();
        for record in self.pending_records() {
            for a in record.outputs.into_iter().filter(|a| a.run_id.is_some()) {
                if seen.insert(a.id.clone()) {
                    artifacts.push(a);
                }
            }
        }
        // Runs whose files gc freed on purpose: their artifacts are not damage.
        let evicted_runs: std::collections::HashSet<String> = match self.has_store() {
            true => self
                .find_runs(&RunQuery::default())?
                .into_iter()
                .filter(|r| r.meta.contains_key("evicted"))
                .map(|r| r.id)
                .collect(),
            false => Default::default(),
        };
        let total = artifacts.len();
        artifacts.retain(|a| a.run_id.as_ref().is_none_or(|id| !evicted_runs.contains(id)));
        let (checked, evicted) = (artifacts.len(), total - artifacts.len());
        let mut problems = Vec::new();
        for a in artifacts {
            let a = self.here(a);
            let problem = if !a.path.exists() {
                Some(FileProblem::Missing)
            } else if exists_only {
                None
            } else {
                match (crate::files::hash::hash_file(&a.path), &a.hash) {
                    (Err(_), _) => Some(FileProblem::Unreadable),
                    (Ok(actual), Some(recorded)) if actual != *recorded => Some(FileProblem::Modified),
                    _ => None,
                }
            };
            if let Some(problem) = problem {
                let path = a.path.to_string_lossy().into_owned();
                problems.push(ArtifactProblem { id: a.id, key: a.key, run_id: a.run_id, path, problem });
            }
        }
        Ok(ValidationReport { checked, problems, evicted })
    }

    /// Row counts, referential checks, zombie runs (still `running`, their process on this host
    /// gone), pending runs and damaged pending snapshots.
    pub fn inspect(&self) -> Result<Inspection> {
        let integrity = self.store().integrity()?;
        let running = self.find_runs(&RunQuery::default().status(RunStatus::Running))?;
        let absolute = self.store().query(crate::store::NOT_PORTABLE_SQL, crate::store::QueryAccess::CatalogOnly)?;
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        Ok(Inspection {
            not_portable_count: absolute.rows.len() as i64,
            not_portable: absolute
                .rows
                .iter()
                .take(crate::store::NOT_PORTABLE_SHOWN)
                .map(|row| (text(&row[0]), text(&row[1])))
                .collect(),
            tables: integrity.tables,
            zombies: self.zombies(running)?.into_iter().map(|r| r.id).collect(),
            orphan_artifacts: integrity.orphan_artifacts,
            dangling_links: integrity.dangling_links,
            missing_producers: integrity.missing_producers,
            pending: self.pending_count(),
            damaged: crate::catalog::snapshot::damaged_notes(&crate::layout::catalog_dir(self.db_path())),
        })
    }

    /// Mark every zombie run `failed` (still `running`, its process on this host gone: see
    /// [`Catalog::inspect`]), with an error saying so: its snapshot is rewritten durably and
    /// synced. A zombie is never a cache source either way; this makes the record say what
    /// happened. Returns the ids marked.
    pub fn fail_zombies(&self) -> Result<Vec<String>> {
        let running = self.find_runs(&RunQuery::default().status(RunStatus::Running))?;
        let mut marked = Vec::new();
        let mut unsnapshotted = Vec::new();
        let owns = self.owner();
        for run in self.zombies(running)? {
            let mut record = self.run_record(&run.id)?;
            if record.run.status != RunStatus::Running {
                continue;
            }
            record.run.end(RunStatus::Failed);
            let error = "its process ended without finishing it (killed?); marked failed by `consist db fail-zombies`";
            record.run.meta.insert("error".into(), serde_json::Value::String(error.into()));
            // If it was alive after all (its lease lapsed in an outage), its completion replaces this.
            record.run.meta.insert("failed_as_zombie".into(), serde_json::Value::Bool(true));
            // Its snapshot is rewritten only in a run dir of this catalog on this host; a run of
            // another host (or one a catalog names anywhere else) is marked in the catalog alone.
            if owns(&record.run_dir) {
                let path = crate::catalog::snapshot::write(&record)?;
                self.enqueue(&record.run.id, &path)?;
            } else {
                unsnapshotted.push(record.clone());
            }
            marked.push(record.run.id);
        }
        if !unsnapshotted.is_empty() {
            self.write_store(&unsnapshotted)?;
        }
        if !marked.is_empty() {
            self.sync()?;
        }
        Ok(marked)
    }

    /// The runs among `running` that will never finish: their lease is gone (runs recorded with
    /// lease liveness: [`crate::Run`]'s `meta.liveness`), or, for runs of a consist before
    /// leases, their process is gone from this host ([`crate::Run::is_orphaned`]). A catalog
    /// server that cannot be reached is an error: no run is judged without its leases.
    pub fn zombies(&self, running: Vec<crate::Run>) -> Result<Vec<crate::Run>> {
        let leased = |r: &crate::Run| {
            r.meta.get("liveness").and_then(|v| v.as_str()) == Some(crate::engine::claim::LIVENESS_LEASE)
        };
        let live = match self.store().leases() {
            Some(leases) if running.iter().any(leased) => Some(leases.live_runs()?),
            _ => None,
        };
        Ok(running
            .into_iter()
            .filter(|r| match leased(r) {
                true => !crate::engine::claim::is_alive(self, r, live.as_ref()),
                false => r.is_orphaned(),
            })
            .collect())
    }
}
