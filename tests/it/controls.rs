//! Cache controls that widen a hit on purpose (runtime values, ignored config keys): recorded in
//! the run, shown by `show`, `diff` and `explain`, and never wider than asked.

use consist::{Tracker, Value};
use serde_json::json;

use crate::support::{Counter, Workspace, cli};

/// Not `Serialize`: recorded by its type's name.
struct Pool;

#[consist::step(outputs = ["total"])]
fn total(values: Vec<i64>, #[consist(runtime)] threads: usize, #[consist(runtime)] pool: &Pool) -> i64 {
    let _ = (threads, pool);
    values.iter().sum()
}

#[test]
fn runtime_parameters_are_recorded_outside_the_signature_and_shown() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let first = tracker.run(total::step(vec![1, 2, 3], 8, &Pool)).unwrap();
    let second = tracker.run(total::step(vec![1, 2, 3], 16, &Pool)).unwrap();
    assert!(!first.run.is_cache_hit() && second.run.is_cache_hit(), "threads is not in the signature");
    assert_eq!(*second.value().unwrap(), 6);
    assert_eq!(first.run.meta["runtime"]["threads"], 8);
    assert_eq!(second.run.meta["runtime"]["threads"], 16, "the hit records its own value");
    assert!(first.run.meta["runtime"]["pool"].as_str().unwrap().ends_with("Pool>"), "{:?}", first.run.meta);
    assert!(tracker.run(total::step(vec![1, 2, 4], 16, &Pool)).unwrap().run.meta.contains_key("cache_miss"));
    tracker.flush().unwrap();

    let catalog = tracker.catalog();
    let explained = catalog.explain_run(&second.run.id).unwrap();
    let diff = explained.diff.expect("a hit is compared with the run it reused");
    assert_eq!(diff.run_a, first.run.id);
    assert_eq!(diff.runtime.changed["threads"], [json!(8), json!(16)]);
    assert!(diff.config.is_empty() && diff.same_signature);

    let text = |args: &[&str]| String::from_utf8(cli(&ws.db(), args).stdout).unwrap();
    let shown = text(&["show", &second.run.id]);
    assert!(
        shown.contains("runtime (recorded, not in the signature):\n") && shown.contains("  threads = 16"),
        "{shown}"
    );
    let explain = text(&["explain", &second.run.id]);
    assert!(explain.contains("was a cache hit") && explain.contains("~ threads: 8 -> 16"), "{explain}");
    let diff = text(&["diff", &first.run.id, &second.run.id]);
    assert!(diff.contains("runtime (recorded, not in the signature):\n  ~ threads: 8 -> 16"), "{diff}");
}

fn solve(
    tracker: &Tracker,
    config: &serde_json::Value,
    ignore: &[&str],
    ran: &Counter,
) -> consist::Result<consist::Run> {
    let name = if ignore.is_empty() { "strict" } else { "lenient" };
    tracker
        .step(name)
        .code_version("1")
        .config(config)
        .ignore_config_keys(ignore.iter().copied())
        .runtime("log_level", "info")
        .outputs(["x"])
        .run(|_| {
            ran.hit();
            Ok(Value(config["alpha"].as_i64().unwrap_or(0)))
        })
        .map(|r| r.run)
}

#[test]
fn an_ignored_config_key_widens_only_the_step_that_ignores_it() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let ran = Counter::default();
    let config = |alpha: i64, threads: i64| json!({ "alpha": alpha, "solver": { "threads": threads, "tol": 1e-6 } });
    let lenient = |c: &serde_json::Value| solve(&tracker, c, &["solver.threads"], &ran).unwrap();
    let strict = |c: &serde_json::Value| solve(&tracker, c, &[], &ran).unwrap();

    let (a, b) = (lenient(&config(1, 8)), strict(&config(1, 8)));
    assert_eq!(ran.get(), 2);
    assert_eq!(a.meta["runtime"], json!({ "log_level": "info", "solver.threads": 8 }));
    let (a2, b2) = (lenient(&config(1, 16)), strict(&config(1, 16)));
    assert!(a2.is_cache_hit(), "the step that ignores solver.threads hits");
    assert!(!b2.is_cache_hit(), "a step that does not ignore it re-executes");
    assert_eq!(a2.meta["runtime"]["solver.threads"], 16);
    assert_eq!(a2.signature, a.signature);
    assert_ne!(b2.signature, b.signature);
    assert!(!lenient(&config(2, 16)).is_cache_hit(), "the other keys still count");
    assert!(!lenient(&json!({ "alpha": 1, "solver": { "threads": 8, "tol": 1e-7 } })).is_cache_hit(), "siblings too");
    assert_eq!(ran.get(), 5);

    // The signed config is what is stored: its hash still checks, and the key is not in it.
    tracker.flush().unwrap();
    let record = tracker.catalog().run_record(&a.id).unwrap();
    assert_eq!(record.config, json!({ "alpha": 1, "solver": { "tol": 1e-6 } }));

    let typo = solve(&tracker, &config(1, 8), &["solver.thread"], &ran).unwrap_err().to_string();
    assert!(
        typo.contains("ignore_config_keys names `solver.thread`") && typo.contains("did you mean `solver.threads`?"),
        "{typo}"
    );
    assert_eq!(ran.get(), 5, "nothing runs on a bad key");
}
