//! Caches that survive a move: a project (run dir and catalog) moved whole, and data under a
//! mount that another machine holds elsewhere. Every hit and every load keeps working.

use std::path::Path;

use consist::polars::prelude::*;
use consist::{Tracker, Value};

use crate::support::Counter;

/// A two-step chain: a raw CSV input, a Parquet output, then a value computed from it.
fn chain(
    tracker: &Tracker,
    csv: &Path,
    ran: &Counter,
) -> (consist::RunResult<DataFrame>, consist::RunResult<Value<i64>>) {
    let first = tracker
        .step("double")
        .code_version("1")
        .input("raw", csv)
        .outputs(["doubled"])
        .run(|ctx| {
            ran.hit();
            let df: DataFrame = ctx.load("raw")?;
            let v: Vec<i64> = df.column("v")?.i64()?.into_no_null_iter().map(|x| x * 2).collect();
            Ok(df!("v" => v)?)
        })
        .unwrap();
    let second = tracker
        .step("total")
        .code_version("1")
        .input("doubled", first.output("doubled").unwrap())
        .outputs(["total"])
        .run(|ctx| {
            ran.hit();
            let df: DataFrame = ctx.load("doubled")?;
            Ok(Value(df.column("v")?.i64()?.into_no_null_iter().sum::<i64>()))
        })
        .unwrap();
    (first, second)
}

fn write_csv(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let csv = dir.join("raw.csv");
    std::fs::write(&csv, "v\n1\n2\n3\n").unwrap();
    csv
}

/// A tracker builder for `runs`, on `catalog` (a PostgreSQL URL) or the default DuckDB file.
fn builder(runs: std::path::PathBuf, catalog: Option<&str>) -> consist::TrackerBuilder {
    match catalog {
        Some(url) => Tracker::builder(runs).catalog(url),
        None => Tracker::builder(runs),
    }
}

#[test]
fn a_project_moved_whole_keeps_every_hit_and_every_load() {
    move_project(None);
}

#[test]
fn a_project_moved_whole_keeps_every_hit_and_every_load_on_postgres() {
    let Some(server) = crate::support::pg::PgServer::start() else { return };
    move_project(Some(&server.database("moved")));
}

/// Record a chain, `mv` the project, run it again from the new place: all hits, loads work.
fn move_project(catalog: Option<&str>) {
    let builder = |runs: std::path::PathBuf| builder(runs, catalog);
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let ran = Counter::default();
    {
        let tracker = builder(a.join("runs")).open().unwrap();
        let (_, total) = chain(&tracker, &write_csv(&a.join("data")), &ran);
        assert_eq!(total.value().unwrap().0, 12);
    }
    assert_eq!(ran.get(), 2);
    std::fs::rename(&a, &b).unwrap();

    let tracker = builder(b.join("runs")).open().unwrap();
    let (doubled, total) = chain(&tracker, &b.join("data/raw.csv"), &ran);
    assert_eq!((ran.get(), total.value().unwrap().0), (2, 12), "both steps hit after the move");
    assert!(doubled.cache_hit() && total.cache_hit());
    let output = doubled.output("doubled").unwrap();
    assert!(output.path.starts_with(&b), "{}", output.path.display());
    assert_eq!(tracker.load::<DataFrame>(output).unwrap().height(), 3);
    // Artifacts from the catalog load too, and are found under the new place.
    let recorded = tracker.get_artifact("doubled").unwrap().unwrap();
    assert!(recorded.path.starts_with(&b), "{}", recorded.path.display());
    assert_eq!(tracker.load::<DataFrame>(&recorded).unwrap().height(), 3);
    let copies = tracker.materialize(&[recorded], &b.join("copies")).unwrap();
    assert!(copies[0].exists());
    drop(tracker);
    if catalog.is_some() {
        return;
    }
    // The CLI follows the move too: files exist, validate passes, previews and crates work.
    let db = b.join("runs/provenance.duckdb");
    let ok = |args: &[&str]| {
        let out = crate::support::cli(&db, args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed: serde_json::Value = serde_json::from_str(&ok(&["artifacts", &doubled.run.id, "--json"])).unwrap();
    let text = listed.to_string();
    assert!(!text.contains(&a.to_string_lossy().into_owned()), "no path names the old place: {text}");
    ok(&["validate"]);
    assert!(ok(&["preview", "doubled"]).contains('6'));
    let summed: serde_json::Value =
        serde_json::from_str(&ok(&["query", "--json", "SELECT sum(v) FROM doubled"])).unwrap();
    assert_eq!(summed["rows"][0][0], 12, "the view reads the file at its new place: {summed}");
    let crate_dir = root.path().join("crate");
    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "export",
        "--format",
        "ro-crate",
        "--with-files",
        "--json",
        "--out",
        crate_dir.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(report["files_copied"], 3, "the raw input and both outputs: {report}");
}

#[test]
fn data_under_a_mount_is_recorded_portably_and_found_where_another_machine_mounts_it() {
    mounted_data(None);
}

#[test]
fn data_under_a_mount_is_found_where_another_machine_mounts_it_on_postgres() {
    let Some(server) = crate::support::pg::PgServer::start() else { return };
    mounted_data(Some(&server.database("mounted")));
}

/// Record with data under a mount at A; move the data to B, mount it there: hits, loads work.
fn mounted_data(catalog: Option<&str>) {
    let builder = |runs: std::path::PathBuf| builder(runs, catalog);
    let root = tempfile::tempdir().unwrap();
    let (shared_a, shared_b, outside) =
        (root.path().join("nfs-a"), root.path().join("nfs-b"), root.path().join("home"));
    let project = root.path().join("project");
    let ran = Counter::default();
    let open = |mount: &Path| builder(project.join("runs")).mount("inputs", mount).open().unwrap();
    {
        let csv = write_csv(&shared_a.join("study"));
        let tracker = open(&shared_a);
        let (doubled, _) = chain(&tracker, &csv, &ran);
        let raw = tracker.artifacts_for_run(&doubled.run.id).unwrap().inputs["raw"].clone();
        assert_eq!(raw.uri, "inputs://study/raw.csv");
        // A file outside the run dir and every mount is recorded by its absolute path.
        let loose = write_csv(&outside);
        tracker.step("loose").code_version("1").input("raw", &loose).outputs(["n"]).run(|_| Ok(Value(1u8))).unwrap();
        tracker.flush().unwrap();
    }
    // Another machine: the same data, mounted elsewhere; the first place is gone.
    std::fs::create_dir_all(&shared_b).unwrap();
    std::fs::rename(shared_a.join("study"), shared_b.join("study")).unwrap();
    std::fs::remove_dir(&shared_a).unwrap();
    let tracker = open(&shared_b);
    let (_, total) = chain(&tracker, &shared_b.join("study/raw.csv"), &ran);
    assert_eq!((ran.get(), total.value().unwrap().0), (2, 12), "all hits with the mount at its new place");
    let doubled = tracker.find_runs(&consist::RunQuery::default().model("double")).unwrap();
    let raw = tracker.artifacts_for_run(&doubled.last().unwrap().id).unwrap().inputs["raw"].clone();
    assert_eq!(raw.path, shared_b.join("study/raw.csv"));
    assert_eq!(tracker.load::<DataFrame>(&raw).unwrap().height(), 3);
    assert_eq!(tracker.resolve_uri("inputs://study/raw.csv").unwrap(), shared_b.join("study/raw.csv"));

    // Without the mount, loading it says which mount to add.
    let bare = builder(project.join("runs")).open().unwrap();
    let recorded = bare.artifacts_for_run(&doubled.last().unwrap().id).unwrap().inputs["raw"].clone();
    assert_eq!(recorded.path, shared_a.join("study/raw.csv"), "as recorded: nothing to resolve it with");
    let err = bare.load::<DataFrame>(&recorded).unwrap_err().to_string();
    assert!(err.contains(".mount(\"inputs\""), "{err}");

    // The CLI finds mounted files through `--mount name=dir`, as the tracker does.
    if catalog.is_none() {
        let db = project.join("runs/provenance.duckdb");
        let run = doubled.last().unwrap().id.clone();
        let listed = |extra: &[&str]| {
            let out = crate::support::cli(&db, &[&["artifacts", &run, "--json"], extra].concat());
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().to_string()
        };
        let mount = format!("inputs={}", shared_b.display());
        assert!(listed(&["--mount", &mount]).contains(&shared_b.join("study/raw.csv").to_string_lossy().into_owned()));
        assert!(!listed(&[]).contains(&shared_b.join("study/raw.csv").to_string_lossy().into_owned()));
        let bad = crate::support::cli(&db, &["artifacts", &run, "--mount", "inputs"]);
        assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("NAME=DIR"));
    }
    // `db inspect` lists the file recorded by absolute path, and only that one.
    let db = match catalog {
        Some(url) => url.to_owned(),
        None => project.join("runs/provenance.duckdb").to_string_lossy().into_owned(),
    };
    let out = crate::support::cli(Path::new(&db), &["db", "inspect", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["not_portable_count"], 1, "{report}");
    assert_eq!(report["not_portable"][0][1], outside.join("raw.csv").to_string_lossy().as_ref(), "{report}");
}

#[test]
fn bad_mounts_are_refused_when_the_tracker_opens() {
    let dir = tempfile::tempdir().unwrap();
    let inside = dir.path().join("raw");
    std::fs::create_dir_all(&inside).unwrap();
    let err = Tracker::builder(dir.path()).mount("raw", &inside).open().unwrap_err().to_string();
    assert!(err.contains("inside the run directory"), "{err}");
    let err = Tracker::builder(dir.path().join("runs")).mount("data", dir.path().join("nope")).open().unwrap_err();
    assert!(err.to_string().contains("not an existing directory"), "{err}");
    let err = Tracker::builder(dir.path()).mount("Inputs", dir.path()).open().unwrap_err().to_string();
    assert!(err.contains("mount `Inputs`") && err.contains("lowercase"), "{err}");
    let twice = Tracker::builder(dir.path()).mount("a", dir.path()).mount("a", dir.path()).open().unwrap_err();
    assert!(twice.to_string().contains("twice"), "{twice}");
}

#[test]
fn a_recorded_input_whose_file_changed_is_refused_not_computed_under_its_old_signature() {
    let ws = crate::support::Workspace::new();
    let tracker = ws.tracker();
    let csv = ws.write("raw.csv", "v\n1\n");
    let count = |raw: consist::Input| {
        tracker
            .step("count")
            .code_version("1")
            .input("raw", raw)
            .outputs(["n"])
            .run(|ctx| Ok(Value(std::fs::read_to_string(ctx.input_path("raw")?)?.lines().count() as u64)))
    };
    let first = count(consist::Input::from(&csv)).unwrap();
    let raw = tracker.artifacts_for_run(&first.run.id).unwrap().inputs["raw"].clone();
    // The recorded artifact names content H1; the file now holds other bytes.
    std::fs::write(&csv, "v\n2\n3\n").unwrap();
    let err = tracker
        .step("count")
        .code_version("2")
        .input("raw", &raw)
        .outputs(["n"])
        .run(|ctx| Ok(Value(std::fs::read_to_string(ctx.input_path("raw")?)?.lines().count() as u64)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("changed since they were recorded") && err.contains("input file `raw`"), "{err}");
    // By path, it is hashed again: a new identity, executed.
    assert_eq!(count(consist::Input::from(&csv)).unwrap().value().unwrap().0, 3);
}
