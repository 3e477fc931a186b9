//! One W3C PROV-JSON document: each run an activity (`run:<id>`, with its times), each artifact
//! an entity (`artifact:<id>`), consist a software agent every run `wasAssociatedWith`; `used`
//! for inputs, `wasGeneratedBy` for the outputs a run wrote, `wasDerivedFrom` from each input to
//! each output it wrote, and `wasInformedBy` from a cache hit to the run it reused.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{PRODUCER, time};
use crate::artifact::Artifact;
use crate::run::RunRecord;

const AGENT: &str = concat!("consist:consist-", env!("CARGO_PKG_VERSION"));

/// The document and how many statements (elements and relations) it holds.
pub(super) fn document(records: &[RunRecord]) -> (Value, usize) {
    let mut doc = Doc::default();
    doc.agent.insert(
        AGENT.into(),
        json!({ "prov:type": { "$": "prov:SoftwareAgent", "type": "prov:QUALIFIED_NAME" }, "prov:label": concat!("consist ", env!("CARGO_PKG_VERSION")), "consist:producer": PRODUCER }),
    );
    for record in records {
        let run = &record.run;
        let activity = format!("run:{}", run.id);
        let mut attributes = json!({
            "prov:label": run.model_name,
            "prov:startTime": time(&run.started_at),
            "consist:status": run.status.as_str(),
            "consist:signature": run.signature,
            "consist:cacheHit": run.is_cache_hit(),
        });
        if let Some(end) = run.ended_at {
            attributes["prov:endTime"] = json!(time(&end));
        }
        if let Some(iteration) = run.iteration {
            attributes["consist:iteration"] = json!(iteration);
        }
        doc.activity.insert(activity.clone(), attributes);
        doc.relation("wasAssociatedWith", json!({ "prov:activity": activity, "prov:agent": AGENT }));
        if let Some(parent) = &run.parent_run_id {
            doc.relation(
                "wasInformedBy",
                json!({ "prov:informed": activity, "prov:informant": format!("run:{parent}") }),
            );
        }
        if let Some(source) = run.cache_source() {
            doc.relation(
                "wasInformedBy",
                json!({ "prov:informed": activity, "prov:informant": format!("run:{source}") }),
            );
        }
        for input in &record.inputs {
            let entity = doc.entity(input);
            doc.relation(
                "used",
                json!({ "prov:activity": activity, "prov:entity": entity, "prov:time": time(&run.started_at) }),
            );
        }
        // A hit reuses outputs another run generated: only the producer generated them.
        for output in record.outputs.iter().filter(|a| a.run_id.as_deref() == Some(run.id.as_str())) {
            let entity = doc.entity(output);
            let end = run.ended_at.unwrap_or(run.updated_at);
            doc.relation(
                "wasGeneratedBy",
                json!({ "prov:entity": entity, "prov:activity": activity, "prov:time": time(&end) }),
            );
            for input in &record.inputs {
                doc.relation(
                    "wasDerivedFrom",
                    json!({ "prov:generatedEntity": entity, "prov:usedEntity": format!("artifact:{}", super::artifact_key(input)), "prov:activity": activity }),
                );
            }
        }
    }
    let statements =
        doc.entity.len() + doc.activity.len() + doc.agent.len() + doc.relations.values().map(Map::len).sum::<usize>();
    let mut out = json!({
        "prefix": {
            "consist": "urn:consist:prov:",
            "run": "urn:consist:run:",
            "artifact": "urn:consist:artifact:",
        },
        "entity": doc.entity,
        "activity": doc.activity,
        "agent": doc.agent,
    });
    for (kind, relations) in doc.relations {
        out[kind] = Value::Object(relations);
    }
    (out, statements)
}

#[derive(Default)]
struct Doc {
    entity: Map<String, Value>,
    activity: Map<String, Value>,
    agent: Map<String, Value>,
    relations: BTreeMap<&'static str, Map<String, Value>>,
    next: usize,
}

impl Doc {
    /// Declare `artifact` (once) and return its identifier.
    fn entity(&mut self, artifact: &Artifact) -> String {
        let id = format!("artifact:{}", super::artifact_key(artifact));
        self.entity.entry(id.clone()).or_insert_with(|| {
            let mut attributes = json!({
                "prov:label": artifact.key,
                "prov:location": artifact.uri,
                "consist:driver": artifact.driver.as_str(),
            });
            if let Some(hash) = &artifact.hash {
                attributes["consist:blake3"] = json!(hash);
            }
            attributes
        });
        id
    }

    /// Add a relation under a fresh blank-node identifier (`_:r1`, `_:r2`, ...).
    fn relation(&mut self, kind: &'static str, attributes: Value) {
        self.next += 1;
        self.relations.entry(kind).or_default().insert(format!("_:r{}", self.next), attributes);
    }
}
