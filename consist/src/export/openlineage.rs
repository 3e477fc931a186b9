//! OpenLineage 2-0-2 run events: a START and a COMPLETE or FAIL event per run (START only for a
//! run still `running`), with a deterministic UUID `runId`, the step as the job, artifacts as
//! datasets, and facets that each carry `_producer` and `_schemaURL`: `parent` (the scenario),
//! `errorMessage` (a failed run) and `consist` (signature, hashes, cache hit and source).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{PRODUCER, run_uuid, time};
use crate::artifact::Artifact;
use crate::run::{RunRecord, RunStatus};

const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const PARENT_FACET: &str = "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
const ERROR_FACET: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
/// The `$id` of `docs/openlineage-consist-run-facet.json` and the facet's definition in it.
const CONSIST_FACET: &str =
    concat!("urn:consist:schema:openlineage-run-facet:", env!("CARGO_PKG_VERSION"), "#/$defs/ConsistRunFacet");

/// The job namespace of every run.
pub(crate) const NAMESPACE: &str = "consist";

/// The events of `records`, in order; `names` maps run ids to model names (for parents).
pub(super) fn events(records: &[RunRecord], names: &BTreeMap<String, String>) -> Vec<Value> {
    let mut events = Vec::with_capacity(records.len() * 2);
    for record in records {
        events.push(event(record, "START", &time(&record.run.started_at), names));
        let end = record.run.ended_at.unwrap_or(record.run.updated_at);
        match record.run.status {
            RunStatus::Completed => events.push(event(record, "COMPLETE", &time(&end), names)),
            RunStatus::Failed => events.push(event(record, "FAIL", &time(&end), names)),
            RunStatus::Running => {}
        }
    }
    events
}

fn event(record: &RunRecord, kind: &str, at: &str, names: &BTreeMap<String, String>) -> Value {
    let run = &record.run;
    let mut facets = serde_json::Map::new();
    facets.insert(
        "consist".into(),
        json!({
            "_producer": PRODUCER,
            "_schemaURL": CONSIST_FACET,
            "runId": run.id,
            "signature": run.signature,
            "codeHash": run.code_hash,
            "configHash": run.config_hash,
            "inputHash": run.input_hash,
            "cacheHit": run.is_cache_hit(),
            "cacheSource": run.cache_source(),
            "iteration": run.iteration,
            "status": run.status.as_str(),
        }),
    );
    if let Some(parent) = &run.parent_run_id {
        facets.insert(
            "parent".into(),
            json!({
                "_producer": PRODUCER,
                "_schemaURL": PARENT_FACET,
                "run": { "runId": run_uuid(parent) },
                "job": { "namespace": NAMESPACE, "name": names.get(parent).map_or(parent.as_str(), String::as_str) },
            }),
        );
    }
    if kind == "FAIL" {
        let message = run.meta.get("error").and_then(Value::as_str).unwrap_or("the run failed");
        facets.insert(
            "errorMessage".into(),
            json!({ "_producer": PRODUCER, "_schemaURL": ERROR_FACET, "message": message, "programmingLanguage": "Rust" }),
        );
    }
    let datasets = |artifacts: &[Artifact]| artifacts.iter().map(dataset).collect::<Vec<_>>();
    // Inputs are known from the start; outputs once the run has ended, and only those it wrote
    // (a cache hit reuses another run's: its `consist` facet names that run).
    let written: Vec<Artifact> =
        record.outputs.iter().filter(|a| a.run_id.as_deref() == Some(run.id.as_str())).cloned().collect();
    let outputs = if kind == "START" { Vec::new() } else { datasets(&written) };
    json!({
        "eventType": kind,
        "eventTime": at,
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": { "runId": run_uuid(&run.id), "facets": facets },
        "job": { "namespace": NAMESPACE, "name": run.model_name },
        "inputs": datasets(&record.inputs),
        "outputs": outputs,
    })
}

/// A file as an OpenLineage dataset: namespace `file`, name its path where it was recorded
/// (OpenLineage's naming for local files).
fn dataset(artifact: &Artifact) -> Value {
    json!({ "namespace": "file", "name": artifact.path.to_string_lossy() })
}
