//! Sweeps on all cores: `Tracker::map` and `Scenario::map` record exactly the runs a sequential
//! sweep does, through the tracker's one writer, and a sequential re-run is all hits.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use consist::{Artifact, Catalog, RunQuery, StepBuilder, Tracker, Value};

use crate::support::Workspace;

/// The shared preprocessing step: the numbers 1..=100.
fn preprocess(t: &Tracker, executed: &AtomicUsize) -> consist::Result<Artifact> {
    let r = t.step("preprocess").code_version("1").outputs(["numbers"]).run(|_| {
        executed.fetch_add(1, Ordering::Relaxed);
        Ok(Value((1..=100i64).collect::<Vec<_>>()))
    })?;
    r.output("numbers").cloned()
}

/// One value's chain: scale the numbers by `v`, then sum them (steps declared by `step`: a
/// tracker's or a scenario's).
fn chain<'a>(
    step: impl Fn(&str) -> StepBuilder<'a>,
    numbers: &Artifact,
    v: i64,
    executed: &AtomicUsize,
) -> consist::Result<i64> {
    let scaled =
        step("scale").code_version("1").config(&v).input("numbers", numbers).outputs(["scaled"]).run(|ctx| {
            executed.fetch_add(1, Ordering::Relaxed);
            let n = ctx.load::<Value<Vec<i64>>>("numbers")?.0;
            Ok(Value(n.iter().map(|x| x * v).collect::<Vec<_>>()))
        })?;
    let total =
        step("sum").code_version("1").input("scaled", scaled.output("scaled")?).outputs(["total"]).run(|ctx| {
            executed.fetch_add(1, Ordering::Relaxed);
            Ok(Value(ctx.load::<Value<Vec<i64>>>("scaled")?.0.iter().sum::<i64>()))
        })?;
    Ok(total.value().unwrap().0)
}

/// (model, signature, cache hit) of every stored run, counted.
fn stored_runs(ws: &Workspace) -> BTreeMap<(String, String, bool), usize> {
    let catalog = Catalog::duckdb(ws.db(), Duration::from_secs(10));
    let mut seen = BTreeMap::new();
    for run in catalog.store().find_runs(&RunQuery::default()).unwrap() {
        let hit = run.meta.get("cache_hit").and_then(|v| v.as_bool()).unwrap_or(false);
        *seen.entry((run.model_name.clone(), run.signature.clone(), hit)).or_insert(0) += 1;
    }
    seen
}

#[test]
fn a_parallel_sweep_records_exactly_the_runs_of_a_sequential_one() {
    let values: Vec<i64> = (1..=12).collect();
    let expected: Vec<i64> = values.iter().map(|v| v * 5050).collect();

    let parallel = Workspace::new();
    let executed = AtomicUsize::new(0);
    {
        let tracker = parallel.tracker();
        let numbers = preprocess(&tracker, &executed).unwrap();
        let totals = tracker.map(values.clone(), |t, v| chain(|n| t.step(n), &numbers, v, &executed)).unwrap();
        assert_eq!(totals, expected, "results come back in the order of the values");
    }
    assert_eq!(executed.load(Ordering::Relaxed), 1 + 2 * values.len());

    let sequential = Workspace::new();
    {
        let tracker = sequential.tracker();
        let numbers = preprocess(&tracker, &executed).unwrap();
        let totals: Vec<i64> =
            values.iter().map(|&v| chain(|n| tracker.step(n), &numbers, v, &executed).unwrap()).collect();
        assert_eq!(totals, expected);
    }
    let recorded = stored_runs(&parallel);
    assert_eq!(recorded.values().sum::<usize>(), 1 + 2 * values.len(), "every run stored exactly once");
    assert_eq!(recorded, stored_runs(&sequential), "the same runs, with the same signatures");

    // Sequentially over the parallel sweep's catalog: all hits, nothing executes.
    let before = executed.load(Ordering::Relaxed);
    let tracker = parallel.tracker();
    let numbers = preprocess(&tracker, &executed).unwrap();
    for &v in &values {
        chain(|n| tracker.step(n), &numbers, v, &executed).unwrap();
    }
    assert_eq!(executed.load(Ordering::Relaxed), before, "a sequential re-run of a parallel sweep is all hits");
}

#[test]
fn a_scenario_sweep_parents_every_run_and_reports_the_first_error() {
    let ws = Workspace::new();
    let executed = AtomicUsize::new(0);
    let tracker = ws.tracker();
    let scenario = tracker.scenario("sweep").start().unwrap();
    let numbers = preprocess(&tracker, &executed).unwrap();
    let totals = scenario.map(1..=6i64, |sc, v| chain(|n| sc.step(n), &numbers, v, &executed));
    assert_eq!(totals.unwrap(), (1..=6).map(|v| v * 5050).collect::<Vec<_>>());
    let failed = scenario.map([1i64, 2, 3], |_, v| if v == 2 { Err(format!("value {v} failed")) } else { Ok(v) });
    assert_eq!(failed.unwrap_err(), "value 2 failed");
    let header = scenario.finish().unwrap();
    drop(tracker);
    let children = stored_runs(&ws);
    assert!(children.keys().any(|(model, _, _)| model == "sweep"), "{children:?}");
    let parented = Catalog::duckdb(ws.db(), Duration::from_secs(10))
        .find_runs(&RunQuery { parent: Some(header.id.clone()), ..RunQuery::default() })
        .unwrap();
    assert_eq!(parented.len(), 12, "two steps per value, each a child of the scenario");
}
