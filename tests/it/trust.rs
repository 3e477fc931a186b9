//! The shared catalog's promises on one DuckDB file: nothing from a catalog or snapshot becomes a
//! path until checked, a rebuild replaces only what it read, a purge is honoured by trackers
//! still open and by queues, a changed input never feeds a body, and a replaced catalog never
//! serves the old one's hits. (Many hosts on PostgreSQL: `hosts.rs`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use consist::admin::{OnConflict, PurgeOptions};
use consist::{Catalog, RunQuery, Tracker, Value};

use crate::support::{Counter, Workspace, cli, square};

/// Every file under `dir` with its bytes (what "untouched" means).
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A victim directory outside the project, holding what a hostile record would aim at: a file,
/// and a snapshot where a run dir planted in a catalog would keep one.
fn victim(id: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), b"keep me").unwrap();
    let snapshots = dir.path().join(".consist/snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    std::fs::write(snapshots.join(format!("{id}.json")), b"{}").unwrap();
    std::fs::create_dir_all(dir.path().join("outputs").join(id)).unwrap();
    std::fs::write(dir.path().join("outputs").join(id).join("squared.bin"), b"data").unwrap();
    dir
}

/// One recorded run in `ws` (flushed), with its snapshot file.
fn one_run(ws: &Workspace) -> (consist::Run, PathBuf) {
    let tracker = ws.tracker();
    let run = square(&tracker, 3, || {}).run;
    tracker.flush().unwrap();
    let snapshot = consist::testing::snapshots_dir(&ws.run_dir()).join(format!("{}.json", run.id));
    (run, snapshot)
}

#[test]
fn hostile_ids_in_a_snapshot_a_catalog_or_a_merge_source_are_refused_and_touch_nothing() {
    let ws = Workspace::new();
    let (run, snapshot) = one_run(&ws);
    let outside = victim("evil");
    let before = tree(outside.path());
    let db_before = std::fs::read(ws.db()).unwrap();

    // A snapshot whose run id is a path outside the project: rebuild refuses it, writes nothing.
    let escape = outside.path().join("precious").display().to_string();
    let mut planted: serde_json::Value = serde_json::from_slice(&std::fs::read(&snapshot).unwrap()).unwrap();
    planted["run"]["id"] = serde_json::json!(escape);
    let planted_file = snapshot.with_file_name("planted.json");
    std::fs::write(&planted_file, serde_json::to_vec(&planted).unwrap()).unwrap();
    let out = cli(&ws.db(), &["db", "rebuild", "--run-dir", ws.run_dir().to_str().unwrap()]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("run id") && said.contains(&escape) && said.contains("planted.json"), "{said}");
    assert_eq!(std::fs::read(ws.db()).unwrap(), db_before, "the catalog is untouched");
    std::fs::remove_file(&planted_file).unwrap();

    // A catalog handed over with a run id (then a signature) that is a path: a merge refuses it.
    for (n, (set, value)) in [("id = '../../escaped'", "../../escaped"), ("id = 'other_1', signature = '../x'", "../x")]
        .into_iter()
        .enumerate()
    {
        let other = ws.path().join(format!("other-{n}.duckdb"));
        std::fs::copy(ws.db(), &other).unwrap();
        let conn = duckdb::Connection::open(&other).unwrap();
        conn.execute(&format!("UPDATE run SET {set}"), []).unwrap();
        conn.execute("UPDATE run_artifact_link SET run_id = (SELECT id FROM run)", []).unwrap();
        drop(conn);
        let out = cli(&ws.db(), &["db", "merge", other.to_str().unwrap()]);
        let said = text(&out);
        assert!(!out.status.success() && said.contains(value) && said.contains("refused"), "{said}");
        assert!(!ws.path().join("provenance.duckdb.consist/merged").exists(), "no merged copy written");
    }

    // A row planted in the catalog whose id is a path: purge refuses it by name.
    let conn = ws.sql();
    conn.execute("INSERT INTO run SELECT * REPLACE ('../evil' AS id) FROM run", []).unwrap();
    // A row with a plain id but a run dir outside the project, where a snapshot and an output
    // of that name exist: purge removes its rows and leaves those files alone.
    conn.execute(
        "INSERT INTO run SELECT * REPLACE ('evil' AS id, json_merge_patch(meta, json_object('_physical_run_dir', ?)) \
         AS meta) FROM run WHERE id = ?",
        [outside.path().to_str().unwrap(), run.id.as_str()],
    )
    .unwrap();
    let planted_output = outside.path().join("outputs/evil/squared.bin");
    conn.execute(
        "INSERT INTO artifact SELECT * REPLACE ('evil-art' AS id, 'evil' AS run_id, json_object('path', ?) AS meta)          FROM artifact LIMIT 1",
        [planted_output.to_str().unwrap()],
    )
    .unwrap();
    conn.execute("INSERT INTO run_artifact_link VALUES ('evil', 'evil-art', 'output', false)", []).unwrap();
    drop(conn);
    let out = cli(&ws.db(), &["db", "purge", "../evil", "--yes"]);
    let said = text(&out);
    assert!(!out.status.success() && said.contains("../evil") && said.contains("refused"), "{said}");
    let out = cli(&ws.db(), &["db", "purge", "evil", "--yes", "--delete-files"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(tree(outside.path()), before, "nothing outside the project was written or deleted");
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run WHERE id = 'evil'"), 0);
    assert!(snapshot.exists(), "the real run is untouched");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    /// Whatever run id a snapshot or a merged catalog holds, rebuild, merge and purge either use
    /// it as one plain file name or refuse it: nothing in a victim directory beside the project
    /// (reachable by `../` or an absolute path) is ever created, changed or deleted.
    #[test]
    fn fuzzed_run_ids_never_lead_maintenance_outside_the_project(
        pick in 0usize..6,
        tail in "[a-z]{1,6}",
    ) {
        let ws = Workspace::new();
        let (run, snapshot) = one_run(&ws);
        let outside = victim(&tail);
        let before = tree(outside.path());
        let relative = format!("../../{}/{tail}", outside.path().file_name().unwrap().to_str().unwrap());
        let id = [
            tail.clone(),
            relative,
            outside.path().join(&tail).display().to_string(),
            format!("{tail}/../../x"),
            format!(".{tail}"),
            format!("{tail}\n/{tail}"),
        ][pick].clone();
        // A catalog holding it, to merge in below (copied before the rebuild adds anything).
        let other = ws.path().join("other.duckdb");
        std::fs::copy(ws.db(), &other).unwrap();
        // A snapshot holding it.
        let mut planted: serde_json::Value = serde_json::from_slice(&std::fs::read(&snapshot).unwrap()).unwrap();
        planted["run"]["id"] = serde_json::json!(id);
        std::fs::write(snapshot.with_file_name("fuzz.json"), serde_json::to_vec(&planted).unwrap()).unwrap();
        let catalog = Catalog::duckdb(ws.db(), Duration::from_secs(10));
        let rebuilt = catalog.rebuild(&ws.run_dir());
        proptest::prop_assert_eq!(rebuilt.is_ok(), pick == 0, "{:?}", rebuilt.err());
        std::fs::remove_file(snapshot.with_file_name("fuzz.json")).unwrap();
        // The catalog holding it, merged in.
        let conn = duckdb::Connection::open(&other).unwrap();
        conn.execute("UPDATE run SET id = ? WHERE id = ?", [id.as_str(), run.id.as_str()]).unwrap();
        conn.execute("UPDATE run_artifact_link SET run_id = ?", [id.as_str()]).unwrap();
        drop(conn);
        let source = Catalog::duckdb(&other, Duration::from_secs(10));
        let merged = catalog.merge(&source, OnConflict::Skip, false);
        proptest::prop_assert_eq!(merged.is_ok(), pick == 0, "{:?}", merged.err());
        // And purged from it.
        let purged = catalog.purge(std::slice::from_ref(&id), PurgeOptions { delete_files: true, ..Default::default() });
        proptest::prop_assert!(pick != 0 || purged.is_ok(), "{:?}", purged.err());
        proptest::prop_assert_eq!(tree(outside.path()), before);
    }
}

#[test]
fn a_rebuild_of_one_run_dir_keeps_other_run_dirs_and_rows_without_snapshots() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let tracker_in = |dir: &str| Tracker::builder(ws.path().join(dir)).db_path(ws.db()).open().unwrap();
    let (a, b) = (tracker_in("a"), tracker_in("b"));
    let in_a: Vec<String> = (1..=2).map(|v| square(&a, v, || runs.hit()).run.id).collect();
    let in_b = square(&b, 10, || runs.hit()).run.id;
    a.flush().unwrap();
    b.flush().unwrap();
    drop((a, b));
    // A row another tool wrote (no snapshot, no consist host), as Python Consist's are.
    ws.sql()
        .execute(
            "INSERT INTO run SELECT * REPLACE ('python_run' AS id, json_object('_physical_run_dir', ?) AS meta) \
             FROM run LIMIT 1",
            [ws.path().join("a").to_str().unwrap()],
        )
        .unwrap();
    let count = || ws.scalar::<i64>("SELECT count(*) FROM run");
    assert_eq!(count(), 4);

    let rebuild = |extra: &[&str]| {
        let mut args = vec!["db", "rebuild", "--run-dir"];
        let dir = ws.path().join("a");
        args.push(dir.to_str().unwrap());
        args.extend(extra);
        let out = cli(&ws.db(), &args);
        (out.status.success(), text(&out))
    };
    let (ok, said) = rebuild(&[]);
    assert!(ok && said.contains("restored 2 run(s)") && said.contains("left 2 other run(s)"), "{said}");
    assert_eq!(count(), 4, "run dir b's run and the row without a snapshot stay");

    // A run of `a` whose snapshot is gone goes; nothing else does.
    std::fs::remove_file(consist::testing::snapshots_dir(&ws.path().join("a")).join(format!("{}.json", in_a[0])))
        .unwrap();
    let (ok, said) = rebuild(&[]);
    assert!(ok && said.contains("removed 1 run(s) whose snapshots are gone"), "{said}");
    let left: Vec<String> = ws
        .sql()
        .prepare("SELECT id FROM run ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut expected = vec![in_a[1].clone(), in_b.clone(), "python_run".to_owned()];
    expected.sort();
    assert_eq!(left, expected);

    // Replacing everything is explicit and confirmed.
    let (ok, said) = rebuild(&["--replace-all"]);
    assert!(!ok && said.contains("--yes"), "{said}");
    assert_eq!(count(), 3, "nothing changed without confirmation");
    let (ok, said) = rebuild(&["--replace-all", "--yes"]);
    assert!(ok && said.contains("restored 1 run(s)"), "{said}");
    assert_eq!(count(), 1);
}

#[test]
fn runs_synced_while_a_rebuild_runs_are_all_recorded_once() {
    use std::process::{Command, Stdio};
    let ws = Workspace::new();
    drop(ws.tracker());
    let values: Vec<String> = (0..40).map(|v| v.to_string()).collect();
    let mut worker = Command::new(crate::process::worker())
        .arg("steps")
        .arg(ws.run_dir())
        .arg(ws.db())
        .args(&values)
        .env("CONSIST_TEST_SLEEP_MS", "25")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut rebuilds = 0;
    while worker.try_wait().unwrap().is_none() {
        let out = cli(&ws.db(), &["db", "rebuild", "--run-dir", ws.run_dir().to_str().unwrap(), "--wait", "30"]);
        assert!(out.status.success(), "{}", text(&out));
        rebuilds += 1;
    }
    assert!(worker.wait().unwrap().success());
    assert!(rebuilds > 1, "the rebuilds ran during the sweep");
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 40, "every run once, none lost");
    assert_eq!(ws.scalar::<i64>("SELECT count(DISTINCT id) FROM run"), 40);
}

#[test]
fn a_purged_run_is_served_neither_by_an_open_tracker_nor_written_back_by_a_queue() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let tracker = ws.tracker();
    let first = square(&tracker, 4, || runs.hit()).run;
    tracker.flush().unwrap();
    assert!(square(&tracker, 4, || runs.hit()).cache_hit(), "the tracker remembers it");
    // Another host's queue still holding the run (its sync died before dropping the entry).
    let kept = ws.path().join("kept.json");
    std::fs::copy(consist::testing::snapshots_dir(&ws.run_dir()).join(format!("{}.json", first.id)), &kept).unwrap();

    let out = cli(&ws.db(), &["db", "purge", &first.id, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let again = square(&tracker, 4, || runs.hit());
    assert!(!again.cache_hit(), "the open tracker does not serve the purged run: {:?}", again.run.cache_source());
    assert_eq!(runs.get(), 2);
    assert!(square(&ws.tracker(), 4, || runs.hit()).cache_hit(), "a new tracker hits the new run");
    tracker.flush().unwrap();

    let pending = ws.path().join("provenance.duckdb.consist/pending");
    std::fs::create_dir_all(&pending).unwrap();
    std::fs::write(pending.join(&first.id), kept.to_string_lossy().as_bytes()).unwrap();
    let out = cli(&ws.db(), &["db", "sync"]);
    assert!(out.status.success(), "{}", text(&out));
    let catalog = Catalog::duckdb(ws.db(), Duration::from_secs(5));
    assert!(catalog.store().get_run(&first.id).unwrap().is_none(), "the queue did not write the purged run back");
    assert!(catalog.find_runs(&RunQuery::default()).unwrap().iter().all(|r| r.id != first.id));
    assert_ne!(again.run.cache_source(), Some(first.id.as_str()));
}

#[test]
fn an_upstream_output_changed_in_place_never_feeds_a_downstream_body() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let up =
        tracker.step("write").code_version("1").outputs(["v"]).run(|_| Ok(Value("0123456789".to_owned()))).unwrap();
    let file = up.outputs["v"].path.clone();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"appended-later!");
    std::fs::write(&file, &bytes).unwrap();
    let measured = Counter::default();
    let err = tracker
        .step("measure")
        .code_version("1")
        .input("v", up.output("v").unwrap())
        .outputs(["length"])
        .run(|ctx| {
            measured.hit();
            Ok(Value(std::fs::metadata(ctx.input_path("v")?)?.len()))
        })
        .unwrap_err()
        .to_string();
    assert_eq!(measured.get(), 0, "the body never ran on the changed file");
    assert!(err.contains(&file.display().to_string()) && err.contains("changed since they were recorded"), "{err}");
}

#[test]
fn a_replaced_or_deleted_catalog_file_does_not_serve_the_old_catalogs_hits() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let first = {
        let tracker = ws.tracker();
        square(&tracker, 6, || runs.hit()).run
    };
    // The file is deleted (its local state beside it stays).
    std::fs::remove_file(ws.db()).unwrap();
    let _ = std::fs::remove_file(ws.path().join("provenance.duckdb.wal"));
    let again = square(&ws.tracker(), 6, || runs.hit());
    assert!(!again.cache_hit(), "no hit names {} , which the new catalog does not hold", first.id);
    // Another catalog's file copied over this one's, while a tracker is open: its runs are not
    // this one's either, for a new tracker or (within EPOCH_POLL) the open one.
    let open = ws.tracker();
    let seen = square(&open, 6, || runs.hit()).run.cache_source().map(str::to_owned);
    assert!(seen.is_some());
    let elsewhere = Workspace::new();
    square(&elsewhere.tracker(), 99, || runs.hit());
    std::fs::copy(elsewhere.db(), ws.db()).unwrap();
    assert!(!square(&ws.tracker(), 6, || runs.hit()).cache_hit());
    std::thread::sleep(consist::store::EPOCH_POLL + Duration::from_millis(100));
    let after = square(&open, 6, || runs.hit());
    assert_ne!(after.run.cache_source(), seen.as_deref(), "the open tracker noticed the file was replaced");
    drop(open);
    // A file without an id (from before ids, or Python Consist's) replacing it: the same.
    let conn = elsewhere.sql();
    conn.execute_batch("DROP TABLE consist_catalog").unwrap();
    drop(conn);
    std::fs::copy(elsewhere.db(), ws.db()).unwrap();
    assert!(!square(&ws.tracker(), 6, || runs.hit()).cache_hit());
    assert_eq!(runs.get(), 5, "the open tracker hit the run the new catalog's tracker recorded");
}

#[test]
fn a_run_a_rebuild_removes_is_not_served_by_an_open_tracker() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let open = ws.tracker();
    let first = square(&open, 2, || runs.hit()).run;
    open.flush().unwrap();
    std::fs::remove_file(consist::testing::snapshots_dir(&ws.run_dir()).join(format!("{}.json", first.id))).unwrap();
    let out = cli(&ws.db(), &["db", "rebuild"]);
    assert!(text(&out).contains("removed 1 run(s)"), "{}", text(&out));
    assert!(!square(&open, 2, || runs.hit()).cache_hit(), "the run the catalog no longer holds is not served");
    assert_eq!(runs.get(), 2);
}
