//! Cache behaviour: hits, misses, invalidation through config, code, inputs and upstream runs.

use consist::{CacheMode, HashingStrategy, Tracker, Value};
use serde::Serialize;

use crate::support::{Counter, Workspace, clean_and_summarize};

#[derive(Serialize)]
struct Params {
    value: i64,
}

fn square(tracker: &Tracker, value: i64, runs: &Counter) -> consist::RunResult<Value<i64>> {
    tracker
        .step("square")
        .code_version("1")
        .config(&Params { value })
        .outputs(["squared"])
        .run(|_| {
            runs.hit();
            Ok(Value(value * value))
        })
        .expect("step runs")
}

#[test]
fn miss_then_hit_then_miss_after_config_change() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let runs = Counter::default();

    let first = square(&tracker, 5, &runs);
    assert!(!first.cache_hit());
    assert_eq!((runs.get(), first.value().unwrap().0), (1, 25));

    let second = square(&tracker, 5, &runs);
    assert!(second.cache_hit());
    assert_eq!((runs.get(), second.value().unwrap().0), (1, 25), "hit must not execute and must return the value");
    assert_eq!(second.run.cache_source(), Some(first.run.id.as_str()));
    assert_ne!(second.run.id, first.run.id, "a hit is a new run");
    assert_eq!(second.run.signature, first.run.signature);
    assert_eq!(
        second.output("squared").unwrap().id,
        first.output("squared").unwrap().id,
        "hit links the original artifact"
    );

    let third = square(&tracker, 6, &runs);
    assert!(!third.cache_hit());
    assert_eq!((runs.get(), third.value().unwrap().0), (2, 36));
}

#[test]
fn hits_survive_a_new_tracker() {
    let ws = Workspace::new();
    let runs = Counter::default();
    square(&ws.tracker(), 3, &runs);
    let again = square(&ws.tracker(), 3, &runs);
    assert!(again.cache_hit());
    assert_eq!(runs.get(), 1);
}

#[test]
fn code_version_change_is_a_miss() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let runs = Counter::default();
    for version in ["1", "1", "2"] {
        tracker
            .step("square")
            .code_version(version)
            .config(&Params { value: 2 })
            .outputs(["squared"])
            .run(|_| {
                runs.hit();
                Ok(Value(4))
            })
            .unwrap();
    }
    assert_eq!(runs.get(), 2);
}

#[test]
fn different_steps_never_share_a_signature() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let runs = Counter::default();
    for name in ["a", "b"] {
        let r = tracker
            .step(name)
            .code_version("1")
            .outputs(["x"])
            .run(|_| {
                runs.hit();
                Ok(Value(name.to_owned()))
            })
            .unwrap();
        assert_eq!(r.value().unwrap().0, name);
    }
    assert_eq!(runs.get(), 2);
}

fn read_first_line(tracker: &Tracker, path: &std::path::Path, runs: &Counter) -> (bool, String) {
    let r = tracker
        .step("reader")
        .code_version("1")
        .input("raw", path)
        .outputs(["line"])
        .run(|ctx| {
            runs.hit();
            let text = std::fs::read_to_string(ctx.input_path("raw")?)?;
            Ok(Value(text.lines().next().unwrap_or_default().to_owned()))
        })
        .unwrap();
    (r.cache_hit(), r.value().unwrap().0.clone())
}

#[test]
fn input_file_content_change_is_a_miss() {
    let ws = Workspace::new();
    let raw = ws.write("raw.csv", "a\n1\n");
    let runs = Counter::default();
    assert_eq!(read_first_line(&ws.tracker(), &raw, &runs), (false, "a".into()));
    assert_eq!(read_first_line(&ws.tracker(), &raw, &runs), (true, "a".into()));
    std::fs::write(&raw, "b\n1\n").unwrap();
    assert_eq!(read_first_line(&ws.tracker(), &raw, &runs), (false, "b".into()));
    assert_eq!(runs.get(), 2);
}

#[test]
fn fast_hashing_uses_size_and_mtime() {
    let ws = Workspace::new();
    let raw = ws.write("raw.csv", "a\n");
    let tracker = Tracker::builder(ws.run_dir()).db_path(ws.db()).hashing(HashingStrategy::Fast).open().unwrap();
    let runs = Counter::default();
    read_first_line(&tracker, &raw, &runs);
    assert!(read_first_line(&tracker, &raw, &runs).0);
    std::fs::write(&raw, "bb\n").unwrap(); // size changes
    assert!(!read_first_line(&tracker, &raw, &runs).0);
}

#[test]
fn upstream_change_invalidates_downstream_only() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let (up_runs, down_runs) = (Counter::default(), Counter::default());
    let pipeline = |threshold: i64| {
        let (up, down) = clean_and_summarize(&tracker, threshold, &up_runs, &down_runs);
        (up.cache_hit(), down.cache_hit(), down.value().unwrap().0)
    };
    assert_eq!(pipeline(15), (false, false, 31));
    assert_eq!(pipeline(15), (true, true, 31));
    assert_eq!(pipeline(25), (false, false, 51));
    assert_eq!((up_runs.get(), down_runs.get()), (2, 2));
    // going back to 15 finds both earlier runs again
    assert_eq!(pipeline(15), (true, true, 31));
}

#[test]
fn overwrite_always_executes_and_becomes_the_cache_entry() {
    let ws = Workspace::new();
    let runs = Counter::default();
    square(&ws.tracker(), 4, &runs);
    let over = square(&ws.tracker_with(CacheMode::Overwrite), 4, &runs);
    assert!(!over.cache_hit());
    assert_eq!(runs.get(), 2);
    let hit = square(&ws.tracker(), 4, &runs);
    assert_eq!(hit.run.cache_source(), Some(over.run.id.as_str()));
}

#[test]
fn readonly_uses_hits_and_records_nothing() {
    let ws = Workspace::new();
    let runs = Counter::default();
    square(&ws.tracker(), 4, &runs);
    drop(ws.tracker()); // flushes
    let count_runs = || ws.scalar::<i64>("SELECT count(*) FROM run");
    assert_eq!(count_runs(), 1);

    let ro = ws.tracker_with(CacheMode::Readonly);
    let hit = square(&ro, 4, &runs);
    assert!(hit.cache_hit());
    let miss = square(&ro, 9, &runs);
    assert!(!miss.cache_hit());
    assert_eq!(miss.value().unwrap().0, 81);
    drop(ro);
    assert_eq!(runs.get(), 2);
    assert_eq!(count_runs(), 1, "readonly must not record runs");
    // the readonly miss left no cache entry behind
    assert!(!square(&ws.tracker(), 9, &runs).cache_hit());
}

#[derive(Serialize)]
struct Pinned {
    value: i64,
    threshold: f64,
}

#[test]
fn a_fixed_step_keeps_its_signature_across_versions_of_consist() {
    // Computed independently in Python (blake3 over the length-prefixed parts, see signature.rs):
    // a change here invalidates every user's cache, so it must be deliberate.
    let ws = Workspace::new();
    let raw = ws.write("raw.csv", "zone,pop\n1,100\n");
    let run = ws
        .tracker()
        .step("square")
        .code_version("1")
        .config(&Pinned { value: 5, threshold: 15.0 })
        .input("raw", &raw)
        .run(|_| Ok(()))
        .unwrap();
    assert_eq!(run.run.code_hash, "9727ee6b6aef027d282a92b4b30408e833e95ea1988ee001aa42b21c7f8efbc3");
    assert_eq!(run.run.config_hash, "f784cb736962c91bc100fa8aa3d68382f0446fdff9a784556b63be14e8d5cc98");
    assert_eq!(run.run.input_hash, "b0ce1483563d5f82f556036a53a6920a3bfaffa7f1f44bd55a66661f569967b5");
    assert_eq!(run.run.signature, "7615658230e56a07ba4db678e3c54257fc7694842454313772c7246a27e67825");
}

#[consist::step(outputs = ["doubled"], version = "2")]
fn double_for_epochs(x: i64) -> i64 {
    x * 2
}

/// A cache epoch re-runs every step once and is named by the miss; epoch 0 is no epoch at all
/// (the signature of a tracker that never heard of epochs); `consist steps` shows it.
#[test]
fn a_cache_epoch_reruns_every_step_once_and_the_miss_names_it() {
    let ws = Workspace::new();
    let ran = Counter::default();
    let run = |epoch: u64| {
        let tracker = Tracker::builder(ws.run_dir()).db_path(ws.db()).cache_epoch(epoch).open().unwrap();
        let closure = tracker
            .step("closure")
            .code_version("1")
            .outputs(["v"])
            .run(|_| {
                ran.hit();
                Ok(Value(1u8))
            })
            .unwrap();
        let stepped = tracker.run(double_for_epochs::step(21)).unwrap();
        assert_eq!(*stepped.value().unwrap(), 42);
        tracker.flush().unwrap();
        let report = consist::admin::step_report(tracker.catalog()).unwrap();
        let status = report.into_iter().find(|s| s.name == "double_for_epochs").unwrap();
        (closure.run, stepped.run, status)
    };
    let (plain, plain_step, _) = run(0);
    assert!(!plain.meta.contains_key("cache_epoch") && !plain.meta.contains_key("step_code_hash"));
    assert_eq!(plain_step.code_hash, double_for_epochs::code_hash(), "epoch 0 changes no signature");
    assert!(run(0).0.is_cache_hit());
    let (bumped, bumped_step, status) = run(1);
    assert!(!bumped.is_cache_hit() && !bumped_step.is_cache_hit(), "epoch 1 re-runs every step");
    assert_eq!(ran.get(), 2);
    for miss in [&bumped, &bumped_step] {
        let why = consist::MissExplanation::from_meta(&miss.meta).unwrap();
        assert_eq!(why.code_items_changed, ["cache epoch"], "{why:?}");
    }
    assert_eq!(bumped.meta["cache_epoch"], 1);
    assert_eq!((status.version, status.epoch, status.changed), ("2", Some(1), Some(false)), "{status:?}");
    assert!(run(1).0.is_cache_hit(), "then hits");
    assert!(!run(2).0.is_cache_hit());
    assert_eq!(ran.get(), 3);
}

/// `Some(None)` of an `Option<Option<T>>` config is not `None` (serde writes both as `null`):
/// it executes instead of hitting `None`'s run.
#[test]
fn a_nested_option_config_tells_some_none_from_none() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let ran = Counter::default();
    let run = |bound: Option<Option<f64>>| {
        let result = tracker.step("bounded").code_version("1").config(&bound).outputs(["v"]).run(|_| {
            ran.hit();
            Ok(Value(bound.map_or(-1.0, |b| b.unwrap_or(0.0))))
        });
        result.unwrap().value().unwrap().0
    };
    assert_eq!([run(None), run(Some(None)), run(Some(Some(2.0))), run(Some(None))], [-1.0, 0.0, 2.0, 0.0]);
    assert_eq!(ran.get(), 3, "three configs, and the fourth call a hit");
}

/// A step run again under the same signature that writes other bytes (`Overwrite` here; a re-run
/// after its outputs were lost is the same) leaves its consumer's signature unchanged, since an
/// upstream output counts by its producer's signature: the consumer must not hit the run made
/// from the old bytes. It executes, naming the input.
#[test]
fn a_consumer_of_other_bytes_under_the_same_producer_signature_executes_again() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let external = ws.write("ext.txt", "1");
    let (sources, doubles) = (Counter::default(), Counter::default());
    let source = |mode: CacheMode| {
        let step = tracker.step("src").code_version("1").cache_mode(mode).outputs(["x"]);
        step.run(|_| {
            sources.hit();
            Ok(Value(std::fs::read_to_string(&external)?.trim().parse::<i64>()?))
        })
        .unwrap()
    };
    let double = |x: &consist::Artifact| {
        let step = tracker.step("double").code_version("1").input("x", x).outputs(["y"]);
        step.run(|ctx| {
            doubles.hit();
            Ok(Value(ctx.load::<Value<i64>>("x")?.0 * 2))
        })
        .unwrap()
    };
    let first = source(CacheMode::Reuse);
    assert_eq!(double(first.output("x").unwrap()).value().unwrap().0, 2);
    std::fs::write(&external, "5").unwrap();
    let again = source(CacheMode::Overwrite);
    assert_eq!(again.run.signature, first.run.signature);
    let doubled = double(again.output("x").unwrap());
    assert_eq!((doubled.value().unwrap().0, doubled.cache_hit()), (10, false), "not the run made from 1");
    let why = consist::MissExplanation::from_meta(&doubled.run.meta).unwrap().summary;
    assert!(why.contains("input `x` holds other bytes"), "{why}");
    // Both are cache sources now, each for its own bytes.
    let latest = source(CacheMode::Reuse);
    assert!(latest.cache_hit() && latest.value().unwrap().0 == 5);
    assert!(double(latest.output("x").unwrap()).cache_hit());
    assert_eq!((sources.get(), doubles.get()), (2, 2));
}
