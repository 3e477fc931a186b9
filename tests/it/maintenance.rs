//! Purging runs and merging databases: nothing purged comes back (rebuild, cache hits), nothing
//! merged is lost (rebuild), conflicts are refused, and the CLI asks before it deletes.

use std::time::Duration;

use consist::admin::{OnConflict, PurgeOptions};
use consist::{Catalog, Error, RunQuery, RunStatus, Tracker, Value};

use crate::support::{Counter, Workspace, clean_and_summarize, cli};

/// `clean` then `summarize` (see [`clean_and_summarize`]), both counted in `runs`.
fn pipeline(tracker: &Tracker, threshold: i64, runs: &Counter) -> (consist::Run, consist::Run) {
    let (up, down) = clean_and_summarize(tracker, threshold, runs, runs);
    (up.run, down.run)
}

fn ids(tracker: &Tracker) -> Vec<String> {
    let mut ids: Vec<String> = tracker.find_runs(&RunQuery::default()).unwrap().into_iter().map(|r| r.id).collect();
    ids.sort();
    ids
}

fn snapshot_of(ws: &Workspace, run_id: &str) -> std::path::PathBuf {
    consist::testing::snapshots_dir(&ws.run_dir()).join(format!("{run_id}.json"))
}

#[test]
fn purge_removes_a_run_everywhere_and_keeps_what_others_use() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let tracker = ws.tracker();
    let (clean, summarize) = pipeline(&tracker, 10, &runs);
    let (other_clean, _) = pipeline(&tracker, 20, &runs);
    assert_eq!(runs.get(), 4);
    let total_file = ws.run_dir().join("outputs").join(&summarize.id);
    assert!(total_file.is_dir());
    let options = PurgeOptions { delete_files: true, ..PurgeOptions::default() };

    let plan = tracker.catalog().purge(std::slice::from_ref(&summarize.id), PurgeOptions { dry_run: true, ..options });
    let plan = plan.unwrap();
    assert!(plan.dry_run);
    assert_eq!(plan.runs, std::slice::from_ref(&summarize.id));
    assert_eq!(plan.artifacts.len(), 1, "only the summary: `cleaned` was an input and stays with its producer");
    assert_eq!((plan.snapshots.len(), plan.index_entries, plan.files_deleted.len()), (1, 1, 1));
    assert!(snapshot_of(&ws, &summarize.id).exists() && total_file.is_dir(), "a dry run removes nothing");
    assert_eq!(ids(&tracker).len(), 4);

    let done = tracker.catalog().purge(std::slice::from_ref(&summarize.id), options).unwrap();
    assert_eq!(done.runs, plan.runs);
    assert_eq!(done.artifacts, plan.artifacts, "the dry run predicted exactly what went");
    assert_eq!(done.files_deleted, plan.files_deleted);
    assert!(!snapshot_of(&ws, &summarize.id).exists());
    assert!(!total_file.exists(), "the run's own output directory goes with its last file");
    assert_eq!(ids(&tracker).len(), 3);

    // With its reader gone, `clean`'s output is linked by no remaining run and goes with it.
    let gone = tracker.catalog().purge(std::slice::from_ref(&clean.id), options).unwrap();
    assert_eq!(gone.artifacts.len(), 1, "`cleaned` is linked by no remaining run");
    assert_eq!(gone.files_deleted.len(), 1);

    // Nothing purged comes back: not from a rebuild, not as a cache hit.
    drop(tracker);
    std::fs::remove_file(ws.db()).unwrap();
    let catalog = Catalog::duckdb(ws.db(), Duration::from_secs(5));
    assert_eq!(catalog.rebuild(&ws.run_dir()).unwrap().restored, 2);
    let tracker = ws.tracker();
    let mut remaining = ids(&tracker);
    remaining.retain(|id| *id == clean.id || *id == summarize.id);
    assert!(remaining.is_empty(), "purged runs stay purged after a rebuild");
    let (again, again_down) = pipeline(&tracker, 10, &runs);
    assert_eq!(runs.get(), 6, "both purged steps execute again: their cache entries are gone");
    assert!(!again.is_cache_hit() && !again_down.is_cache_hit());
    let (hit, _) = pipeline(&tracker, 20, &runs);
    assert_eq!((runs.get(), hit.cache_source()), (6, Some(other_clean.id.as_str())), "the others still hit");
}

#[test]
fn purging_a_producer_keeps_artifacts_that_remaining_runs_read() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let tracker = ws.tracker();
    let (clean, summarize) = pipeline(&tracker, 10, &runs);
    let report = tracker
        .catalog()
        .purge(std::slice::from_ref(&clean.id), PurgeOptions { delete_files: true, ..PurgeOptions::default() })
        .unwrap();
    assert!(report.artifacts.is_empty(), "summarize still reads `cleaned`");
    assert!(report.files_deleted.is_empty());
    let inputs = tracker.artifacts_for_run(&summarize.id).unwrap().inputs;
    let cleaned = &inputs["cleaned"];
    assert!(cleaned.path.exists(), "the file a remaining run read is kept");
    let lineage = tracker.artifact_lineage(&cleaned.id, 3).unwrap();
    assert!(lineage.producer_missing && lineage.render().contains(&format!("[producer {} purged]", clean.id)));
}

#[test]
fn purging_a_scenario_takes_its_steps_and_refuses_a_live_one() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let scenario = tracker.scenario("baseline").start().unwrap();
    scenario.step("a").code_version("1").outputs(["x"]).run(|_| Ok(Value(1))).unwrap();
    scenario.step("b").code_version("1").outputs(["y"]).run(|_| Ok(Value(2))).unwrap();
    let header = scenario.id().to_owned();

    let live = tracker.catalog().purge(std::slice::from_ref(&header), PurgeOptions::default()).unwrap_err();
    assert!(matches!(live, Error::Refused(_)), "{live}");
    assert!(live.to_string().contains("--force"), "{live}");
    scenario.finish().unwrap();

    let lone = tracker.catalog().purge(
        std::slice::from_ref(&header),
        PurgeOptions { include_children: false, dry_run: true, ..PurgeOptions::default() },
    );
    assert_eq!(lone.unwrap().runs, std::slice::from_ref(&header));
    let report = tracker.catalog().purge(std::slice::from_ref(&header), PurgeOptions::default()).unwrap();
    assert_eq!(report.runs.len(), 3);
    assert_eq!(report.children.len(), 2);
    assert!(ids(&tracker).is_empty());
    let missing = tracker.catalog().purge(&["nope".to_owned()], PurgeOptions::default()).unwrap_err();
    assert!(matches!(missing, Error::RunNotFound(_)));
}

#[test]
fn merge_copies_runs_serves_hits_and_survives_a_rebuild() {
    let (here, there) = (Workspace::new(), Workspace::new());
    let runs = Counter::default();
    let (local, _) = pipeline(&here.tracker(), 1, &runs);
    let (remote_clean, remote_sum) = pipeline(&there.tracker(), 2, &runs);
    assert_eq!(runs.get(), 4);
    let source = Catalog::duckdb(there.db(), Duration::from_secs(5));
    let target = Catalog::duckdb(here.db(), Duration::from_secs(5));

    let preview = target.merge(&source, OnConflict::Error, true).unwrap();
    assert_eq!((preview.merged.len(), preview.index_entries), (2, 2));
    assert_eq!(target.find_runs(&RunQuery::default()).unwrap().len(), 2, "a dry run writes nothing");
    let report = target.merge(&source, OnConflict::Error, false).unwrap();
    assert_eq!(report.merged, [remote_clean.id.clone(), remote_sum.id.clone()], "oldest first");
    assert_eq!(report.artifact_links, 3, "clean: 1 output; summarize: 1 input, 1 output");

    // The merged runs' outputs serve cache hits here.
    let (hit, hit_down) = pipeline(&here.tracker(), 2, &runs);
    assert_eq!(runs.get(), 4, "nothing executes");
    assert_eq!(hit.cache_source(), Some(remote_clean.id.as_str()));
    assert_eq!(hit_down.cache_source(), Some(remote_sum.id.as_str()));

    // Merging again changes nothing.
    let again = target.merge(&source, OnConflict::Error, false).unwrap();
    assert!(again.merged.is_empty());
    assert_eq!(again.already_present.len(), 2);

    // The merged runs live in snapshots elsewhere, yet a rebuild here restores them.
    std::fs::remove_file(here.db()).unwrap();
    assert_eq!(target.rebuild(&here.run_dir()).unwrap().restored, 6, "2 local, 2 merged, 2 hits");
    let restored: Vec<String> = target.find_runs(&RunQuery::default()).unwrap().into_iter().map(|r| r.id).collect();
    assert!(restored.contains(&remote_sum.id) && restored.contains(&local.id));
}

#[test]
fn merge_refuses_conflicts_unless_told_to_skip_them() {
    let (here, there) = (Workspace::new(), Workspace::new());
    let runs = Counter::default();
    pipeline(&there.tracker(), 2, &runs);
    let source = Catalog::duckdb(there.db(), Duration::from_secs(5));
    let target = Catalog::duckdb(here.db(), Duration::from_secs(5));
    target.merge(&source, OnConflict::Error, false).unwrap();
    // The same run id now records a different outcome in the source.
    there.sql().execute_batch("UPDATE run SET status = 'failed' WHERE model_name = 'clean'").unwrap();

    let err = target.merge(&source, OnConflict::Error, false).unwrap_err();
    assert!(matches!(err, Error::Refused(_)) && err.to_string().contains("--conflict skip"), "{err}");
    let skipped = target.merge(&source, OnConflict::Skip, false).unwrap();
    assert_eq!((skipped.conflicts_skipped.len(), skipped.already_present.len()), (1, 1));
    let clean = target.find_runs(&RunQuery::default().model("clean")).unwrap();
    assert_eq!(clean[0].status, RunStatus::Completed, "this database's version is kept");
}

#[test]
fn cli_purge_asks_for_confirmation_and_merge_names_its_problems() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let (clean, _) = pipeline(&ws.tracker(), 1, &runs);
    let db = ws.db();

    let unconfirmed = cli(&db, &["db", "purge", &clean.id[..12]]);
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("pass --yes"));
    let nothing = cli(&db, &["db", "purge"]);
    assert_eq!(nothing.status.code(), Some(2), "no selection is a usage error");
    let bad_status = cli(&db, &["db", "purge", "--status", "finished"]);
    assert_eq!(bad_status.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_status.stderr).contains("running, completed, failed"));

    let purged = cli(&db, &["db", "purge", "--model", "summarize", "--yes", "--json"]);
    assert!(purged.status.success(), "{}", String::from_utf8_lossy(&purged.stderr));
    let report: serde_json::Value = serde_json::from_slice(&purged.stdout).unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 1);
    assert_eq!(report["dry_run"], false);

    let itself = cli(&db, &["db", "merge", db.to_str().unwrap()]);
    assert_eq!(itself.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&itself.stderr).contains("merge or copy from another catalog"));
    let copy_itself = cli(&db, &["db", "copy", db.to_str().unwrap(), db.to_str().unwrap()]);
    assert_eq!(copy_itself.status.code(), Some(2), "{}", String::from_utf8_lossy(&copy_itself.stderr));
    // The library refuses it, not only the command line.
    let catalog =
        Catalog::open(&consist::CatalogLocation::parse(db.to_str().unwrap()).unwrap(), Duration::from_secs(5)).unwrap();
    assert!(matches!(catalog.copy_from(&catalog), Err(Error::SameCatalog { .. })));
    let absent = cli(&db, &["db", "merge", ws.path().join("absent.duckdb").to_str().unwrap()]);
    assert_eq!(absent.status.code(), Some(1));
    let said = String::from_utf8_lossy(&absent.stderr);
    assert!(said.contains("absent.duckdb") && said.contains("check the path given to `db merge`"), "{said}");
}

#[test]
fn compact_shrinks_the_file_after_a_purge_and_keeps_every_row() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let tracker = ws.tracker();
    let mut made = Vec::new();
    for threshold in 0..40 {
        made.push(pipeline(&tracker, threshold, &runs).0.id);
    }
    tracker.catalog().purge(&made[..30], PurgeOptions::default()).unwrap();
    drop(tracker);
    let counts = || -> Vec<i64> {
        consist::testing::TABLES.iter().map(|t| ws.scalar::<i64>(&format!("SELECT count(*) FROM {t}"))).collect()
    };
    let rows = counts();
    assert_eq!(rows[0], 50, "10 clean and 40 summarize runs remain");

    let store = consist::store::DuckDbStore::new(ws.db(), Duration::from_secs(5));
    let (before, after) = store.compact().unwrap();
    assert!(after < before, "the file shrinks: {before} -> {after} bytes");
    assert_eq!(std::fs::metadata(ws.db()).unwrap().len(), after);
    assert_eq!(counts(), rows, "every row is kept");
    let leftovers: Vec<_> = std::fs::read_dir(ws.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().contains("compacting")), "{leftovers:?}");

    // The compacted file is a working catalog: hits and new runs.
    let tracker = ws.tracker();
    pipeline(&tracker, 35, &runs);
    pipeline(&tracker, 99, &runs);
    assert_eq!(runs.get(), 80 + 2, "threshold 35 hits both steps; 99 executes both");
}

#[test]
fn purging_a_merged_run_leaves_its_source_alone_and_stays_purged() {
    // The shard's run directory lies under the main catalog's, as shards of one study often do.
    let main = Workspace::new();
    let shard_dir = main.path().join("shard");
    let shard = Tracker::builder(shard_dir.join("runs")).db_path(shard_dir.join("provenance.duckdb")).open().unwrap();
    let runs = Counter::default();
    let (_, remote) = pipeline(&shard, 3, &runs);
    let source = Catalog::duckdb(shard_dir.join("provenance.duckdb"), Duration::from_secs(5));
    let target = Catalog::duckdb(main.db(), Duration::from_secs(5));
    target.merge(&source, OnConflict::Error, false).unwrap();
    let own_snapshot = consist::testing::snapshots_dir(&shard_dir.join("runs")).join(format!("{}.json", remote.id));
    let own_output = shard_dir.join("runs/outputs").join(&remote.id);

    let options = PurgeOptions { delete_files: true, ..PurgeOptions::default() };
    let report = target.purge(std::slice::from_ref(&remote.id), options).unwrap();
    assert_eq!(report.snapshots.len(), 1, "only this catalog's copy");
    assert!(report.files_deleted.is_empty());
    assert!(report.files_kept[0].reason.contains("merged"), "{:?}", report.files_kept);
    assert!(own_snapshot.exists() && own_output.is_dir(), "the shard still records its run");
    assert_eq!(source.find_runs(&RunQuery::default()).unwrap().len(), 2);

    // A rebuild that finds the shard's own snapshot does not bring the purged run back...
    std::fs::remove_file(main.db()).unwrap();
    assert_eq!(target.rebuild(main.path()).unwrap().restored, 1, "the shard's clean run only");
    assert!(target.find_runs(&RunQuery::default().model("summarize")).unwrap().is_empty());
    // ...but merging the shard again does, deliberately.
    let again = target.merge(&source, OnConflict::Error, false).unwrap();
    assert_eq!(again.merged, std::slice::from_ref(&remote.id));
    std::fs::remove_file(main.db()).unwrap();
    assert_eq!(target.rebuild(main.path()).unwrap().restored, 2);
}

#[test]
fn records_read_back_in_bulk_match_their_snapshots() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let tracker = ws.tracker();
    let mut ids = Vec::new();
    for threshold in [1, 2] {
        let (up, down) = pipeline(&tracker, threshold, &runs);
        ids.extend([down.id, up.id]);
    }
    ids.push("not-a-run".to_owned());
    tracker.flush().unwrap();
    let store = consist::store::DuckDbStore::new(ws.db(), Duration::from_secs(5));
    let stored = consist::store::Store::run_records(&store, &ids).unwrap();
    let order: Vec<&str> = stored.iter().map(|r| r.run.id.as_str()).collect();
    assert_eq!(order, ids[..4].iter().map(String::as_str).collect::<Vec<_>>(), "in the order asked; unknown left out");
    for record in &stored {
        let snapshot = consist::testing::read(&snapshot_of(&ws, &record.run.id)).unwrap();
        let keys = |list: &[consist::Artifact]| list.iter().map(|a| (a.key.clone(), a.id.clone())).collect::<Vec<_>>();
        assert_eq!(record.config, snapshot.config);
        assert_eq!(record.facets, snapshot.facets);
        assert_eq!(record.run_dir, snapshot.run_dir);
        assert_eq!(
            (record.run.signature.as_str(), record.run.status),
            (snapshot.run.signature.as_str(), snapshot.run.status)
        );
        assert_eq!(keys(&record.inputs), keys(&snapshot.inputs));
        assert_eq!(keys(&record.outputs), keys(&snapshot.outputs));
    }
    assert_eq!(stored[0].inputs.len(), 1, "summarize read `cleaned`");
}

#[test]
fn merge_leaves_runs_still_running_for_a_later_merge() {
    let (here, there) = (Workspace::new(), Workspace::new());
    let tracker = there.tracker();
    let scenario = tracker.scenario("live").start().unwrap();
    scenario.step("a").code_version("1").outputs(["x"]).run(|_| Ok(Value(1))).unwrap();
    let source = Catalog::duckdb(there.db(), Duration::from_secs(5));
    let target = Catalog::duckdb(here.db(), Duration::from_secs(5));
    let report = target.merge(&source, OnConflict::Error, false).unwrap();
    assert_eq!(report.running_skipped, [scenario.id().to_owned()], "the header is still running");
    assert_eq!(report.merged.len(), 1, "its finished step is merged");
    scenario.finish().unwrap();
    let later = target.merge(&source, OnConflict::Error, false).unwrap();
    assert_eq!((later.merged.len(), later.already_present.len()), (1, 1), "the finished header follows");
}
