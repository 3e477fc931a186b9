//! The `consist` CLI against a database built by the iterative example: JSON fields, run-id
//! prefixes, exit codes, lineage formats, read-only queries and views, validation, rebuild.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value as Json;

use crate::examples::example;
use crate::support::{Workspace, cli};

/// A workspace where the iterative example ran 3 baseline and 4 extended iterations.
fn catalog() -> (Workspace, PathBuf) {
    let ws = Workspace::new();
    example("iterative_workflow", ws.path(), &["--iterations", "3", "--extended", "4"]);
    let db = ws.path().join("runs/travel_demand/provenance.duckdb");
    (ws, db)
}

/// Run a command that must succeed and print JSON.
fn json(db: &Path, args: &[&str]) -> Json {
    let out = cli(db, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e})"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ids(runs: &Json) -> Vec<String> {
    runs.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn runs_show_artifacts_and_prefixes() {
    let (_ws, db) = catalog();
    let scenarios = json(&db, &["scenarios", "--json"]);
    let names: Vec<&str> = scenarios.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["travel_demand_demo_extended", "travel_demand_demo"], "newest first");
    assert_eq!(scenarios[0]["iterations"], 4);
    assert_eq!(scenarios[1]["cache_hits"], 0);
    let extended = json(&db, &["runs", "--json", "--model", "travel_demand_demo_extended"]);
    let ext_id = ids(&extended)[0].clone();
    let prefix = &ext_id[..ext_id.len() - 4];
    let iter1 = json(&db, &["runs", "--json", "--scenario", prefix, "--iteration", "1"]);
    let models: Vec<&str> = iter1.as_array().unwrap().iter().map(|r| r["model_name"].as_str().unwrap()).collect();
    assert_eq!(models.len(), 6, "{models:?}");
    assert!(iter1.as_array().unwrap().iter().all(|r| r["iteration"] == 1 && r["parent_run_id"] == ext_id.as_str()));
    // By the scenario's name: its latest run's children.
    let by_name = json(&db, &["runs", "--json", "--scenario", "travel_demand_demo_extended", "--iteration", "1"]);
    assert_eq!(ids(&by_name), ids(&iter1));
    let tagged = json(&db, &["runs", "--json", "--tag", "travel_demand"]);
    assert_eq!(ids(&tagged).len(), 2, "only the scenario headers carry tags");
    // The runs that read `zones` in one iteration: logsums, trip distribution, utilities.
    let readers = json(&db, &["runs", "--json", "--scenario", prefix, "--iteration", "1", "--input", "zones"]);
    let mut models: Vec<&str> = readers.as_array().unwrap().iter().map(|r| r["model_name"].as_str().unwrap()).collect();
    models.sort();
    assert_eq!(models, ["calculate_utilities", "logsums", "trip_distribution"]);

    let mode_choice = json(&db, &["runs", "--json", "--model", "mode_choice", "--limit", "1"]);
    let run_id = ids(&mode_choice)[0].clone();
    let shown = json(&db, &["show", &run_id[..run_id.len() - 2], "--json"]);
    assert_eq!(shown["run"]["id"], run_id.as_str());
    assert!(shown["config"]["seed"].is_u64(), "config comes back: {shown}");
    assert_eq!(shown["outputs"][0]["key"], "trips_with_modes");

    let artifacts = json(&db, &["artifacts", &run_id, "--json"]);
    let rows = artifacts.as_array().unwrap();
    assert!(rows.iter().any(|a| a["direction"] == "input" && a["key"] == "utilities"));
    assert!(rows.iter().all(|a| a["exists"] == true));

    let ambiguous = cli(&db, &["show", "mode_choice_"]);
    assert_eq!(ambiguous.status.code(), Some(2));
    assert!(stderr(&ambiguous).contains("several run ids"), "{}", stderr(&ambiguous));
    let missing = cli(&db, &["show", "nope_0000"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("`nope_0000`"), "{}", stderr(&missing));

    let summary = json(&db, &["summary", "--json"]);
    assert_eq!(summary["scenarios"], 2);
    assert_eq!(
        summary["runs"].as_i64().unwrap(),
        json(&db, &["runs", "--json", "--limit", "1000"]).as_array().unwrap().len() as i64
    );
    let found = json(&db, &["search", "BETA_ACCESS", "--json", "--limit", "100"]);
    let models: std::collections::BTreeSet<&str> =
        found.as_array().unwrap().iter().map(|r| r["model_name"].as_str().unwrap()).collect();
    let expected = ["travel_demand_demo", "travel_demand_demo_extended", "trip_distribution"];
    assert_eq!(models.into_iter().collect::<Vec<_>>(), expected, "only configs holding dest_params match");

    let scenario = json(&db, &["scenario", prefix, "--json"]);
    assert_eq!(scenario["scenario"]["id"], ext_id.as_str());
    let by_name = json(&db, &["scenario", "travel_demand_demo_extended", "--json"]);
    assert_eq!(by_name["scenario"]["id"], ext_id.as_str(), "a scenario's name names its latest run");
    assert_eq!(
        scenario["runs"].as_array().unwrap().len(),
        1 + 4 * 6 + 2,
        "init, 4 iterations of 6 steps, summaries, skims_by_iteration"
    );
}

#[test]
fn lineage_diff_and_explain() {
    let (_ws, db) = catalog();
    let tree = json(&db, &["lineage", "skims", "--depth", "2", "--format", "json"]);
    assert_eq!(tree["artifact"]["key"], "skims");
    assert_eq!(tree["producer"]["run"]["model_name"], "traffic_simulation");
    let dot = String::from_utf8(cli(&db, &["lineage", "skims", "--format", "dot"]).stdout).unwrap();
    assert!(dot.starts_with("digraph lineage {") && dot.contains(" -> "), "{dot}");
    let mermaid = String::from_utf8(cli(&db, &["lineage", "skims", "--format", "mermaid"]).stdout).unwrap();
    assert!(mermaid.starts_with("flowchart LR") && mermaid.contains(" --> "), "{mermaid}");

    let runs = json(&db, &["runs", "--json", "--model", "mode_choice", "--limit", "100"]);
    let runs = runs.as_array().unwrap();
    let executed: Vec<&Json> = runs.iter().filter(|r| r["meta"]["cache_hit"] != true).collect();
    let (a, b) = (executed[0]["id"].as_str().unwrap(), executed[1]["id"].as_str().unwrap());
    let diff = json(&db, &["diff", a, b, "--json"]);
    assert_eq!(diff["code_changed"], false);
    assert!(diff["config"]["changed"]["seed"].is_array(), "{diff}");
    assert!(diff["inputs"]["changed"]["utilities"].is_array(), "{diff}");

    let hit = runs.iter().find(|r| r["meta"]["cache_hit"] == true).unwrap();
    let explained = json(&db, &["explain", hit["id"].as_str().unwrap(), "--json"]);
    assert_eq!(explained["cache_hit"], true);
    assert!(explained["cache_source"].is_string());
    let miss = json(&db, &["explain", a, "--json"]);
    assert_eq!(miss["cache_hit"], false);
    assert!(miss["miss"]["summary"].is_string(), "{miss}");
}

#[test]
fn query_is_read_only_and_views_union_artifact_files() {
    let (_ws, db) = catalog();
    let write = cli(&db, &["query", "DELETE FROM run"]);
    assert_eq!(write.status.code(), Some(2));
    assert!(stderr(&write).contains("read-only"), "{}", stderr(&write));
    let counted = json(&db, &["query", "SELECT count(*) AS n FROM run", "--json"]);
    assert!(counted["rows"][0][0].as_i64().unwrap() > 20, "the delete did nothing: {counted}");

    let shares = json(
        &db,
        &[
            "query",
            "SELECT consist_iteration, count(DISTINCT consist_run_id) AS runs, count(*) AS trips FROM trips_with_modes GROUP BY 1 ORDER BY 1",
            "--json",
        ],
    );
    assert_eq!(shares["columns"], serde_json::json!(["consist_iteration", "runs", "trips"]));
    let rows = shares["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "iterations 0-3, each produced once: {shares}");
    assert!(rows.iter().all(|r| r[1] == 1 && r[2] == 5600), "{shares}");
    let views = json(&db, &["views", "--json"]);
    let trips = views.as_array().unwrap().iter().find(|v| v["key"] == "trips_with_modes").unwrap();
    assert_eq!((trips["files"].as_i64(), trips["missing"].as_i64()), (Some(4), Some(0)), "{trips}");
    let preview = json(&db, &["preview", "zones", "--rows", "2", "--json"]);
    assert_eq!(preview["rows"].as_array().unwrap().len(), 2);
    assert_eq!(preview["columns"][0], "zone_id");
}

#[test]
fn query_prints_typed_nulls_every_type_and_every_view() {
    let (_ws, db) = catalog();
    let text = cli(&db, &["query", "SELECT NULL AS x, 1 AS y"]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(String::from_utf8_lossy(&text.stdout).contains("1 row(s)"));
    assert_eq!(json(&db, &["query", "SELECT NULL AS x", "--json"])["rows"], serde_json::json!([[null]]));

    let every = "SELECT true a, 1::TINYINT b, 2::UTINYINT c, 3::HUGEINT d, 1.5::FLOAT e, 2.25::DOUBLE f, \
        1.50::DECIMAL(10,2) g, 'x' h, DATE '2024-02-29' i, TIMESTAMP '2024-02-29 12:30:00' j, TIME '12:30:00' k, \
        INTERVAL 90 MINUTE l, [1, NULL] m, [1,2]::INTEGER[2] n, {'x': 1} o, MAP {'a': 1} p, 'a'::ENUM('a','b') q, \
        union_value(k := 1) r, 'a\\x00'::BLOB s, '00000000-0000-0000-0000-000000000001'::UUID t, 1::UHUGEINT u";
    let row = &json(&db, &["query", every, "--json"])["rows"][0];
    let expected = serde_json::json!([
        true, 1, 2, 3, 1.5, 2.25, "1.50", "x", "2024-02-29", "2024-02-29T12:30:00.000000Z", "12:30:00.000000",
        "P0M0DT5400S", [1, null], [1, 2], {"x": 1}, [["a", 1]], "a", 1, "a\\x00",
        "00000000-0000-0000-0000-000000000001", 1
    ]);
    assert_eq!(*row, expected);

    let nested = cli(&db, &["query", "SELECT [NULL] AS v"]);
    assert_eq!(nested.status.code(), Some(2));
    assert!(stderr(&nested).contains("CAST(v AS VARCHAR)"), "{}", stderr(&nested));

    let views = json(&db, &["views", "--json"]);
    let views = views.as_array().unwrap();
    assert!(views.len() >= 5, "{views:?}");
    for view in views {
        let name = view["view"].as_str().unwrap();
        let out = json(&db, &["query", &format!("SELECT * FROM {name} LIMIT 2"), "--json"]);
        let columns = out["columns"].as_array().unwrap();
        assert!(columns.iter().any(|c| c == "consist_scenario_id"), "{name}: {out}");
        assert!(!out["rows"].as_array().unwrap().is_empty(), "{name}: {out}");
        let text = cli(&db, &["query", &format!("SELECT * FROM {name} LIMIT 2")]);
        assert!(text.status.success(), "{name}: {}", stderr(&text));
    }
}

#[test]
fn validate_catches_a_modified_file_and_rebuild_restores_a_deleted_database() {
    let (_ws, db) = catalog();
    assert!(cli(&db, &["validate"]).status.success());
    let zones = json(&db, &["preview", "zones", "--rows", "1", "--json"]);
    assert!(zones["rows"].is_array());
    let artifacts = json(
        &db,
        &["query", "SELECT json_extract_string(meta, '$.path') FROM artifact WHERE \"key\" = 'zones'", "--json"],
    );
    let path = PathBuf::from(artifacts["rows"][0][0].as_str().unwrap());
    std::fs::write(&path, b"not parquet any more").unwrap();
    let out = cli(&db, &["validate", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let problems: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(problems[0]["key"], "zones");
    assert_eq!(problems[0]["problem"], "modified");

    let before = ids(&json(&db, &["runs", "--json", "--limit", "1000"]));
    std::fs::remove_file(&db).unwrap();
    let _ = std::fs::remove_file(db.with_extension("duckdb.wal"));
    let rebuilt = cli(&db, &["db", "rebuild"]);
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    let mut after = ids(&json(&db, &["runs", "--json", "--limit", "1000"]));
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after, "the same runs come back from the snapshots");
    let inspect = json(&db, &["db", "inspect", "--json"]);
    assert_eq!(inspect["dangling_links"], 0);
    assert!(inspect["zombies"].as_array().unwrap().is_empty());
    let export = cli(&db, &["db", "export", db.parent().unwrap().join("export").to_str().unwrap()]);
    assert!(export.status.success(), "{}", stderr(&export));
    let exported = std::fs::read_dir(db.parent().unwrap().join("export")).unwrap().count();
    assert_eq!(exported, 6, "one Parquet file per provenance table");
    assert!(cli(&db, &["db", "compact"]).status.success());
    assert_eq!(ids(&json(&db, &["runs", "--json", "--limit", "1000"])).len(), after.len(), "compact loses nothing");
    let completions = cli(&db, &["completions", "bash"]);
    assert!(String::from_utf8_lossy(&completions.stdout).contains("consist"));
}

#[test]
fn validate_checks_runs_still_pending_in_snapshots() {
    let ws = Workspace::new();
    let tracker = consist::Tracker::builder(ws.run_dir()).db_path(ws.db()).flush_every(1000).open().unwrap();
    let made = tracker
        .step("writer")
        .code_version("1")
        .outputs(["numbers"])
        .run(|_| Ok(consist::Value(vec![1, 2, 3])))
        .unwrap();
    assert!(tracker.catalog().pending_count() > 0, "the run has not reached the database");
    assert!(cli(&ws.db(), &["validate"]).status.success());
    std::fs::write(&made.output("numbers").unwrap().path, b"tampered").unwrap();
    let out = cli(&ws.db(), &["validate", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let problems: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((problems[0]["key"].as_str(), problems[0]["problem"].as_str()), (Some("numbers"), Some("modified")));
}

#[test]
fn runs_filters_hits_sorts_and_pages() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    for value in [1, 2, 3, 1, 2] {
        crate::support::square(&tracker, value, || {});
    }
    tracker.flush().unwrap();
    let listed = |args: &[&str]| ids(&json(&ws.db(), &[&["runs", "--json"], args].concat()));
    let newest_first = listed(&[]);
    assert_eq!(newest_first.len(), 5);
    assert_eq!(listed(&["--hit", "yes"]), newest_first[..2], "the two repeats hit");
    assert_eq!(listed(&["--hit", "no"]), newest_first[2..]);
    let oldest_first: Vec<String> = newest_first.iter().rev().cloned().collect();
    assert_eq!(listed(&["--sort", "created", "--asc"]), oldest_first);
    assert_eq!(listed(&["--offset", "3", "--limit", "10"]), newest_first[3..], "a later page");
    assert_eq!(listed(&["--offset", "1", "--limit", "2", "--asc"]), oldest_first[1..3]);
    let out = cli(&ws.db(), &["runs", "--hit", "maybe"]);
    assert_eq!(out.status.code(), Some(2), "a bad value is a usage error: {}", stderr(&out));
}

#[test]
fn db_sync_writes_a_queue_longer_than_one_transaction_whole() {
    let ws = Workspace::new();
    let square = |tracker: &consist::Tracker| {
        tracker.step("square").code_version("1").outputs(["squared"]).run(|_| Ok(consist::Value(25))).unwrap()
    };
    square(&ws.tracker());
    // Ten processes' worth of deferred hits, each less than a full batch (a full one is written
    // at once): 2,100 runs wait, more than one sync transaction holds.
    for _ in 0..10 {
        let deferring = consist::Tracker::builder(ws.run_dir()).db_path(ws.db()).defer_hit_writes(true).open().unwrap();
        for _ in 0..210 {
            assert!(square(&deferring).cache_hit());
        }
    }
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 1, "the hits wait in the pending queue");
    let out = cli(&ws.db(), &["db", "sync"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("2100 pending run(s) written"), "{out:?}");
    assert_eq!(
        ws.scalar::<i64>("SELECT count(*) FROM run"),
        2_101,
        "written in more than one transaction, all of them"
    );
    let again = cli(&ws.db(), &["db", "sync"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 pending"), "{again:?}");
}

#[test]
fn db_sync_writes_waiting_hits_for_other_programs_and_inspect_names_it() {
    let ws = Workspace::new();
    let square = |tracker: &consist::Tracker| {
        tracker.step("square").code_version("1").outputs(["squared"]).run(|_| Ok(consist::Value(25))).unwrap()
    };
    square(&ws.tracker());
    let deferring = consist::Tracker::builder(ws.run_dir()).db_path(ws.db()).defer_hit_writes(true).open().unwrap();
    assert!(square(&deferring).cache_hit());
    drop(deferring);
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 1, "the hit waits in the pending queue");
    let inspect = cli(&ws.db(), &["db", "inspect"]);
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        text.contains(
            "pending runs     1 (written with the next tracker that writes the database, or by `consist db sync`)"
        ),
        "{text}"
    );
    let query = cli(&ws.db(), &["query", "--json", "SELECT count(*) AS n FROM run"]);
    let answer: Json = serde_json::from_slice(&query.stdout).unwrap();
    assert_eq!(answer["rows"][0][0], 1, "SQL reads the database alone: {answer}");
    assert!(stderr(&query).contains("1 run(s) still pending"), "{}", stderr(&query));

    let out = cli(&ws.db(), &["db", "sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 pending run(s) written"), "{out:?}");
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 2, "another program now reads the hit");
    let again = cli(&ws.db(), &["db", "sync"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains(": 0 pending run(s) written"), "{again:?}");
}
