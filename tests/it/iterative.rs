//! Iterative scenarios: mid-chain config changes, optional inputs, traces, facets, hydration,
//! miss explanations and artifact queries.

use std::collections::BTreeMap;

use consist::{ArtifactQuery, Hydration, MissExplanation, RunQuery, Scenario, Tracker, Value};
use serde_json::json;

use crate::support::Workspace;

/// Which (step, iteration) bodies executed.
type Log = std::cell::RefCell<Vec<(String, i32)>>;

/// A three-step chain per iteration: `a` reads the previous `c` (absent in iteration 0),
/// `b` reads `a`, `c` reads `b`. `b_rate` applies from iteration `change_from` on.
fn chain(tracker: &Tracker, iterations: i32, b_rate: i64, change_from: i32, log: &Log) -> Scenario {
    let scenario = tracker.scenario("chain").tag("test").start().unwrap();
    for i in 0..iterations {
        let a = scenario.step("a").code_version("1").iteration(i).optional_input_key("c", "c").outputs(["a"]);
        a.run(|ctx| {
            log.borrow_mut().push(("a".into(), i));
            let base = match ctx.input("c") {
                Ok(_) => ctx.load::<Value<i64>>("c")?.0,
                Err(_) => 1,
            };
            Ok(Value(base + 1))
        })
        .unwrap();
        let rate = if i >= change_from { b_rate } else { 2 };
        scenario
            .step("b")
            .code_version("1")
            .config(&json!({"rate": rate}))
            .input_key("a", "a")
            .iteration(i)
            .outputs(["b"])
            .run(|ctx| {
                log.borrow_mut().push(("b".into(), i));
                Ok(Value(ctx.load::<Value<i64>>("a")?.0 * rate))
            })
            .unwrap();
        scenario
            .step("c")
            .code_version("1")
            .input_key("b", "b")
            .iteration(i)
            .outputs(["c"])
            .run(|ctx| {
                log.borrow_mut().push(("c".into(), i));
                Ok(Value(ctx.load::<Value<i64>>("b")?.0 % 1000))
            })
            .unwrap();
    }
    scenario
}

#[test]
fn a_mid_chain_config_change_reexecutes_that_step_and_downstream_only() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let log = Log::default();
    chain(&tracker, 4, 2, 0, &log).finish().unwrap();
    assert_eq!(log.borrow().len(), 12, "cold: every step of every iteration executes");

    log.borrow_mut().clear();
    chain(&tracker, 4, 3, 2, &log).finish().unwrap();
    let executed = log.borrow().clone();
    // Iterations 0-1 are unchanged; from 2 on `b` changed, so `b` and `c` run, and `a` of
    // iteration 3 runs because its input (`c` of iteration 2) changed. `a` of iteration 2 is a hit.
    let expected: Vec<(String, i32)> =
        [("b", 2), ("c", 2), ("a", 3), ("b", 3), ("c", 3)].iter().map(|(s, i)| ((*s).to_owned(), *i)).collect();
    assert_eq!(executed, expected);
}

#[test]
fn an_optional_input_is_absent_in_iteration_zero_and_present_later() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let log = Log::default();
    let scenario = chain(&tracker, 2, 2, 0, &log);
    let id = scenario.id().to_owned();
    scenario.finish().unwrap();
    let runs = tracker.find_runs(&RunQuery::default().parent(&id).model("a")).unwrap();
    let inputs_of = |iteration: i32| {
        let run = runs.iter().find(|r| r.iteration == Some(iteration)).unwrap();
        tracker.artifacts_for_run(&run.id).unwrap().inputs.keys().cloned().collect::<Vec<_>>()
    };
    assert!(inputs_of(0).is_empty());
    assert_eq!(inputs_of(1), ["c"]);
}

fn logsums(tracker: &Tracker, beta: f64, executed: &mut u32) -> consist::Result<consist::RunResult<()>> {
    tracker.step("logsums").code_version("1").config(&json!({"beta": beta})).outputs(["logsums"]).trace(|t| {
        if !t.is_cached() {
            *executed += 1;
            let mut df = polars::df!("logsum" => [beta, 2.0 * beta])?;
            t.log_frame("logsums", &mut df)?;
        } else {
            assert!(t.cached_output("logsums").is_ok());
        }
        Ok(())
    })
}

#[test]
fn a_trace_always_runs_and_knows_whether_it_is_cached() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let mut executed = 0;
    let first = logsums(&tracker, 0.5, &mut executed).unwrap();
    let second = logsums(&tracker, 0.5, &mut executed).unwrap();
    assert_eq!(executed, 1);
    assert!(!first.cache_hit() && second.cache_hit());
    assert_eq!(first.output("logsums").unwrap().id, second.output("logsums").unwrap().id);
    let df: polars::prelude::DataFrame = tracker.load(second.output("logsums").unwrap()).unwrap();
    assert_eq!(df.height(), 2);
}

#[test]
fn a_trace_that_logs_on_a_hit_or_not_at_all_is_an_error() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let mut executed = 0;
    logsums(&tracker, 0.5, &mut executed).unwrap();
    let careless =
        tracker.step("logsums").code_version("1").config(&json!({"beta": 0.5})).outputs(["logsums"]).trace(|t| {
            let mut df = polars::df!("logsum" => [1.0])?;
            t.log_frame("logsums", &mut df)?;
            Ok(())
        });
    let err = careless.unwrap_err().to_string();
    assert!(err.contains("is_cached"), "{err}");
    let silent =
        tracker.step("logsums").code_version("1").config(&json!({"beta": 9.0})).outputs(["logsums"]).trace(|_| Ok(()));
    let err = silent.unwrap_err().to_string();
    assert!(err.contains("declared output `logsums` but did not produce it"), "{err}");
}

fn faceted(tracker: &Tracker, n: i64, mode: &str) {
    tracker
        .step("faceted")
        .code_version("1")
        .config(&json!({"n": n, "mode": {"name": mode}, "noise": 0.5}))
        .facet_from(["n", "mode.name"])
        .tag(if n % 2 == 0 { "even" } else { "odd" })
        .outputs(["x"])
        .run(|_| Ok(Value(n)))
        .unwrap();
}

#[test]
fn facet_and_tag_filters_return_exactly_the_matching_runs() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    for (n, mode) in [(1, "car"), (2, "car"), (2, "walk"), (3, "walk")] {
        faceted(&tracker, n, mode);
    }
    let count = |q: RunQuery| {
        let mut found: Vec<i64> = tracker
            .find_runs(&q)
            .unwrap()
            .iter()
            .map(|r| tracker.artifacts_for_run(&r.id).unwrap().outputs["x"].clone())
            .map(|a| tracker.load::<Value<i64>>(&a).unwrap().0)
            .collect();
        found.sort();
        found
    };
    for synced in [false, true] {
        if synced {
            tracker.flush().unwrap();
        }
        assert_eq!(count(RunQuery::default().facet("n", 2)), [2, 2], "synced={synced}");
        assert_eq!(count(RunQuery::default().facet("n", 2).facet("mode.name", "walk")), [2], "synced={synced}");
        assert_eq!(count(RunQuery::default().facet("n", 2.0)), Vec::<i64>::new(), "2.0 is not 2");
        assert_eq!(count(RunQuery::default().tag("odd")), [1, 3], "synced={synced}");
        assert_eq!(count(RunQuery::default().tag("odd").facet("mode.name", "car")), [1], "synced={synced}");
    }
    let kv: i64 = ws.scalar("SELECT count(*) FROM run_config_kv WHERE \"key\" = 'mode.name' AND value_str = 'walk'");
    assert_eq!(kv, 2);
}

#[test]
fn facets_do_not_change_the_signature_and_unknown_fields_are_named() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let run = |facets: &[&str]| {
        tracker
            .step("f")
            .code_version("1")
            .config(&json!({"a": 1, "b": 2}))
            .facet_from(facets.to_vec())
            .outputs(["x"])
            .run(|_| Ok(Value(1)))
    };
    let first = run(&["a"]).unwrap();
    assert!(run(&["b"]).unwrap().cache_hit());
    let err = run(&["c"]).unwrap_err().to_string();
    assert!(err.contains("`c`") && err.contains("a, b"), "{err}");
    assert!(!first.cache_hit());
}

#[test]
fn misses_explain_what_changed_since_the_closest_run() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let run = |version: &str, beta: i64, gamma: i64| {
        tracker
            .step("m")
            .code_version(version)
            .config(&json!({"beta": beta, "gamma": gamma}))
            .outputs(["x"])
            .run(|_| Ok(Value(beta)))
            .unwrap()
    };
    let explain = |r: &consist::RunResult<Value<i64>>| MissExplanation::from_meta(&r.run.meta).unwrap();
    let first = run("1", 1, 1);
    assert_eq!(explain(&first).compared_with, None);
    let second = run("1", 2, 1);
    let e = explain(&second);
    assert_eq!(e.compared_with.as_deref(), Some(first.run.id.as_str()));
    assert_eq!(e.config_changed, ["beta"]);
    assert!(e.summary.contains("config changed: beta"), "{}", e.summary);
    let third = run("2", 2, 1);
    let e = explain(&third);
    assert!(e.code_changed && e.config_changed.is_empty(), "{e:?}");
    assert!(MissExplanation::from_meta(&run("2", 2, 1).run.meta).is_none(), "a hit has no miss explanation");
}

#[test]
fn outputs_all_copies_cached_outputs_into_the_new_run() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let run = |h: Hydration| {
        tracker.step("h").code_version("1").hydration(h).outputs(["x"]).run(|_| Ok(Value(7u32))).unwrap()
    };
    let first = run(Hydration::Metadata);
    let hit = run(Hydration::OutputsAll);
    assert!(hit.cache_hit());
    let copy = &hit.output("x").unwrap().path;
    assert!(copy.starts_with(ws.run_dir().join("outputs").join(&hit.run.id)), "{}", copy.display());
    assert_eq!(std::fs::read(copy).unwrap(), std::fs::read(&first.output("x").unwrap().path).unwrap());
    // The returned artifact names the copy by its URI too, relative to the run directory like
    // every output's, and the run records that URI (not an absolute path).
    let copied = hit.output("x").unwrap();
    let expected_uri = format!("./outputs/{}/{}", hit.run.id, copy.file_name().unwrap().to_str().unwrap());
    assert_eq!(copied.uri, expected_uri);
    assert_eq!(copied.id, first.output("x").unwrap().id, "the records still name the original artifact");
    assert_eq!(hit.run.meta["hydrated_outputs"]["x"], serde_json::json!(expected_uri));
    let plain = run(Hydration::Metadata);
    assert_eq!(plain.output("x").unwrap().path, first.output("x").unwrap().path);
}

#[test]
fn inputs_missing_copies_inputs_from_another_run_dir() {
    let ws = Workspace::new();
    let tracker_a = Tracker::builder(ws.path().join("a")).db_path(ws.db()).open().unwrap();
    let made = tracker_a.step("make").code_version("1").outputs(["x"]).run(|_| Ok(Value(5u32))).unwrap();
    let x = made.output("x").unwrap().clone();
    let tracker_b =
        Tracker::builder(ws.path().join("b")).db_path(ws.db()).hydration(Hydration::InputsMissing).open().unwrap();
    let mut seen = None;
    let used = tracker_b
        .step("use")
        .code_version("1")
        .input("x", &x)
        .outputs(["y"])
        .run(|ctx| {
            seen = Some(ctx.input_path("x")?.to_path_buf());
            Ok(Value(ctx.load::<Value<u32>>("x")?.0 + 1))
        })
        .unwrap();
    let seen = seen.unwrap();
    assert!(seen.starts_with(ws.path().join("b")), "{}", seen.display());
    assert_eq!(used.value().unwrap().0, 6);

    std::fs::remove_file(&x.path).unwrap();
    std::fs::remove_file(&seen).unwrap();
    let err = tracker_b.step("use").code_version("2").input("x", &x).outputs(["y"]).run(|_| Ok(Value(0u32)));
    let err = err.unwrap_err().to_string();
    assert!(err.contains("re-run its producer"), "{err}");
}

#[test]
fn find_artifacts_answers_by_creator_consumer_and_key() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let make =
        tracker.step("make").code_version("1").outputs(["x", "y"]).run(|_| Ok((Value(1u8), Value(2u8)))).unwrap();
    let read = tracker
        .step("read")
        .code_version("1")
        .input("x", make.output("x").unwrap())
        .outputs(["z"])
        .run(|_| Ok(Value(3u8)))
        .unwrap();
    let keys = |q: ArtifactQuery| {
        let mut k: Vec<String> = tracker.find_artifacts(&q).unwrap().into_iter().map(|a| a.key).collect();
        k.sort();
        k
    };
    assert_eq!(keys(ArtifactQuery::created_by(&make.run.id)), ["x", "y"]);
    assert_eq!(keys(ArtifactQuery::consumed_by(&read.run.id)), ["x"]);
    assert_eq!(keys(ArtifactQuery::created_by(&read.run.id)), ["z"]);
    assert_eq!(keys(ArtifactQuery::default().key("y")), ["y"]);
    assert!(keys(ArtifactQuery::created_by("nope")).is_empty());
    let by_key: BTreeMap<String, String> =
        tracker.artifacts_for_run(&read.run.id).unwrap().inputs.into_iter().map(|(k, a)| (k, a.id)).collect();
    assert_eq!(by_key["x"], make.output("x").unwrap().id);
}
