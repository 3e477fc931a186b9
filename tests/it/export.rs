//! `consist export`: the iterative example's catalog (plus a failed run) as OpenLineage events,
//! a PROV-JSON document and a Workflow Run RO-Crate, each validated against the published JSON
//! schemas vendored in `tests/schemas/` (OpenLineage 2-0-2 and its facets, W3C PROV-JSON) by
//! `tests/schema-check`, and the crate against RO-Crate 1.1's and the Process Run Crate
//! profile's MUST rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::examples::example_command;
use crate::support::cli;

const OPENLINEAGE: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json";

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas")
}

/// Run the schema checker (built once, in its own target directory) with `args`; it must pass.
fn schema_check(args: &[&str]) -> String {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let binary = BUILT.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
            .join("schema-check");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema-check/Cargo.toml");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--quiet", "--locked", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .output()
            .unwrap();
        assert!(out.status.success(), "building the schema checker: {}", String::from_utf8_lossy(&out.stderr));
        target.join("debug/consist-schema-check")
    });
    let out = Command::new(binary).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The iterative example's catalog plus one failed run; returns the database.
fn catalog(dir: &Path) -> PathBuf {
    let out = example_command("iterative_workflow", dir, &["--iterations", "2", "--extended", "3"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = dir.join("runs/travel_demand/provenance.duckdb");
    let tracker = consist::Tracker::builder(dir.join("runs/travel_demand")).db_path(&db).open().unwrap();
    let failed = tracker
        .step("calibrate")
        .code_version("1")
        .outputs(["v"])
        .run(|_| -> consist::StepResult<consist::Value<u8>> { Err("the calibration diverged".into()) });
    assert!(failed.is_err());
    tracker.flush().unwrap();
    db
}

fn export(db: &Path, args: &[&str]) {
    let out = cli(db, &[&["export"], args].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn run_count(db: &Path) -> usize {
    crate::support::query_rows(db, "SELECT count(*) FROM run")[0][0].as_u64().unwrap() as usize
}

#[test]
fn the_catalog_exports_as_openlineage_events_valid_against_the_published_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let db = catalog(dir.path());
    let runs = run_count(&db);
    let path = dir.path().join("events.jsonl");
    let file = path.to_str().unwrap();
    export(&db, &["--format", "openlineage", "--out", file]);
    let core = schemas().join("openlineage-2-0-2.json");
    let core = core.to_str().unwrap();
    let summary = schema_check(&["--resource", core, "--schema", &format!("{OPENLINEAGE}#/$defs/RunEvent"), file]);
    assert_eq!(summary.trim(), format!("valid: {} checked, 0 without -", runs * 2));
    // The facets against their own schemas.
    for (facet, schema, url) in [
        (
            "parent",
            "ParentRunFacet.json",
            "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
        ),
        (
            "errorMessage",
            "ErrorMessageRunFacet.json",
            "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
        ),
    ] {
        let facet_schema = schemas().join(schema);
        let summary = schema_check(&[
            "--resource",
            core,
            "--resource",
            facet_schema.to_str().unwrap(),
            "--schema",
            url,
            "--at",
            &format!("/run/facets/{facet}"),
            file,
        ]);
        assert!(!summary.starts_with("valid: 0 "), "some events carry `{facet}`: {summary}");
    }
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openlineage-consist-run-facet.json");
    let own_id = serde_json::from_str::<Value>(&std::fs::read_to_string(&own).unwrap()).unwrap()["$id"]
        .as_str()
        .unwrap()
        .to_owned();
    let summary = schema_check(&[
        "--resource",
        core,
        "--resource",
        own.to_str().unwrap(),
        "--schema",
        &format!("{own_id}#/$defs/ConsistRunFacet"),
        "--at",
        "/run/facets/consist",
        file,
    ]);
    assert_eq!(summary.trim(), format!("valid: {} checked, 0 without /run/facets/consist", runs * 2));

    // One START and one COMPLETE or FAIL per run; the FAIL names the error; runIds are
    // deterministic UUIDs (a second export gives the same ids), and the facet names our run id.
    let events: Vec<Value> =
        std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut kinds: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &events {
        assert_eq!(
            e["run"]["facets"]["consist"]["_schemaURL"].as_str().unwrap(),
            format!("{own_id}#/$defs/ConsistRunFacet")
        );
        kinds
            .entry(e["run"]["runId"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["eventType"].as_str().unwrap().into());
    }
    assert_eq!(kinds.len(), runs);
    assert!(
        kinds.values().all(|k| k[0] == "START" && k.len() == 2 && (k[1] == "COMPLETE" || k[1] == "FAIL")),
        "{kinds:?}"
    );
    let fail = events.iter().find(|e| e["eventType"] == "FAIL").expect("the failed run");
    assert!(fail["run"]["facets"]["errorMessage"]["message"].as_str().unwrap().contains("diverged"), "{fail}");
    let again = dir.path().join("again.jsonl");
    export(&db, &["--format", "openlineage", "--out", again.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&again).unwrap(), std::fs::read_to_string(&path).unwrap(), "deterministic");
    // A scenario alone: its header and its runs.
    let scoped = dir.path().join("scenario.jsonl");
    let header = events.iter().find(|e| e["job"]["name"] == "travel_demand_demo").unwrap();
    let header_id = header["run"]["facets"]["consist"]["runId"].as_str().unwrap();
    export(&db, &["--format", "openlineage", "--scenario", header_id, "--out", scoped.to_str().unwrap()]);
    let scoped: Vec<Value> =
        std::fs::read_to_string(&scoped).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let header_uuid = header["run"]["runId"].as_str().unwrap();
    assert!(
        scoped
            .iter()
            .all(|e| e["run"]["runId"] == header_uuid || e["run"]["facets"]["parent"]["run"]["runId"] == header_uuid)
    );
    assert!(scoped.len() > 2 && scoped.len() < events.len());
    // Hits name the run they reused, and list as outputs only what they wrote (nothing).
    let hit = events
        .iter()
        .find(|e| e["eventType"] == "COMPLETE" && e["run"]["facets"]["consist"]["cacheHit"] == true)
        .unwrap();
    assert!(
        hit["outputs"].as_array().unwrap().is_empty() && hit["run"]["facets"]["consist"]["cacheSource"].is_string()
    );
    // Mistakes are refused with the reason.
    let refused = |args: &[&str]| {
        let out = cli(&db, &[&["export"], args].concat());
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let step_run =
        events.iter().find(|e| e["job"]["name"] == "mode_choice").unwrap()["run"]["facets"]["consist"]["runId"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(refused(&["--format", "openlineage", "--scenario", &step_run, "--out", file]).contains("not a scenario"));
    assert!(
        refused(&["--format", "prov-json", "--with-files", "--out", file]).contains("only an RO-Crate holds files")
    );
    assert!(refused(&["--format", "ro-crate", "--out", dir.path().to_str().unwrap()]).contains("not empty"));
    assert!(refused(&["--format", "openlineage", "--run", "nosuchrun", "--out", file]).contains("nosuchrun"));
}

#[test]
fn the_catalog_exports_as_prov_json_valid_against_the_w3c_schema() {
    let dir = tempfile::tempdir().unwrap();
    let db = catalog(dir.path());
    let runs = run_count(&db);
    let path = dir.path().join("prov.json");
    export(&db, &["--format", "prov-json", "--out", path.to_str().unwrap()]);
    let schema = schemas().join("prov-json.schema.json");
    let summary = schema_check(&[
        "--resource",
        schema.to_str().unwrap(),
        "--schema",
        "http://provenance.ecs.soton.ac.uk/prov-json/schema#",
        path.to_str().unwrap(),
    ]);
    assert_eq!(summary.trim(), "valid: 1 checked, 0 without -");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let activities = doc["activity"].as_object().unwrap();
    assert_eq!(activities.len(), runs);
    assert!(activities.values().all(|a| a["prov:startTime"].is_string()));
    let agent = doc["agent"].as_object().unwrap().keys().next().unwrap().clone();
    let associated: BTreeSet<&str> = doc["wasAssociatedWith"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["prov:agent"] == agent.as_str())
        .map(|r| r["prov:activity"].as_str().unwrap())
        .collect();
    assert_eq!(associated.len(), runs, "every run is associated with consist");
    // Every relation names declared elements; every generated entity was generated once.
    let entities = doc["entity"].as_object().unwrap();
    let mut generated = BTreeSet::new();
    for r in doc["wasGeneratedBy"].as_object().unwrap().values() {
        assert!(
            entities.contains_key(r["prov:entity"].as_str().unwrap())
                && activities.contains_key(r["prov:activity"].as_str().unwrap())
        );
        assert!(generated.insert(r["prov:entity"].as_str().unwrap()), "generated once: {r}");
    }
    for r in doc["used"].as_object().unwrap().values() {
        assert!(entities.contains_key(r["prov:entity"].as_str().unwrap()));
    }
    let derived = doc["wasDerivedFrom"].as_object().unwrap();
    assert!(!derived.is_empty());
    assert!(derived.values().all(|r| entities.contains_key(r["prov:usedEntity"].as_str().unwrap())));
}

#[test]
fn the_catalog_exports_as_a_process_run_crate_that_keeps_the_profile_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = catalog(dir.path());
    let runs = run_count(&db);
    let root = dir.path().join("crate");
    export(&db, &["--format", "ro-crate", "--with-files", "--out", root.to_str().unwrap()]);
    // Each raw input file is one entity however many runs read it.
    let raw_inputs = std::fs::read_dir(root.join("data"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("raw-"))
        .count();
    assert!(raw_inputs <= 2, "{raw_inputs} copies of the example's raw inputs");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("ro-crate-metadata.json")).unwrap()).unwrap();
    assert_eq!(doc["@context"], "https://w3id.org/ro/crate/1.1/context");
    let graph = doc["@graph"].as_array().unwrap();
    let by_id: BTreeMap<&str, &Value> = graph.iter().map(|e| (e["@id"].as_str().unwrap(), e)).collect();
    assert_eq!(by_id.len(), graph.len(), "@ids are unique");
    let types = |e: &Value| -> Vec<String> {
        match &e["@type"] {
            Value::String(t) => vec![t.clone()],
            Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
            _ => Vec::new(),
        }
    };
    // RO-Crate 1.1: the metadata descriptor and the root data entity.
    let descriptor = by_id["ro-crate-metadata.json"];
    assert_eq!(types(descriptor), ["CreativeWork"]);
    assert_eq!(descriptor["about"]["@id"], "./");
    assert!(descriptor["conformsTo"]["@id"].as_str().unwrap().starts_with("https://w3id.org/ro/crate/1."));
    let root_entity = by_id["./"];
    assert!(types(root_entity).contains(&"Dataset".to_owned()));
    for key in ["name", "description", "datePublished"] {
        assert!(root_entity[key].is_string(), "root {key}");
    }
    // Process Run Crate: the root conforms to the profile, described in the crate.
    let profile = "https://w3id.org/ro/wfrun/process/0.5";
    assert!(root_entity["conformsTo"].as_array().unwrap().iter().any(|c| c["@id"] == profile));
    assert!(by_id.contains_key(profile));
    let actions: Vec<&Value> = graph.iter().filter(|e| types(e).contains(&"CreateAction".to_owned())).collect();
    assert_eq!(actions.len(), runs);
    let statuses =
        ["CompletedActionStatus", "FailedActionStatus", "ActiveActionStatus"].map(|s| format!("http://schema.org/{s}"));
    for action in &actions {
        let instrument = by_id[action["instrument"]["@id"].as_str().unwrap()];
        assert!(types(instrument).contains(&"SoftwareApplication".to_owned()), "instrument of {action}");
        for side in ["object", "result"] {
            for r in action[side].as_array().unwrap() {
                let entity = by_id.get(r["@id"].as_str().unwrap()).unwrap_or_else(|| panic!("{side} {r} is described"));
                assert!(types(entity).contains(&"File".to_owned()));
            }
        }
        assert!(
            action["startTime"].is_string()
                && statuses.contains(&action["actionStatus"]["@id"].as_str().unwrap().to_owned())
        );
        if action["actionStatus"]["@id"] == statuses[1].as_str() {
            assert!(action["error"].as_str().unwrap().contains("diverged"));
        } else {
            assert!(action["endTime"].is_string());
        }
    }
    // The root mentions every action; every file it has as a part is in the crate.
    assert_eq!(root_entity["mentions"].as_array().unwrap().len(), runs);
    let parts = root_entity["hasPart"].as_array().unwrap();
    assert!(!parts.is_empty());
    for part in parts {
        let id = part["@id"].as_str().unwrap();
        assert!(by_id.contains_key(id), "{id} is described");
        assert!(id.starts_with("file:///") || root.join(id).is_file(), "{id} is in the crate or named absolutely");
    }
    // Every File entity is reached from the root.
    let reached: BTreeSet<&str> = parts.iter().map(|p| p["@id"].as_str().unwrap()).collect();
    assert!(
        graph
            .iter()
            .filter(|e| types(e).contains(&"File".to_owned()))
            .all(|e| reached.contains(e["@id"].as_str().unwrap()))
    );
}
