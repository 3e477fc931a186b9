//! Scenarios: header runs, children, the coupler, and incremental extension of iterations.

use std::sync::atomic::{AtomicU32, Ordering};

use consist::{Error, RunQuery, RunStatus, Tracker, Value, step};

use crate::support::Workspace;

static ADVANCES: AtomicU32 = AtomicU32::new(0);

#[step(outputs = ["state"])]
fn seed(start: i64) -> i64 {
    start
}

#[step(outputs = ["state"])]
fn advance(#[consist(input)] state: &i64, rate: i64) -> i64 {
    ADVANCES.fetch_add(1, Ordering::SeqCst);
    state * rate + 1
}

/// A scenario of `iterations` steps, each consuming the previous iteration's `state`.
fn run_scenario(tracker: &Tracker, iterations: i32) -> (String, i64) {
    let scenario = tracker.scenario("growth").config(&serde_json::json!({"iterations": iterations})).start().unwrap();
    scenario.run(seed::step(1)).unwrap();
    let mut last = 0;
    for i in 0..iterations {
        let state = scenario.require("state").unwrap();
        last = scenario.run(advance::step(&state, 2).iteration(i)).unwrap().into_value().unwrap();
    }
    let header = scenario.finish().unwrap();
    assert_eq!(header.status, RunStatus::Completed);
    (header.id, last)
}

#[test]
fn extending_iterations_reexecutes_only_the_new_ones() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let before = ADVANCES.load(Ordering::SeqCst);
    let (_, three) = run_scenario(&tracker, 3);
    assert_eq!(ADVANCES.load(Ordering::SeqCst) - before, 3);
    let (extended, five) = run_scenario(&tracker, 5);
    assert_eq!(ADVANCES.load(Ordering::SeqCst) - before, 5, "iterations 0-2 are cache hits, only 3-4 execute");
    assert_eq!((three, five), (15, 63));

    let children = tracker.find_runs(&RunQuery { parent: Some(extended.clone()), ..Default::default() }).unwrap();
    assert_eq!(children.len(), 6, "seed + 5 iterations");
    let hits: Vec<Option<i32>> = {
        let mut v: Vec<Option<i32>> = children.iter().filter(|r| r.is_cache_hit()).map(|r| r.iteration).collect();
        v.sort();
        v
    };
    assert_eq!(hits, [None, Some(0), Some(1), Some(2)], "seed and iterations 0-2 hit");
    let third =
        tracker.find_runs(&RunQuery { parent: Some(extended), iteration: Some(3), ..Default::default() }).unwrap();
    assert_eq!(third.len(), 1);
    assert!(!third[0].is_cache_hit());
}

#[test]
fn coupler_errors_list_the_known_keys() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let scenario = tracker.scenario("s").start().unwrap();
    assert!(scenario.get("state").is_none(), "optional inputs are simply absent at first");
    scenario.run(seed::step(1)).unwrap();
    let err = scenario.require("skims").unwrap_err().to_string();
    assert_eq!(err, "no coupler key `skims`; known coupler keys: [state]");
    let typo = scenario.require("stat").unwrap_err().to_string();
    assert_eq!(typo, "no coupler key `stat`; known coupler keys: [state]; did you mean `state`?");
    assert_eq!(scenario.keys(), ["state"]);
    let by_key = scenario.step("reader").code_version("1").input_key("skims", "skims").run(|_| Ok(()));
    assert_eq!(by_key.unwrap_err().to_string(), err, "a step naming a missing key gets the same error");
    let outside = tracker.step("reader").code_version("1").input_key("skims", "skims").run(|_| Ok(()));
    assert!(outside.unwrap_err().to_string().contains("scenario.step"), "input_key needs a scenario");
    let header = scenario.finish().unwrap();
    assert_eq!(header.status, consist::RunStatus::Failed, "the failed declaration fails the scenario");
}

#[test]
fn a_failing_child_fails_the_scenario_and_names_the_step() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let scenario = tracker.scenario("s").start().unwrap();
    let err = scenario.step("solver").code_version("1").run(|_| -> consist::StepResult<()> { Err("diverged".into()) });
    assert!(matches!(err, Err(Error::StepFailed { .. })));
    let header = scenario.finish().unwrap();
    assert_eq!(header.status, RunStatus::Failed);
    assert_eq!(header.meta["failed_step"], "solver");
    let failed_child = header.meta["failed_run"].as_str().unwrap().to_owned();
    let child = tracker.find_runs(&RunQuery { parent: Some(header.id.clone()), ..Default::default() }).unwrap();
    assert_eq!(child[0].id, failed_child);
    assert_eq!(child[0].status, RunStatus::Failed);
}

#[test]
fn a_scenario_dropped_without_finish_is_failed() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let id = {
        let scenario = tracker.scenario("abandoned").start().unwrap();
        scenario.id().to_owned()
    };
    let runs = tracker.find_runs(&RunQuery { model: Some("abandoned".into()), ..Default::default() }).unwrap();
    assert_eq!((runs[0].id.as_str(), runs[0].status), (id.as_str(), RunStatus::Failed));
    assert!(runs[0].meta["error"].as_str().unwrap().contains("without finish()"));
}

#[test]
fn step_names_are_kept_as_given_and_run_ids_stay_file_safe() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let run = tracker.step("../x y").code_version("1").outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap();
    assert_eq!(run.run.model_name, "../x y");
    assert!(run.run.id.starts_with("_._x_y-"), "{}", run.run.id);
    assert!(run.output("v").unwrap().path.starts_with(ws.run_dir()), "outputs stay inside the run dir");
    let err = tracker.step("").code_version("1").run(|_| Ok(())).unwrap_err().to_string();
    assert!(err.starts_with("step name `` is not valid: it is empty"), "{err}");
}

#[test]
fn a_finished_scenario_is_listed_at_once_and_in_the_database_file_once_its_tracker_is_dropped() {
    // `finish` writes no database on the caller's path; the tracker's drop does.
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let (header, _) = run_scenario(&tracker, 2);
    let listed = tracker.find_runs(&RunQuery { id_prefix: Some(header.clone()), ..Default::default() }).unwrap();
    assert_eq!(listed.len(), 1, "durable and listed before any database write");
    drop(tracker);
    let in_file: i64 = ws.scalar(&format!("SELECT count(*) FROM run WHERE id = '{header}' AND status = 'completed'"));
    assert_eq!(in_file, 1);
    let children: i64 = ws.scalar(&format!("SELECT count(*) FROM run WHERE parent_run_id = '{header}'"));
    assert_eq!(children, 3, "seed and two iterations");
}
