//! `#[step]`: code identity from tokens, helpers, typed calls, artifact passing, invalidation.

use std::sync::atomic::{AtomicU32, Ordering};

use consist::{StepContext, StepResult, Value, helper, step};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::Workspace;

#[allow(dead_code)] // only their code hashes are inspected
mod v1 {
    use consist::step;
    #[step(outputs = ["y"])]
    pub fn f(a: i64) -> i64 {
        a + 1
    }
}

#[allow(dead_code)] // only their code hashes are inspected
mod v1_reformatted {
    use consist::step;
    /// Now with documentation, comments and another layout.
    #[step(outputs = ["y"])]
    pub fn f(a: i64, // the input
    ) -> i64 {
        /* add one */
        a + 1
    }
}

#[allow(dead_code)] // only their code hashes are inspected
mod v2 {
    use consist::step;
    #[step(outputs = ["y"])]
    pub fn f(a: i64) -> i64 {
        a + 2
    }
}

#[test]
fn code_hash_ignores_formatting_and_docs_but_not_edits() {
    assert_eq!(v1::f::TOKEN_HASH, v1_reformatted::f::TOKEN_HASH);
    assert_ne!(v1::f::TOKEN_HASH, v2::f::TOKEN_HASH);
    // the functions stay ordinary functions
    assert_eq!((v1::f(1), v2::f(1)), (2, 3));
}

#[allow(dead_code)] // only their code hashes are inspected
mod helpers_a {
    use consist::{helper, step};
    #[helper]
    pub fn scale(x: i64) -> i64 {
        x * 2
    }
    #[step(outputs = ["y"], uses = [scale])]
    pub fn g(a: i64) -> i64 {
        scale(a)
    }
}

#[allow(dead_code)] // only their code hashes are inspected
mod helpers_b {
    use consist::{helper, step};
    #[helper]
    pub fn scale(x: i64) -> i64 {
        x * 3
    }
    #[step(outputs = ["y"], uses = [scale])]
    pub fn g(a: i64) -> i64 {
        scale(a)
    }
}

#[test]
fn editing_a_declared_helper_changes_the_step_identity() {
    assert_eq!(helpers_a::g::TOKEN_HASH, helpers_b::g::TOKEN_HASH, "the step's own tokens are identical");
    assert_ne!(helpers_a::g::code_hash(), helpers_b::g::code_hash());
    assert_ne!(helpers_a::g::code_hash(), helpers_a::g::TOKEN_HASH, "helpers are folded in");
}

#[allow(dead_code)] // only their code hashes are inspected
mod versioned {
    use consist::step;
    #[step(outputs = ["y"], version = "2", name = "renamed")]
    pub fn f(a: i64) -> i64 {
        a + 1
    }
}

#[test]
fn version_bumps_identity_and_name_overrides_the_model() {
    assert_ne!(versioned::f::TOKEN_HASH, v1::f::TOKEN_HASH);
    assert_eq!(versioned::f::NAME, "renamed");
    assert_eq!(v1::f::NAME, "f");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Summary {
    mean: f64,
    count: usize,
}

static CTX_RUNS: AtomicU32 = AtomicU32::new(0);

/// A step that logs by hand through its context and takes a runtime-only argument.
#[step(outputs = ["zones", "count"])]
fn make_zones(n: i64, #[consist(runtime)] threads: usize, ctx: &mut StepContext) -> StepResult<()> {
    CTX_RUNS.fetch_add(1, Ordering::SeqCst);
    assert!(threads > 0);
    let ids: Vec<i64> = (1..=n).collect();
    ctx.log_frame("zones", &mut df!("zone" => ids)?)?;
    ctx.log_value("count", &n)?;
    Ok(())
}

#[test]
fn runtime_arguments_are_not_hashed_and_context_steps_log_outputs() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let before = CTX_RUNS.load(Ordering::SeqCst);
    let a = tracker.run(make_zones::step(3, 1)).unwrap();
    let b = tracker.run(make_zones::step(3, 8)).unwrap();
    assert!(!a.cache_hit() && b.cache_hit(), "changing a runtime-only argument is not a miss");
    assert!(!tracker.run(make_zones::step(4, 1)).unwrap().cache_hit());
    assert_eq!(CTX_RUNS.load(Ordering::SeqCst) - before, 2);
    assert_eq!(b.outputs.keys().collect::<Vec<_>>(), ["count", "zones"]);
    assert_eq!(a.run.config_hash, b.run.config_hash);
}

#[step(outputs = ["table", "stats"])]
fn split(n: u32) -> (DataFrame, Summary) {
    let df = df!("v" => (0..n).collect::<Vec<u32>>()).expect("frame");
    (df, Summary { mean: f64::from(n), count: n as usize })
}

#[test]
fn tuples_map_onto_keys_and_come_back_typed() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let first = tracker.run(split::step(4)).unwrap();
    let hit = tracker.run(split::step(4)).unwrap();
    assert!(hit.cache_hit());
    let (table, stats) = hit.into_value().unwrap();
    assert_eq!(table.height(), 4);
    assert_eq!(stats, Summary { mean: 4.0, count: 4 });
    assert_eq!(first.output("stats").unwrap().driver, consist::Driver::Bincode);
    assert_eq!(first.output("table").unwrap().driver, consist::Driver::Parquet);
}

#[test]
fn extra_config_is_part_of_the_signature() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let a = tracker.run(v1::f::step(1).extra_config(&"scenario A")).unwrap();
    let b = tracker.run(v1::f::step(1).extra_config(&"scenario A")).unwrap();
    let c = tracker.run(v1::f::step(1).extra_config(&"scenario B")).unwrap();
    assert!(!a.cache_hit() && b.cache_hit() && !c.cache_hit());
    assert_eq!(*a.value().unwrap(), 2);
}

#[test]
fn steps_register_themselves() {
    let steps = consist::admin::registered_steps();
    let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
    for expected in ["split", "total", "make_zones", "renamed"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let info = steps.iter().find(|s| s.name == "split").unwrap();
    assert_eq!(info.outputs, ["table", "stats"]);
    assert_eq!((info.code_hash)(), split::code_hash());
    assert!(info.file.ends_with("steps.rs"));
}

/// User code that shadows names the generated code might use.
mod shadowing {
    #![allow(dead_code, non_camel_case_types)]
    use consist::step;

    type Result<T> = std::result::Result<T, std::string::String>;
    struct Path;
    struct Value;
    struct Input;
    struct Box;
    struct String;
    type Option = ();
    fn ctx() {}
    fn call() {}
    mod consist_private {}

    #[step(outputs = ["n"])]
    pub fn shadowed(x: i64) -> Result<i64> {
        ctx();
        Ok(x * 3)
    }

    pub fn use_it(tracker: &consist::Tracker) -> i64 {
        tracker.run(shadowed::step(5)).expect("runs").into_value().unwrap()
    }
}

#[test]
fn generated_code_survives_shadowed_names() {
    let ws = Workspace::new();
    assert_eq!(shadowing::use_it(&ws.tracker()), 15);
}

#[allow(dead_code)]
fn helper_is_reexported() -> i64 {
    #[helper]
    fn local_helper() -> i64 {
        1
    }
    local_helper()
}

// Steps are defined at module level: the generated module calls `super::<fn>`.
#[step(outputs = ["total"])]
fn total(#[consist(input)] numbers: &[i64]) -> i64 {
    numbers.iter().sum()
}

#[test]
fn value_inputs_are_decoded_by_type() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let src =
        tracker.step("numbers").code_version("1").outputs(["numbers"]).run(|_| Ok(Value(vec![1i64, 2, 3]))).unwrap();
    let r = tracker.run(total::step(src.output("numbers").unwrap())).unwrap();
    assert_eq!(*r.value().unwrap(), 6);
}

#[test]
fn step_report_tells_whether_code_changed_since_the_last_run() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let report = |t: &consist::Tracker| {
        consist::admin::step_report(t.catalog()).unwrap().into_iter().find(|s| s.name == "f").unwrap()
    };
    assert_eq!(report(&tracker).changed, None, "never ran");
    // v2::f has the same model name but different code: against its run, v1 is "changed"
    let other = tracker.run(v2::f::step(10)).unwrap();
    let now = report(&tracker);
    assert_eq!((now.changed, now.last_run.as_deref()), (Some(true), Some(other.run.id.as_str())));
    let ran = tracker.run(v1::f::step(10)).unwrap();
    let now = report(&tracker);
    assert_eq!((now.changed, now.last_run.as_deref()), (Some(false), Some(ran.run.id.as_str())));
    // A newer run with other code does not hide the run whose code v1 still has (its hits).
    tracker.run(v2::f::step(11)).unwrap();
    let now = report(&tracker);
    assert_eq!((now.changed, now.last_run.as_deref()), (Some(false), Some(ran.run.id.as_str())));
}

/// Several outputs as a struct: one key per field, in order.
#[derive(consist::Outputs)]
struct Split {
    table: DataFrame,
    stats: Value<Summary>,
}

static STRUCT_RUNS: AtomicU32 = AtomicU32::new(0);

#[step(outputs = ["table", "stats"])]
fn split_struct(n: u32) -> StepResult<Split> {
    STRUCT_RUNS.fetch_add(1, Ordering::SeqCst);
    let table = df!("v" => (0..n).collect::<Vec<u32>>())?;
    Ok(Split { table, stats: Value(Summary { mean: 1.5, count: n as usize }) })
}

#[test]
fn struct_outputs_map_fields_to_keys() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let before = STRUCT_RUNS.load(Ordering::SeqCst);
    let first = tracker.run(split_struct::step(3)).unwrap();
    let hit = tracker.run(split_struct::step(3)).unwrap();
    assert!(hit.cache_hit());
    assert_eq!(STRUCT_RUNS.load(Ordering::SeqCst) - before, 1);
    assert_eq!(hit.value().unwrap().table.height(), 3);
    assert_eq!(hit.value().unwrap().stats.0, Summary { mean: 1.5, count: 3 });
    assert_eq!(first.output("table").unwrap().driver, consist::Driver::Parquet);
    assert_eq!(first.output("stats").unwrap().driver, consist::Driver::Bincode);
}
