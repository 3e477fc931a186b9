//! Runs: one execution (or cache hit) of a step, its status and its snapshot record.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;

/// Lifecycle of a run: `running` until it ends `completed` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started, not finished (or the process died: a "zombie").
    Running,
    /// Finished and recorded its outputs; eligible as a cache source.
    Completed,
    /// The step returned an error or panicked; never a cache source.
    Failed,
}

impl RunStatus {
    /// Name as stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        }
    }

    /// Parse a stored status name.
    pub fn parse(name: &str) -> Option<RunStatus> {
        match name {
            "running" => Some(RunStatus::Running),
            "completed" => Some(RunStatus::Completed),
            "failed" => Some(RunStatus::Failed),
            _ => None,
        }
    }

    /// Whether the run has ended (its record will not change again).
    pub fn is_terminal(self) -> bool {
        self != RunStatus::Running
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row of the `run` table (the schema shared with Python Consist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `<model>_<16 hex>` (`<model>_<8 hex>` before 2026-12-06, and in Python Consist).
    pub id: String,
    /// Scenario header run this run belongs to.
    pub parent_run_id: Option<String>,
    /// Lifecycle state.
    pub status: RunStatus,
    /// The step name.
    pub model_name: String,
    /// Free text.
    pub description: Option<String>,
    /// Model year.
    pub year: Option<i32>,
    /// Iteration number in an iterative scenario.
    pub iteration: Option<i32>,
    /// Free-form stage label.
    pub stage: Option<String>,
    /// Free-form phase label.
    pub phase: Option<String>,
    /// Labels; not part of the signature.
    pub tags: Vec<String>,
    /// Hash of the canonical config.
    pub config_hash: String,
    /// Code identity (stored in the `git_hash` column, as Python Consist does).
    pub code_hash: String,
    /// Hash of the inputs.
    pub input_hash: String,
    /// The run signature (cache key).
    pub signature: String,
    /// `cache_hit`, `cache_source`, `error`, `declared_outputs`, ...
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// Last change of the record.
    pub updated_at: DateTime<Utc>,
}

impl Run {
    /// A run of `model_name` that started at `now`: a new id, status `running`, and the process
    /// that runs it (pid, host) added to `meta`; the other fields empty, for the caller to fill
    /// with struct update syntax (`Run { tags, ..Run::starting(name, meta, now) }`). Every run
    /// starts here.
    pub(crate) fn starting(
        model_name: &str,
        mut meta: serde_json::Map<String, serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Run {
        record_process(&mut meta);
        Run {
            id: new_run_id(model_name),
            parent_run_id: None,
            status: RunStatus::Running,
            model_name: model_name.to_owned(),
            description: None,
            year: None,
            iteration: None,
            stage: None,
            phase: None,
            tags: Vec::new(),
            config_hash: String::new(),
            code_hash: String::new(),
            input_hash: String::new(),
            signature: String::new(),
            meta,
            started_at: now,
            ended_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// This run under another id (tests build runs with chosen ids).
    #[cfg(test)]
    pub(crate) fn with_id(mut self, id: &str) -> Run {
        self.id = id.to_owned();
        self
    }

    /// End the run now with `status` (`completed` or `failed`): sets `ended_at` and `updated_at`.
    pub(crate) fn end(&mut self, status: RunStatus) {
        let now = Utc::now();
        self.status = status;
        self.ended_at = Some(now);
        self.updated_at = now;
    }

    /// Whether this run reused the outputs of an earlier run.
    pub fn is_cache_hit(&self) -> bool {
        self.meta.get("cache_hit").and_then(|v| v.as_bool()).unwrap_or(false)
    }

    /// Whether this is a scenario's header run (`meta.kind` is `scenario`), not a step's run.
    pub(crate) fn is_scenario(&self) -> bool {
        self.meta.get("kind").and_then(|k| k.as_str()) == Some("scenario")
    }

    /// The run whose outputs a cache hit reused.
    pub fn cache_source(&self) -> Option<&str> {
        self.meta.get("cache_source").and_then(|v| v.as_str())
    }

    /// A `running` run recorded by a consist that held no lease for it (before leases), whose
    /// process (recorded as `meta.pid` on `meta.host`) no longer exists on this host: it was
    /// killed and will never finish. `false` when that cannot be known (another host, no
    /// `/proc`, or no pid recorded). Runs with a lease are judged by it: see
    /// [`crate::Catalog::zombies`].
    pub fn is_orphaned(&self) -> bool {
        let pid = self.meta.get("pid").and_then(|p| p.as_u64());
        let same_host = self.meta.get("host").and_then(|h| h.as_str()) == Some(host_name());
        match pid {
            Some(pid) if self.status == RunStatus::Running && same_host && Path::new("/proc/self").exists() => {
                !Path::new(&format!("/proc/{pid}")).exists()
            }
            _ => false,
        }
    }

    /// Wall time between start and end, when ended.
    pub fn duration(&self) -> Option<chrono::Duration> {
        self.ended_at.map(|end| end - self.started_at)
    }
}

/// Random hex digits that end a run id: 64 bits. Eight (Python Consist's 32 bits) collide after
/// ~77,000 runs of one step, and a colliding run overwrote the other's snapshot, output directory
/// and database row.
const RUN_ID_HEX: usize = 16;

/// A new run id: `<slug of name>_<16 hex>` (file-safe: it names snapshot and output paths).
pub(crate) fn new_run_id(name: &str) -> String {
    format!("{}_{}", crate::names::slug(name), &uuid::Uuid::new_v4().simple().to_string()[..RUN_ID_HEX])
}

/// Record which process runs a run (`meta.pid`, `meta.host`), so a killed one can be told apart
/// from a live one ([`Run::is_orphaned`]).
fn record_process(meta: &mut serde_json::Map<String, serde_json::Value>) {
    meta.insert("pid".into(), serde_json::Value::from(std::process::id()));
    meta.insert("host".into(), serde_json::Value::String(host_name().to_owned()));
}

/// The environment variable that names this host in the catalog (recorded with each run and
/// lease), when the machine's host name does not tell hosts apart (containers sharing one).
pub const HOST_ENV: &str = "CONSIST_HOST";

/// This host's name as recorded with each run and lease: `CONSIST_HOST`, else the machine's
/// host name.
pub(crate) fn host_name() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::env::var(HOST_ENV)
            .ok()
            .filter(|h| !h.trim().is_empty())
            .or_else(machine_host_name)
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned())
    })
}

/// The machine's host name, as the system reports it (`gethostname`).
fn machine_host_name() -> Option<String> {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at most that many.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            return String::from_utf8(buf[..end].to_vec()).ok().filter(|h| !h.is_empty());
        }
    }
    None
}

/// Format tag of snapshot files.
pub const SNAPSHOT_FORMAT: &str = "consist-snapshot-v1";

/// Everything recorded about one run: the JSON snapshot, from which the database can be rebuilt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// The run row.
    pub run: Run,
    /// Canonical config (what `config_hash` hashes).
    pub config: serde_json::Value,
    /// Config fields selected with `facet_from`, by dotted path: queryable, not hashed.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub facets: std::collections::BTreeMap<String, serde_json::Value>,
    /// Run directory that relative artifact URIs resolve against.
    pub run_dir: PathBuf,
    /// Artifacts read by the run.
    pub inputs: Vec<Artifact>,
    /// Artifacts written (or, for a cache hit, reused) by the run.
    pub outputs: Vec<Artifact>,
}

impl RunRecord {
    /// The artifacts its step read, by the key it read each under (`meta.inputs`: key ->
    /// artifact id; `states[1]` of a list input, where the artifact's own key is `state`);
    /// `None` for a record without that map (made before it was recorded, or by Python Consist).
    pub(crate) fn inputs_by_key(&self) -> Option<Vec<(&str, &Artifact)>> {
        let keys = self.run.meta.get("inputs")?.as_object().filter(|keys| !keys.is_empty())?;
        let by_id = |id: &serde_json::Value| self.inputs.iter().find(|a| Some(a.id.as_str()) == id.as_str());
        Some(keys.iter().filter_map(|(key, id)| Some((key.as_str(), by_id(id)?))).collect())
    }

    /// The record of `run` as it starts ([`Run::starting`]): its config, facets, run directory
    /// and inputs; no outputs yet.
    pub(crate) fn starting(
        run: Run,
        config: serde_json::Value,
        facets: std::collections::BTreeMap<String, serde_json::Value>,
        run_dir: PathBuf,
        inputs: Vec<Artifact>,
    ) -> RunRecord {
        RunRecord { format: SNAPSHOT_FORMAT.to_owned(), run, config, facets, run_dir, inputs, outputs: Vec::new() }
    }
}

/// A snapshot, or a line of a batch, that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_of_one_step_do_not_collide_at_sweep_scale() {
        // 200,000 ids of one step: with 32 random bits ~4.7 collisions were expected; with 64,
        // one in ~10^9 such tests.
        let ids: std::collections::HashSet<String> = (0..200_000).map(|_| new_run_id("add_one")).collect();
        assert_eq!(ids.len(), 200_000);
        let id = ids.iter().next().unwrap();
        let (name, hex) = id.rsplit_once('_').unwrap();
        assert_eq!(name, "add_one");
        assert!(hex.len() == RUN_ID_HEX && hex.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
}
