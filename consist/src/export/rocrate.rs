//! A Workflow Run RO-Crate (RO-Crate 1.1, Process Run Crate profile 0.5): the metadata file
//! describes the root dataset (conforming to the profile), one `CreateAction` per run with its
//! step as `instrument` (a `SoftwareApplication`), its inputs as `object` and outputs as
//! `result`, its times and `actionStatus`; artifacts are `File` entities, copied into the crate
//! when asked (else named by their absolute `file://` URI).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::{PRODUCER, time};
use crate::artifact::Artifact;
use crate::error::Result;
use crate::run::{RunRecord, RunStatus};

/// The profile the crate conforms to.
pub(crate) const PROCESS_RUN_CRATE: &str = "https://w3id.org/ro/wfrun/process/0.5";

/// The metadata document and what went into it.
pub(super) struct Crate {
    pub(super) metadata: Value,
    pub(super) entities: usize,
    pub(super) files_copied: usize,
}

pub(super) fn build(records: &[RunRecord], root: &Path, with_files: bool) -> Result<Crate> {
    let mut files: BTreeMap<String, Value> = BTreeMap::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new(); // artifact id -> entity @id
    let mut steps: BTreeMap<String, Value> = BTreeMap::new();
    let mut actions = Vec::with_capacity(records.len());
    let mut included = Vec::new();
    let mut files_copied = 0;
    for record in records {
        for artifact in record.inputs.iter().chain(&record.outputs) {
            let key = super::artifact_key(artifact);
            if ids.contains_key(&key) {
                continue;
            }
            let copied = if with_files && artifact.path.is_file() { Some(copy_in(artifact, root)?) } else { None };
            let id = match &copied {
                Some(relative) => {
                    files_copied += 1;
                    relative.clone()
                }
                None => file_uri(&artifact.path),
            };
            // RO-Crate 1.1: every data entity is reached from the root through `hasPart`.
            included.push(json!({ "@id": id }));
            files.insert(id.clone(), file_entity(&id, artifact));
            ids.insert(key, id);
        }
        let run = &record.run;
        let step = format!("#step-{}", crate::names::slug(&run.model_name));
        steps
            .entry(step.clone())
            .or_insert_with(|| json!({ "@id": step, "@type": "SoftwareApplication", "name": run.model_name }));
        let refs = |artifacts: &[Artifact]| {
            artifacts.iter().map(|a| json!({ "@id": ids[&super::artifact_key(a)] })).collect::<Vec<_>>()
        };
        let mut action = json!({
            "@id": format!("#run-{}", run.id),
            "@type": "CreateAction",
            "name": format!("{} ({})", run.model_name, run.id),
            "identifier": run.id,
            "instrument": { "@id": step },
            "object": refs(&record.inputs),
            "result": refs(&record.outputs),
            "startTime": time(&run.started_at),
            "actionStatus": { "@id": status(run.status) },
        });
        if let Some(end) = run.ended_at {
            action["endTime"] = json!(time(&end));
        }
        if run.status == RunStatus::Failed {
            action["error"] = json!(run.meta.get("error").and_then(Value::as_str).unwrap_or("the run failed"));
        }
        actions.push(action);
    }
    let models: std::collections::BTreeSet<&str> = records.iter().map(|r| r.run.model_name.as_str()).collect();
    let root_entity = json!({
        "@id": "./",
        "@type": "Dataset",
        "name": format!("consist runs: {}", models.into_iter().collect::<Vec<_>>().join(", ")),
        "description": format!("{} runs recorded by consist {} ({PRODUCER})", records.len(), env!("CARGO_PKG_VERSION")),
        "datePublished": time(&chrono::Utc::now()),
        "conformsTo": [{ "@id": PROCESS_RUN_CRATE }],
        "hasPart": included,
        "mentions": actions.iter().map(|a| json!({ "@id": a["@id"] })).collect::<Vec<_>>(),
    });
    let mut graph = vec![
        json!({
            "@id": "ro-crate-metadata.json",
            "@type": "CreativeWork",
            "conformsTo": { "@id": "https://w3id.org/ro/crate/1.1" },
            "about": { "@id": "./" },
        }),
        root_entity,
        json!({ "@id": PROCESS_RUN_CRATE, "@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5" }),
    ];
    graph.extend(actions);
    graph.extend(steps.into_values());
    graph.extend(files.into_values());
    let entities = graph.len();
    let metadata = json!({ "@context": "https://w3id.org/ro/crate/1.1/context", "@graph": graph });
    Ok(Crate { metadata, entities, files_copied })
}

fn status(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "http://schema.org/CompletedActionStatus",
        RunStatus::Failed => "http://schema.org/FailedActionStatus",
        RunStatus::Running => "http://schema.org/ActiveActionStatus",
    }
}

fn file_entity(id: &str, artifact: &Artifact) -> Value {
    let mut entity = json!({ "@id": id, "@type": "File", "name": artifact.key });
    if let Some(format) = match artifact.driver.as_str() {
        "parquet" => Some("application/vnd.apache.parquet"),
        "csv" => Some("text/csv"),
        "json" => Some("application/json"),
        _ => None,
    } {
        entity["encodingFormat"] = json!(format);
    }
    if let Some(hash) = &artifact.hash {
        entity["identifier"] = json!(format!("blake3:{hash}"));
    }
    if let Ok(meta) = std::fs::metadata(&artifact.path) {
        entity["contentSize"] = json!(meta.len().to_string());
    }
    entity
}

/// Copy an artifact's file into `data/<key>/<file name>` under the crate root, checked against
/// its recorded hash (a file that changed since is an error, never packed); returns that
/// relative path (the entity's `@id`).
fn copy_in(artifact: &Artifact, root: &Path) -> Result<String> {
    // Both parts come from the catalog: each must stay one plain component under `data/`.
    let plain = |name: String| match crate::ids::is_plain(&name) {
        true => name,
        false => format!("x-{}", &blake3::hash(name.as_bytes()).to_hex()[..16]),
    };
    let name = plain(artifact.path.file_name().map_or_else(|| artifact.key.clone(), |n| n.to_string_lossy().into()));
    let relative = format!("data/{}/{}", plain(super::artifact_key(artifact)), name);
    crate::engine::hydrate::copy_checked(artifact, &root.join(&relative))?;
    Ok(percent_encoded(&relative))
}

/// An absolute `file://` URI (characters outside RFC 3986's unreserved set percent-encoded).
fn file_uri(path: &Path) -> String {
    format!("file://{}", percent_encoded(&path.to_string_lossy()))
}

/// `path` with every byte outside RFC 3986's unreserved set and `/` percent-encoded.
fn percent_encoded(path: &str) -> String {
    let mut uri = String::new();
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => uri.push(byte as char),
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri
}
