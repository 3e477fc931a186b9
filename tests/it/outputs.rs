//! Output kinds: DataFrames as Parquet, files, typed values, tuples, hand-logged outputs.

use std::path::PathBuf;

use consist::{Driver, Value};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::support::{Counter, Workspace};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Summary {
    mean: f64,
    count: u32,
    modes: Vec<String>,
}

#[test]
fn typed_value_on_hit_equals_the_original() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let original = Summary { mean: 35.0, count: 4, modes: vec!["car".into(), "walk".into()] };
    let run = || {
        tracker.step("summarize").code_version("1").outputs(["summary"]).run(|_| Ok(Value(original.clone()))).unwrap()
    };
    let first = run();
    let second = run();
    assert!(second.cache_hit());
    assert_eq!(second.value().unwrap().0, original);
    let art = first.output("summary").unwrap();
    assert_eq!(art.driver, Driver::Bincode);
    assert_eq!(art.meta["codec"], "bincode");
    assert_eq!(art.meta["codec_version"], consist::testing::CODEC_VERSION);
}

#[test]
fn dataframe_output_is_parquet_and_comes_back_on_hit() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let runs = Counter::default();
    let run = || {
        tracker
            .step("clean")
            .code_version("1")
            .outputs(["cleaned"])
            .run(|_| {
                runs.hit();
                Ok(df!("id" => [2, 3, 4], "value" => [20.0, 30.0, 40.0])?)
            })
            .unwrap()
    };
    let first = run();
    let art = first.output("cleaned").unwrap();
    assert_eq!(art.driver, Driver::Parquet);
    assert!(art.uri.starts_with("./outputs/") && art.uri.ends_with("cleaned.parquet"), "{}", art.uri);
    assert_eq!(art.hash.as_deref(), Some(consist::hash_file(&art.path).unwrap().as_str()));
    assert_eq!(art.meta["rows"], 3);
    let second = run();
    assert!(second.cache_hit());
    assert_eq!(runs.get(), 1);
    assert!(second.value().unwrap().equals(first.value().unwrap()));
}

#[test]
fn a_hits_frame_is_read_when_its_value_is_read_not_before() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let run = || {
        tracker
            .step("clean")
            .code_version("1")
            .outputs(["cleaned"])
            .run(|_| Ok(df!("id" => [1, 2], "value" => [1.0, 2.0])?))
            .unwrap()
    };
    let first = run();
    let path = first.output("cleaned").unwrap().path.clone();
    let read = run();
    let unread = run();
    assert!(read.cache_hit() && unread.cache_hit());
    assert_eq!(read.value().unwrap().height(), 2, "read while the file is there");
    std::fs::remove_file(&path).unwrap();
    // The hit that was read keeps its frame; the one never read finds its file gone at the read:
    // an error naming the output, not a panic.
    assert_eq!(read.value().unwrap().height(), 2);
    assert_eq!(read.clone().into_value().unwrap().height(), 2);
    assert_eq!(*read.clone().map(|df| df.height()).unwrap().value().unwrap(), 2);
    assert!(unread.clone().map(|df| df.height()).is_err(), "map loads first");
    let err = unread.value().unwrap_err().to_string();
    assert!(err.contains("cleaned") && err.contains("no longer exists") && err.contains("run the step again"), "{err}");
    assert!(unread.discard_value().cache_hit());
    // The next call sees the output gone and executes again.
    let again = run();
    assert!(!again.cache_hit());
    assert_eq!(again.into_value().unwrap().height(), 2);
}

#[test]
fn a_frame_hit_whose_recorded_output_is_not_a_frame_is_a_miss_not_an_error_at_every_read() {
    // A closure step whose return type changed without a new code_version: the recorded output
    // is a value file. The hit's check reads the Parquet footer, fails, and the step executes.
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let step = || tracker.step("shape").code_version("1").outputs(["x"]);
    step().run(|_| Ok(Value(7i64))).unwrap();
    let frame = step().run(|_| Ok(df!("x" => [7i64])?)).unwrap();
    assert!(!frame.cache_hit(), "the value file is not taken for a frame");
    assert_eq!(frame.value().unwrap().height(), 1);
    let again = step().run(|_| Ok(df!("x" => [7i64])?)).unwrap();
    assert!(again.cache_hit() && again.value().unwrap().equals(frame.value().unwrap()));
}

#[test]
fn tuple_outputs_map_to_keys_in_order() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let run = || {
        tracker
            .step("split")
            .code_version("1")
            .outputs(["report", "total"])
            .run(|ctx| {
                let path = ctx.output_dir()?.join("report.txt");
                std::fs::write(&path, "all good")?;
                Ok((path, Value(42u64)))
            })
            .unwrap()
    };
    let first = run();
    let second = run();
    assert!(second.cache_hit());
    let (path, total): (PathBuf, Value<u64>) = second.into_value().unwrap();
    assert_eq!(std::fs::read_to_string(path).unwrap(), "all good");
    assert_eq!(total.0, 42);
    assert_eq!(first.output("report").unwrap().driver, Driver::File);
}

#[test]
fn hand_logged_outputs_are_recorded_and_returned_on_hit() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let run = || {
        tracker
            .step("logger")
            .code_version("1")
            .outputs(["zones", "count"])
            .run(|ctx| {
                ctx.log_frame("zones", &mut df!("zone" => [1, 2, 3])?)?;
                ctx.log_value("count", &3u32)?;
                Ok(())
            })
            .unwrap()
    };
    let first = run();
    let second = run();
    assert!(second.cache_hit());
    assert_eq!(second.outputs.keys().collect::<Vec<_>>(), ["count", "zones"]);
    let zones: DataFrame = tracker_load(&ws, second.output("zones").unwrap());
    assert_eq!(zones.height(), 3);
    assert_eq!(first.output("zones").unwrap().id, second.output("zones").unwrap().id);
}

fn tracker_load(ws: &Workspace, art: &consist::Artifact) -> DataFrame {
    ws.tracker().load::<DataFrame>(art).unwrap()
}

#[test]
fn deleted_cached_output_is_recomputed_not_a_broken_hit() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let runs = Counter::default();
    let run = || {
        tracker
            .step("value")
            .code_version("1")
            .outputs(["v"])
            .run(|_| {
                runs.hit();
                Ok(Value(7u8))
            })
            .unwrap()
    };
    let first = run();
    std::fs::remove_file(&first.output("v").unwrap().path).unwrap();
    let second = run();
    assert!(!second.cache_hit());
    assert_eq!((second.value().unwrap().0, runs.get()), (7, 2));
}

#[test]
fn csv_inputs_load_as_frames() {
    let ws = Workspace::new();
    let raw = ws.write("raw.csv", "id,value\n1,10\n2,20\n");
    let r = ws
        .tracker()
        .step("count")
        .code_version("1")
        .input("raw", &raw)
        .outputs(["n"])
        .run(|ctx| Ok(Value(ctx.load::<DataFrame>("raw")?.height())))
        .unwrap();
    assert_eq!(r.value().unwrap().0, 2);
}

/// A hand-logged output file and a returned one, for the missing-file tests.
fn log_report(
    tracker: &consist::Tracker,
    runs: &Counter,
    validation: consist::Validation,
) -> consist::RunResult<PathBuf> {
    tracker
        .step("report")
        .code_version("1")
        .outputs(["table"])
        .validation(validation)
        .run(|ctx| {
            runs.hit();
            let dir = ctx.output_dir()?;
            let plot = dir.join("plot.png");
            std::fs::write(&plot, b"png")?;
            ctx.log_file("plot", &plot)?;
            let table = dir.join("table.csv");
            std::fs::write(&table, "a\n1\n")?;
            Ok(table)
        })
        .unwrap()
}

#[test]
fn a_lazy_hit_whose_hand_logged_file_is_gone_executes_again() {
    for validation in [consist::Validation::Lazy, consist::Validation::Eager] {
        let ws = Workspace::new();
        let tracker = ws.tracker();
        let runs = Counter::default();
        let first = log_report(&tracker, &runs, validation);
        assert!(log_report(&tracker, &runs, validation).cache_hit());
        std::fs::remove_file(&first.outputs["plot"].path).unwrap();
        let again = log_report(&tracker, &runs, validation);
        assert!(!again.cache_hit(), "{validation:?}: a hit must not return a path that is gone");
        assert_eq!(runs.get(), 2);
        assert!(again.outputs["plot"].path.exists());
        let why = consist::MissExplanation::from_meta(&again.run.meta).unwrap();
        assert!(why.summary.contains("plot") && why.summary.contains("no longer exists"), "{}", why.summary);
        assert!(log_report(&tracker, &runs, validation).cache_hit(), "the new run is the cache entry");
    }
}

#[test]
fn a_hit_whose_hand_logged_file_was_modified_executes_again() {
    for validation in [consist::Validation::Lazy, consist::Validation::Eager] {
        let ws = Workspace::new();
        let tracker = ws.tracker();
        let runs = Counter::default();
        let first = log_report(&tracker, &runs, validation);
        std::fs::write(&first.outputs["plot"].path, b"tampered").unwrap();
        // Lazy: the file's stat changed, so it is hashed again; eager: always hashed.
        let again = log_report(&tracker, &runs, validation);
        assert!(!again.cache_hit(), "{validation:?}: a modified output is never served");
        let why = consist::MissExplanation::from_meta(&again.run.meta).unwrap();
        assert!(why.summary.contains("bytes changed"), "{}", why.summary);
        assert!(log_report(&tracker, &runs, validation).cache_hit());
        assert_eq!(runs.get(), 2);
    }
}

/// A value whose serde form depends on what it holds (`skip_serializing_if`) came back from a
/// hit as another value (`{None, 1, 300}` as `{Some(251), 44, 1}`): storing it is refused,
/// naming the type and the fix, so no hit can return it.
#[test]
fn a_value_that_would_come_back_from_a_hit_as_another_is_refused() {
    #[derive(Debug, Serialize, Deserialize)]
    struct Skippy {
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<u8>,
        a: u64,
        b: u64,
    }
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let ran = Counter::default();
    let run = |note: Option<u8>| {
        tracker.step("skippy").code_version("1").config(&note).outputs(["v"]).run(|_| {
            ran.hit();
            Ok(Value(Skippy { note, a: 1, b: 300 }))
        })
    };
    for _ in 0..2 {
        let err = format!("{:#}", run(None).unwrap_err());
        assert!(err.contains("Skippy") && err.contains("skip_serializing_if") && err.contains("`v`"), "{err}");
    }
    assert_eq!(ran.get(), 2, "nothing was cached: the second call ran again");
    let stored = run(Some(3)).unwrap();
    assert_eq!(run(Some(3)).unwrap().value().unwrap().0.b, stored.value().unwrap().0.b);
    assert_eq!(ran.get(), 3, "a value that reads back is stored and hit");
}
