//! How records map onto the rows of the shared Consist schema, for every backend: timestamps as
//! RFC 3339 text in and microseconds out, the extra keys `artifact.meta` carries, the ids of
//! content, config and facet rows, and runs and artifacts rebuilt from their columns.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::artifact::{Artifact, Driver};
use crate::run::{Run, RunRecord, RunStatus};

/// `config_facet.schema_name` of a run's full canonical config (id `config:<config_hash>`).
pub(super) const CONFIG_SCHEMA: &str = "consist_config";
/// `config_facet.schema_name` of the fields selected with `facet_from`.
pub(super) const FACET_SCHEMA: &str = "facet_from";
/// The key of `run.meta` that holds the run directory (`_physical_run_dir`, as Python Consist).
pub(crate) const RUN_DIR_KEY: &str = "_physical_run_dir";
/// Extra keys the database row carries in `artifact.meta` beyond [`Artifact::meta`].
const ARTIFACT_PATH_KEY: &str = "path";
const ARTIFACT_PRODUCER_KEY: &str = "producer_signature";

/// A timestamp as written to the database (RFC 3339, microseconds, UTC).
pub(super) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn json_map(text: Option<String>) -> Map<String, Value> {
    match text.and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// A batch's records, each run once, in its last state (a batch may hold a run's start and its
/// end), in the order of their last appearance.
pub(super) fn last_per_run(records: &[RunRecord]) -> Vec<&RunRecord> {
    let mut last = std::collections::HashMap::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        last.insert(record.run.id.as_str(), i);
    }
    records.iter().enumerate().filter(|(i, r)| last[r.run.id.as_str()] == *i).map(|(_, r)| r).collect()
}

/// `run.meta` as stored: the run's meta plus its run directory.
pub(super) fn run_meta_json(record: &RunRecord) -> String {
    let mut meta = record.run.meta.clone();
    meta.insert(RUN_DIR_KEY.into(), Value::String(record.run_dir.to_string_lossy().into_owned()));
    Value::Object(meta).to_string()
}

/// `artifact.meta` as stored: the artifact's meta plus its path and producer signature.
pub(super) fn artifact_meta_json(a: &Artifact) -> String {
    let mut meta = a.meta.clone();
    meta.insert(ARTIFACT_PATH_KEY.into(), Value::String(a.path.to_string_lossy().into_owned()));
    if let Some(sig) = &a.producer_signature {
        meta.insert(ARTIFACT_PRODUCER_KEY.into(), Value::String(sig.clone()));
    }
    Value::Object(meta).to_string()
}

/// The `artifact_content.id` of content with `hash` read by `driver`.
pub(super) fn content_id(hash: &str, driver: Driver) -> String {
    crate::signature::hash_parts("consist-content-v1", &[hash.as_bytes(), driver.as_str().as_bytes()])[..32].to_owned()
}

/// The `config_facet.id` holding the config whose hash is `config_hash`.
pub(super) fn config_id(config_hash: &str) -> String {
    format!("config:{config_hash}")
}

/// The `config_facet.id` of a model's facet values (their JSON text).
pub(super) fn facet_id(model: &str, facets_json: &str) -> String {
    crate::signature::hash_parts("consist-facet-v1", &[model.as_bytes(), facets_json.as_bytes()])[..32].to_owned()
}

/// The columns of a `run` row as a backend reads them (JSON as text, times in microseconds).
pub(super) struct RunRow {
    pub id: String,
    pub parent_run_id: Option<String>,
    pub status: String,
    pub model_name: String,
    pub description: Option<String>,
    pub year: Option<i32>,
    pub iteration: Option<i32>,
    pub stage: Option<String>,
    pub phase: Option<String>,
    pub tags: Option<String>,
    pub config_hash: Option<String>,
    pub git_hash: Option<String>,
    pub input_hash: Option<String>,
    pub signature: Option<String>,
    pub meta: Option<String>,
    pub started_us: i64,
    pub ended_us: Option<i64>,
    pub created_us: i64,
    pub updated_us: i64,
}

impl RunRow {
    /// The run (`git_hash` holds the code hash, as in Python Consist).
    pub fn into_run(self) -> Run {
        Run {
            id: self.id,
            parent_run_id: self.parent_run_id,
            status: RunStatus::parse(&self.status).unwrap_or(RunStatus::Failed),
            model_name: self.model_name,
            description: self.description,
            year: self.year,
            iteration: self.iteration,
            stage: self.stage,
            phase: self.phase,
            tags: self.tags.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
            config_hash: self.config_hash.unwrap_or_default(),
            code_hash: self.git_hash.unwrap_or_default(),
            input_hash: self.input_hash.unwrap_or_default(),
            signature: self.signature.unwrap_or_default(),
            meta: json_map(self.meta),
            started_at: from_micros(self.started_us),
            ended_at: self.ended_us.map(from_micros),
            created_at: from_micros(self.created_us),
            updated_at: from_micros(self.updated_us),
        }
    }
}

/// The columns of an `artifact` row as a backend reads them.
pub(super) struct ArtifactRow {
    pub id: String,
    pub key: String,
    pub container_uri: String,
    pub driver: String,
    pub hash: Option<String>,
    pub run_id: Option<String>,
    pub meta: Option<String>,
    pub created_us: i64,
}

impl ArtifactRow {
    /// The artifact, with its path and producer signature taken back out of `meta`.
    pub fn into_artifact(self) -> Artifact {
        let mut meta = json_map(self.meta);
        let path = match meta.remove(ARTIFACT_PATH_KEY) {
            Some(Value::String(p)) => PathBuf::from(p),
            _ => PathBuf::from(&self.container_uri),
        };
        let producer_signature = match meta.remove(ARTIFACT_PRODUCER_KEY) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        Artifact {
            id: self.id,
            key: self.key,
            uri: self.container_uri,
            path,
            driver: Driver::parse(&self.driver),
            hash: self.hash,
            run_id: self.run_id,
            producer_signature,
            meta,
            created_at: from_micros(self.created_us),
        }
    }
}

/// A record holding `run` alone (its run directory taken back out of `meta`), for a backend to
/// fill with config, facets and artifacts.
pub(super) fn record_of(mut run: Run) -> RunRecord {
    let run_dir = match run.meta.remove(RUN_DIR_KEY) {
        Some(Value::String(dir)) => PathBuf::from(dir),
        _ => PathBuf::new(),
    };
    RunRecord {
        format: crate::run::SNAPSHOT_FORMAT.to_owned(),
        run,
        config: Value::Null,
        facets: Default::default(),
        run_dir,
        inputs: Vec::new(),
        outputs: Vec::new(),
    }
}

/// JSON text as stored, parsed (`null` when absent or unreadable).
pub(super) fn parse_json(text: Option<String>) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)
}
