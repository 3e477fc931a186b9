//! The provenance database: shared-schema rows, snapshots first, rebuild, pending runs.

use consist::{Catalog, RunQuery, Value};

use crate::support::Workspace;

fn two_runs(ws: &Workspace) -> (String, String) {
    let tracker = ws.tracker();
    let run =
        || tracker.step("square").code_version("1").config(&5).outputs(["squared"]).run(|_| Ok(Value(25))).unwrap();
    let (a, b) = (run(), run());
    (a.run.id, b.run.id)
}

#[test]
fn runs_artifacts_and_links_use_the_shared_schema() {
    let ws = Workspace::new();
    let (first, hit) = two_runs(&ws);
    // the tracker was dropped: its runs are synced
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run WHERE status = 'completed' AND model_name = 'square'"), 2);
    let meta: String = ws.scalar(&format!("SELECT CAST(meta AS VARCHAR) FROM run WHERE id = '{hit}'"));
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["cache_hit"], true);
    assert_eq!(meta["cache_source"], first.as_str());
    // the hit links the original artifact: one artifact row, two output links
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM artifact WHERE \"key\" = 'squared'"), 1);
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run_artifact_link WHERE direction = 'output'"), 2);
    let producer: String = ws.scalar("SELECT run_id FROM artifact");
    assert_eq!(producer, first);
    let driver: String = ws.scalar("SELECT driver FROM artifact");
    assert_eq!(driver, "bincode");
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM artifact_content"), 1);
    let id_shape: bool = ws.scalar(&format!("SELECT regexp_full_match('{first}', 'square_[0-9a-f]{{16}}')"));
    assert!(id_shape, "{first}");
}

#[test]
fn runs_are_visible_before_they_reach_the_database() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    tracker.step("quick").code_version("1").outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap();
    assert!(!ws.db().exists(), "not flushed yet: the hot path does not open DuckDB");
    let found = tracker.find_runs(&RunQuery { model: Some("quick".into()), ..Default::default() }).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(tracker.flush().unwrap(), 1);
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 1);
    assert_eq!(tracker.flush().unwrap(), 0, "nothing left pending");
}

fn square(tracker: &consist::Tracker) -> consist::RunResult<Value<i32>> {
    tracker.step("square").code_version("1").config(&5).outputs(["squared"]).run(|_| Ok(Value(25))).unwrap()
}

/// A tracker that leaves its hits in the pending queue ([`consist::TrackerBuilder::defer_hit_writes`]).
fn deferring(ws: &Workspace) -> consist::Tracker {
    consist::Tracker::builder(ws.run_dir()).db_path(ws.db()).defer_hit_writes(true).open().unwrap()
}

#[test]
fn by_default_the_database_file_holds_every_run_of_a_process_once_its_tracker_is_dropped() {
    let ws = Workspace::new();
    let first = square(&ws.tracker());
    let hit = square(&ws.tracker());
    assert!(!first.cache_hit() && hit.cache_hit());
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 2, "plain SQL sees the hit-only process's run");
    assert_eq!(Catalog::duckdb(ws.db(), std::time::Duration::from_secs(5)).pending_count(), 0);
    // Deferred hits that earlier processes left go along with the next default process's.
    assert!(square(&deferring(&ws)).cache_hit());
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 2);
    assert!(square(&ws.tracker()).cache_hit());
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 4);
}

#[test]
fn a_process_that_defers_its_hits_leaves_the_database_file_alone_and_readers_still_see_its_hits() {
    let ws = Workspace::new();
    let first = square(&ws.tracker());
    assert!(!first.cache_hit());
    let before = std::fs::read(ws.db()).unwrap();
    let hit = square(&deferring(&ws));
    assert!(hit.cache_hit());
    assert_eq!(std::fs::read(ws.db()).unwrap(), before, "a process that only hits does not write the database");
    assert!(!ws.path().join("provenance.duckdb.wal").exists());
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 1, "the hit waits in the pending queue");

    let catalog = Catalog::duckdb(ws.db(), std::time::Duration::from_secs(5));
    assert_eq!(catalog.pending_count(), 1);
    let listed = catalog.find_runs(&RunQuery { model: Some("square".into()), ..Default::default() }).unwrap();
    assert_eq!(listed.len(), 2, "listings merge what is pending");
    assert_eq!(catalog.run_record(&hit.run.id).unwrap().run.meta["cache_source"], first.run.id.as_str());
    // SQL reads the database alone, and writes nothing; a sync brings the hit in.
    let count = || catalog.query("SELECT count(*) AS n FROM run").unwrap().rows[0][0].clone();
    assert_eq!(count(), serde_json::json!(1));
    assert_eq!(catalog.sync().unwrap(), 1);
    assert_eq!(count(), serde_json::json!(2));
    assert_eq!(catalog.pending_count(), 0);
}

#[test]
fn waiting_hits_reach_the_database_with_the_next_executed_run_or_once_enough_batches_wait() {
    let ws = Workspace::new();
    square(&ws.tracker());
    let stored = || ws.scalar::<i64>("SELECT count(*) FROM run");
    for _ in 1..consist::testing::HIT_BATCHES_WAITING {
        assert!(square(&deferring(&ws)).cache_hit());
    }
    assert_eq!(stored(), 1, "deferred hits alone wait");
    assert!(square(&deferring(&ws)).cache_hit());
    let waiting = consist::testing::HIT_BATCHES_WAITING as i64;
    assert_eq!(stored(), 1 + waiting, "the process that fills the queue writes it");

    let tracker = deferring(&ws);
    assert!(square(&tracker).cache_hit());
    drop(tracker);
    assert_eq!(stored(), 1 + waiting);
    let tracker = deferring(&ws);
    assert!(square(&tracker).cache_hit());
    tracker.step("cube").code_version("1").outputs(["cubed"]).run(|_| Ok(Value(125))).unwrap();
    drop(tracker);
    assert_eq!(stored(), 1 + waiting + 3, "an executed run takes the waiting hits along");
    assert_eq!(Catalog::duckdb(ws.db(), std::time::Duration::from_secs(5)).pending_count(), 0);
}

#[test]
fn hits_waiting_when_the_project_moves_reach_the_database_from_its_new_place() {
    let ws = Workspace::new();
    let (old, new) = (ws.path().join("study"), ws.path().join("study-moved"));
    let tracker = |dir: &std::path::Path| {
        consist::Tracker::builder(dir.join("runs")).db_path(dir.join("provenance.duckdb")).open().unwrap()
    };
    square(&tracker(&old));
    let deferring = consist::Tracker::builder(old.join("runs"))
        .db_path(old.join("provenance.duckdb"))
        .defer_hit_writes(true)
        .open()
        .unwrap();
    let hit = square(&deferring);
    drop(deferring);
    assert!(hit.cache_hit());
    std::fs::rename(&old, &new).unwrap();

    let catalog = Catalog::duckdb(new.join("provenance.duckdb"), std::time::Duration::from_secs(5));
    assert_eq!(catalog.pending_count(), 1, "the waiting batch is found where the project is now");
    assert!(catalog.run_record(&hit.run.id).unwrap().run.meta["cache_hit"].as_bool().unwrap());
    assert_eq!(catalog.sync().unwrap(), 1);
    let stored = catalog.query("SELECT count(*) FROM run").unwrap().rows[0][0].clone();
    assert_eq!(stored, serde_json::json!(2));
}

#[test]
fn a_full_batch_of_hits_goes_to_the_database_without_waiting() {
    let ws = Workspace::new();
    square(&ws.tracker());
    let tracker = consist::Tracker::builder(ws.run_dir()).db_path(ws.db()).flush_every(2).open().unwrap();
    assert!(square(&tracker).cache_hit());
    assert!(square(&tracker).cache_hit());
    drop(tracker);
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 3, "a long run of hits is written batch by batch");
}

#[test]
fn a_flush_or_drop_after_a_long_run_of_hits_leaves_the_file_complete() {
    let ws = Workspace::new();
    square(&ws.tracker());
    // Batches of 2: the steps run ahead of the writer, whose batches then follow each other in
    // one write session (one attach, one checkpoint when it ends).
    let tracker = consist::Tracker::builder(ws.run_dir()).db_path(ws.db()).flush_every(2).open().unwrap();
    for _ in 0..300 {
        assert!(square(&tracker).cache_hit());
    }
    tracker.flush().unwrap();
    let wal = ws.path().join("provenance.duckdb.wal");
    assert!(!wal.exists(), "the flush returned before the file was checkpointed");
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 301, "plain SQL sees every run after the flush");
    // The same when the tracker is dropped without a flush.
    for _ in 0..300 {
        assert!(square(&tracker).cache_hit());
    }
    drop(tracker);
    assert!(!wal.exists(), "the drop returned before the file was checkpointed");
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 601);
    // The fingerprint of the file this host keeps (so the next tracker need not open it to read
    // the catalog's id) is the file as the last checkpoint left it.
    let mark: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.path().join("provenance.duckdb.consist/catalog")).unwrap()).unwrap();
    let meta = std::fs::metadata(ws.db()).unwrap();
    let mtime = meta.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    use std::os::unix::fs::MetadataExt;
    let key = format!("{}:{}:{}:{mtime}", meta.dev(), meta.ino(), meta.len());
    assert_eq!(mark["file"], key.as_str(), "a stale fingerprint makes the next tracker open the file");
}

#[test]
fn snapshot_survives_a_failed_database_write_and_rebuilds_it() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let result = tracker.step("precious").code_version("1").outputs(["v"]).run(|_| Ok(Value(99u32))).unwrap();
    // Something clobbers the database file before the batch is written.
    std::fs::write(ws.db(), b"garbage, not duckdb").unwrap();
    let err = tracker.flush().unwrap_err();
    assert!(err.to_string().contains("provenance.duckdb"), "{err}");
    drop(tracker);
    let snapshot = ws.run_dir().join(".consist/snapshots").join(format!("{}.json", result.run.id));
    assert!(snapshot.exists(), "the snapshot is the durable record");

    // Recover: move the damaged file away and rebuild from snapshots.
    std::fs::remove_file(ws.db()).unwrap();
    let catalog = Catalog::duckdb(ws.db(), std::time::Duration::from_secs(5));
    assert_eq!(catalog.rebuild(ws.path()).unwrap().restored, 1);
    let id: String = ws.scalar("SELECT id FROM run");
    assert_eq!(id, result.run.id);
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM artifact"), 1);
    // And the cache still answers.
    let again = ws.tracker().step("precious").code_version("1").outputs(["v"]).run(|_| Ok(Value(0u32))).unwrap();
    assert!(again.cache_hit());
    assert_eq!(again.value().unwrap().0, 99);
}

#[test]
fn hits_waiting_in_a_snapshot_batch_are_read_like_any_pending_run() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let run = || tracker.step("square").code_version("1").config(&5).outputs(["squared"]).run(|_| Ok(Value(25)));
    let (first, hit) = (run().unwrap(), run().unwrap());
    assert!(hit.cache_hit());
    // The database cannot be written: the hit's batch is written, and stays queued beside it.
    std::fs::write(ws.db(), b"garbage, not duckdb").unwrap();
    tracker.flush().unwrap_err();
    let batches: Vec<_> = std::fs::read_dir(ws.run_dir().join(".consist/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("hits-") && n.ends_with(".jsonl"))
        .collect();
    assert_eq!(batches.len(), 1, "one batch of hits");
    let catalog = tracker.catalog();
    assert_eq!(catalog.run_record(&hit.run.id).unwrap().run.meta["cache_source"], first.run.id.as_str());
    let both = catalog.run_records(&[first.run.id.clone(), hit.run.id.clone()]).unwrap();
    let ids: Vec<&str> = both.iter().map(|r| r.run.id.as_str()).collect();
    assert_eq!(ids, [first.run.id.as_str(), hit.run.id.as_str()]);
    assert_eq!(catalog.pending_count(), 2);
    let outputs = tracker.artifacts_for_run(&hit.run.id).unwrap().outputs;
    assert_eq!(outputs["squared"].run_id.as_deref(), Some(first.run.id.as_str()), "the hit names its source's output");
}

#[test]
fn hits_that_cannot_be_written_never_block_the_steps_nor_the_drop() {
    let ws = Workspace::new();
    let (done, finished) = std::sync::mpsc::channel();
    let run_dir = ws.run_dir();
    let db = ws.db();
    std::thread::spawn(move || {
        let tracker = consist::Tracker::builder(&run_dir).db_path(&db).flush_every(1).open().unwrap();
        let run = || tracker.step("square").code_version("1").config(&5).outputs(["squared"]).run(|_| Ok(Value(25)));
        let first = run().unwrap();
        tracker.flush().unwrap();
        // Nothing can be written into the snapshot directory any more.
        let snapshots = run_dir.join(".consist/snapshots");
        std::fs::rename(&snapshots, run_dir.join("moved-away")).unwrap();
        std::fs::write(&snapshots, "not a directory").unwrap();
        let hits = (0..20).map(|_| run().unwrap()).filter(|r| r.cache_hit()).count();
        assert!(tracker.flush().unwrap_err().to_string().contains("snapshots"), "the error names the place");
        drop(tracker);
        done.send((first.run.id, hits)).unwrap();
    });
    let (first, hits) = finished.recv_timeout(std::time::Duration::from_secs(60)).expect("steps and drop return");
    assert_eq!(hits, 20, "every hit is served while its record cannot be written");
    let catalog = Catalog::duckdb(ws.db(), std::time::Duration::from_secs(5));
    assert_eq!(
        catalog.run_record(&first).unwrap().run.status,
        consist::RunStatus::Completed,
        "the executed run is kept"
    );
}

#[test]
fn rebuild_restores_the_same_runs() {
    let ws = Workspace::new();
    let (first, hit) = two_runs(&ws);
    std::fs::remove_file(ws.db()).unwrap();
    let catalog = Catalog::duckdb(ws.db(), std::time::Duration::from_secs(5));
    assert_eq!(catalog.rebuild(ws.path()).unwrap().restored, 2);
    let mut ids: Vec<String> = catalog.find_runs(&RunQuery::default()).unwrap().into_iter().map(|r| r.id).collect();
    ids.sort();
    let mut expected = vec![first, hit];
    expected.sort();
    assert_eq!(ids, expected);
}

#[test]
fn artifacts_for_run_lists_inputs_and_outputs() {
    let ws = Workspace::new();
    let raw = ws.write("raw.csv", "id\n1\n");
    let tracker = ws.tracker();
    let r = tracker.step("reader").code_version("1").input("raw", &raw).outputs(["n"]).run(|_| Ok(Value(1u8))).unwrap();
    let arts = tracker.artifacts_for_run(&r.run.id).unwrap();
    let drivers = |side: &std::collections::BTreeMap<String, consist::Artifact>| {
        side.iter().map(|(k, a)| (k.clone(), a.driver.to_string())).collect::<Vec<_>>()
    };
    assert_eq!(drivers(&arts.inputs), [("raw".to_owned(), "csv".to_owned())]);
    assert_eq!(drivers(&arts.outputs), [("n".to_owned(), "bincode".to_owned())]);
    assert_eq!(arts.inputs["raw"].path, std::path::absolute(&raw).unwrap());
}

#[test]
fn artifacts_for_run_answers_before_and_after_the_sync_alike() {
    let ws = Workspace::new();
    let raw = ws.write("raw.csv", "id\n1\n");
    let tracker = ws.tracker();
    let r = tracker.step("reader").code_version("1").input("raw", &raw).outputs(["n"]).run(|_| Ok(Value(1u8))).unwrap();
    let pending = tracker.artifacts_for_run(&r.run.id).unwrap();
    assert!(!ws.db().exists(), "reading did not force a database write");
    tracker.flush().unwrap();
    let stored = tracker.artifacts_for_run(&r.run.id).unwrap();
    let ids = |a: &consist::RunArtifacts| {
        let side = |m: &std::collections::BTreeMap<String, consist::Artifact>| {
            m.iter().map(|(k, a)| (k.clone(), a.id.clone())).collect::<Vec<_>>()
        };
        (side(&a.inputs), side(&a.outputs))
    };
    assert_eq!(ids(&pending), ids(&stored));
}

#[test]
fn a_catalog_is_opened_by_location() {
    let ws = Workspace::new();
    let db = ws.path().join("by-location.duckdb");
    let tracker = consist::Tracker::builder(ws.run_dir()).catalog(db.to_str().unwrap()).open().unwrap();
    tracker.step("s").code_version("1").outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap();
    tracker.flush().unwrap();
    assert!(db.exists());
    let location = consist::CatalogLocation::parse(db.to_str().unwrap()).unwrap();
    let catalog = Catalog::open(&location, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(catalog.summary().unwrap().runs, 1);
    assert_eq!(catalog.location().to_string(), db.display().to_string());

    let refused = consist::Tracker::builder(ws.run_dir()).catalog("mysql://root:hunter2@db/x").open().unwrap_err();
    assert!(matches!(refused, consist::Error::CatalogLocation { .. }), "{refused}");
    assert!(refused.to_string().contains("mysql://root:***@db/x"), "{refused}");
}

#[test]
fn writers_hold_back_while_a_reader_asks_to_be_let_in_and_ignore_a_stale_request() {
    let ws = Workspace::new();
    two_runs(&ws);
    let flag = ws.path().join("provenance.duckdb.consist/reader-waiting");
    let catalog = Catalog::duckdb(ws.db(), std::time::Duration::from_secs(1));
    let timed_rebuild = || {
        let started = std::time::Instant::now();
        assert_eq!(catalog.rebuild(ws.path()).unwrap().restored, 2);
        started.elapsed()
    };
    // A fresh request: the writer waits (at most half its 1 s timeout) before it opens the file.
    std::fs::write(&flag, b"").unwrap();
    let held_back = timed_rebuild();
    assert!(held_back >= std::time::Duration::from_millis(450), "{held_back:?}");
    // A request over 1 s old is stale (its reader is gone or in): nobody waits for it.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&flag).unwrap().set_modified(old).unwrap();
    let free = timed_rebuild();
    assert!(free < std::time::Duration::from_millis(450), "{free:?}");
}

#[test]
fn a_catalog_records_its_schema_version_and_one_from_a_newer_consist_is_refused_untouched() {
    let ws = Workspace::new();
    two_runs(&ws);
    let version = |ws: &Workspace| ws.scalar::<i32>("SELECT max(version) FROM consist_schema_version");
    assert_eq!(version(&ws), consist::store::SCHEMA_VERSION);

    // A file a newer consist migrated: reads and writes are refused, naming the fix.
    let newer = consist::store::SCHEMA_VERSION + 1;
    ws.sql().execute_batch(&format!("INSERT INTO consist_schema_version(version) VALUES ({newer})")).unwrap();
    let catalog = Catalog::duckdb(ws.db(), std::time::Duration::from_secs(5));
    let read = catalog.find_runs(&RunQuery::default()).unwrap_err().to_string();
    assert!(read.contains(&format!("schema version {newer}")) && read.contains("upgrade consist"), "{read}");
    let tracker = ws.tracker();
    // The run itself succeeds (its snapshot is the record); the database is not written.
    tracker.step("square").code_version("1").config(&6).outputs(["squared"]).run(|_| Ok(Value(36))).unwrap();
    let flushed = tracker.flush().unwrap_err().to_string();
    assert!(flushed.contains("upgrade consist"), "{flushed}");
    drop(tracker);
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 2, "the newer file is untouched");
    assert_eq!(version(&ws), newer);
}

#[test]
fn a_catalog_without_a_schema_version_is_read_and_brought_up_to_date() {
    // As Python Consist, or consist before versions, leaves a file: the tables, no version table.
    let ws = Workspace::new();
    two_runs(&ws);
    ws.sql().execute_batch("DROP TABLE consist_schema_version").unwrap();
    let catalog = Catalog::duckdb(ws.db(), std::time::Duration::from_secs(5));
    assert_eq!(catalog.find_runs(&RunQuery::default()).unwrap().len(), 2);
    let tracker = ws.tracker();
    tracker.step("square").code_version("1").config(&7).outputs(["squared"]).run(|_| Ok(Value(49))).unwrap();
    tracker.flush().unwrap();
    drop(tracker);
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 3);
    assert_eq!(ws.scalar::<i32>("SELECT max(version) FROM consist_schema_version"), consist::store::SCHEMA_VERSION);
}

#[test]
fn a_database_whose_path_has_quotes_compacts_exports_and_merges() {
    let ws = Workspace::new();
    let db = ws.path().join("o'brien \"x\".duckdb");
    let tracker = consist::Tracker::builder(ws.run_dir()).db_path(&db).open().unwrap();
    tracker.step("s").code_version("1").config(&1).outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap();
    tracker.flush().unwrap();
    drop(tracker);
    let run = |args: &[&str]| {
        let out = crate::support::cli(&db, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["db", "compact"]);
    let export = ws.path().join("it's \"exported\"");
    run(&["db", "export", export.to_str().unwrap()]);
    assert!(export.join("run.parquet").exists());
    let other = ws.path().join("other.duckdb");
    let merged = crate::support::cli(&other, &["db", "merge", db.to_str().unwrap()]);
    assert!(merged.status.success(), "{}", String::from_utf8_lossy(&merged.stderr));
    let runs = crate::support::cli(&other, &["runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
}
