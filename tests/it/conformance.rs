//! The store conformance suite: one set of checks, written once against the `Store` trait, that
//! every backend must pass with the same results. Records are produced by a real tracker (on its
//! own DuckDB catalog), read back from their snapshots, and written into the store under test, so
//! the suite exercises only the trait.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use consist::store::DuckDbStore;
use consist::store::Store;
use consist::{ArtifactQuery, Direction, RunQuery, RunRecord, RunStatus, Value};

use crate::support::Workspace;

/// A small workflow's records, oldest first: a scenario header `sweep` with children `clean`
/// (iterations 0 and 1, tag `prep`, facet `threshold`), `summarize` reading `cleaned`, and a
/// cache hit of `clean` iteration 0.
fn workflow_records(ws: &Workspace) -> Vec<RunRecord> {
    let tracker = ws.tracker();
    let sweep = tracker.scenario("sweep").tag("study").start().unwrap();
    let clean = |threshold: i64, iteration: i32| {
        sweep
            .step("clean")
            .code_version("1")
            .config(&serde_json::json!({ "threshold": threshold }))
            .facet_from(["threshold"])
            .tag("prep")
            .iteration(iteration)
            .outputs(["cleaned"])
            .run(move |_| Ok(Value(vec![threshold, threshold + 1])))
            .unwrap()
    };
    let first = clean(1, 0);
    clean(2, 1);
    sweep
        .step("summarize")
        .code_version("1")
        .input("cleaned", first.output("cleaned").unwrap())
        .outputs(["total"])
        .run(|ctx| Ok(Value(ctx.load::<Value<Vec<i64>>>("cleaned")?.0.iter().sum::<i64>())))
        .unwrap();
    assert!(clean(1, 0).cache_hit());
    sweep.finish().unwrap();
    tracker.flush().unwrap();
    let mut records: Vec<RunRecord> =
        consist::testing::find_all(&ws.run_dir()).unwrap().iter().map(|p| consist::testing::read(p).unwrap()).collect();
    records.sort_by(|a, b| (a.run.created_at, &a.run.id).cmp(&(b.run.created_at, &b.run.id)));
    assert_eq!(records.len(), 5, "header + 4 children");
    records
}

fn ids_in_order(runs: &[consist::Run]) -> Vec<&str> {
    runs.iter().map(|r| r.id.as_str()).collect()
}

fn ids(runs: impl IntoIterator<Item = consist::Run>) -> BTreeSet<String> {
    runs.into_iter().map(|r| r.id).collect()
}

fn find(store: &dyn Store, query: RunQuery) -> BTreeSet<String> {
    ids(store.find_runs(&query).unwrap())
}

/// Every check of the suite, against the store that `open` makes in an empty directory.
pub fn conformance(open: &dyn Fn(&Path) -> Box<dyn Store>) {
    let source = Workspace::new();
    let records = workflow_records(&source);
    let by_model = |model: &str| -> Vec<&RunRecord> { records.iter().filter(|r| r.run.model_name == model).collect() };
    let header = by_model("sweep")[0];
    let cleans = by_model("clean");
    let (clean0, clean1, hit) = (cleans[0], cleans[1], cleans[2]);
    let summarize = by_model("summarize")[0];
    let all: BTreeSet<String> = records.iter().map(|r| r.run.id.clone()).collect();

    let target = tempfile::tempdir().unwrap();
    let store = open(target.path());
    let store = store.as_ref();

    // Writing: init is idempotent, and so is writing the same records again.
    store.init().unwrap();
    store.init().unwrap();
    store.write(&records).unwrap();
    store.write(&records).unwrap();
    assert_eq!(find(store, RunQuery::default()), all, "each run exactly once");
    let summary = store.summary().unwrap();
    assert_eq!(
        (summary.runs, summary.completed, summary.failed, summary.running, summary.cache_hits, summary.scenarios),
        (5, 5, 0, 0, 1, 1),
        "{summary:?}"
    );
    assert_eq!(summary.cache_hit_ratio, Some(0.25), "one hit among four completed steps");
    let micros = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_micros());
    let created = records.iter().map(|r| r.run.created_at.timestamp_micros());
    assert_eq!(micros(summary.first_run), created.clone().min());
    assert_eq!(micros(summary.last_run), created.max());
    let models: Vec<(&str, i64, i64, i64)> =
        summary.models.iter().map(|m| (m.model.as_str(), m.runs, m.cache_hits, m.failed)).collect();
    assert_eq!(models, [("clean", 3, 1, 0), ("summarize", 1, 0, 0), ("sweep", 1, 0, 0)]);

    // Filters.
    assert_eq!(find(store, RunQuery::default().model("clean")).len(), 3);
    assert_eq!(find(store, RunQuery::default().parent(&header.run.id)).len(), 4);
    assert_eq!(find(store, RunQuery::default().iteration(1)), BTreeSet::from([clean1.run.id.clone()]));
    assert_eq!(find(store, RunQuery::default().tag("prep")).len(), 3);
    assert_eq!(find(store, RunQuery::default().tag("study")), BTreeSet::from([header.run.id.clone()]));
    assert_eq!(find(store, RunQuery::default().facet("threshold", 2)), BTreeSet::from([clean1.run.id.clone()]));
    assert_eq!(find(store, RunQuery::default().facet("threshold", 1)).len(), 2, "the run and its hit");
    assert_eq!(find(store, RunQuery::default().status(RunStatus::Failed)).len(), 0);
    let newest = store.find_runs(&RunQuery::default().limit(2)).unwrap();
    assert_eq!(newest.len(), 2);
    assert!(newest[0].created_at >= newest[1].created_at, "newest first");
    let prefix = RunQuery { id_prefix: Some(summarize.run.id[..12].to_owned()), ..RunQuery::default() };
    assert_eq!(find(store, prefix), BTreeSet::from([summarize.run.id.clone()]));
    assert_eq!(find(store, RunQuery::default().text("SUMMARIZE")), BTreeSet::from([summarize.run.id.clone()]));
    assert_eq!(find(store, RunQuery::default().text("threshold").model("clean")).len(), 3, "text in the config");
    assert_eq!(find(store, RunQuery::default().cache_hit(true)), BTreeSet::from([hit.run.id.clone()]));
    assert_eq!(find(store, RunQuery::default().cache_hit(false).model("clean")).len(), 2);
    let two =
        RunQuery { ids: vec![clean1.run.id.clone(), header.run.id.clone(), "nope".into()], ..RunQuery::default() };
    assert_eq!(find(store, two.clone()), BTreeSet::from([clean1.run.id.clone(), header.run.id.clone()]));
    // Counts, orders and pages: the same filters, every order a total one (pages never overlap).
    assert_eq!(store.count_runs(&RunQuery::default().model("clean").limit(1)).unwrap(), 3, "limit aside");
    assert_eq!(store.count_runs(&two).unwrap(), 2);
    for by in consist::RunSort::ALL {
        for ascending in [false, true] {
            let order = consist::RunOrder { by, ascending };
            let whole = store.find_runs(&RunQuery::default().order(order)).unwrap();
            let mut paged = Vec::new();
            for page in 0..3 {
                paged.extend(store.find_runs(&RunQuery::default().order(order).offset(page * 2).limit(2)).unwrap());
            }
            let listed: Vec<&str> = whole.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(listed, paged.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), "{order:?} pages");
            let mut sorted = whole.clone();
            sorted.sort_by(|a, b| order.compare(a, b));
            assert_eq!(ids_in_order(&sorted), listed, "{order:?}: the store's order is the one in memory");
        }
    }
    // The runs around a run, upstream and downstream, with their hops.
    let around = |start: consist::LineageStart, up, down| {
        let mut found = store.neighbourhood(&start, up, down).unwrap();
        found.sort();
        found
    };
    let run = |id: &str| consist::LineageStart::Run(id.to_owned());
    assert_eq!(around(run(&summarize.run.id), 3, 0), [(clean0.run.id.clone(), -1), (summarize.run.id.clone(), 0)]);
    assert_eq!(around(run(&clean0.run.id), 0, 3), [(clean0.run.id.clone(), 0), (summarize.run.id.clone(), 1)]);
    assert_eq!(around(run(&summarize.run.id), 0, 0), [(summarize.run.id.clone(), 0)]);
    let cleaned = consist::LineageStart::Artifact(clean0.outputs[0].id.clone());
    assert_eq!(around(cleaned, 5, 5), [(clean0.run.id.clone(), -1), (summarize.run.id.clone(), 1)]);
    let readers = RunQuery::default().input("cleaned");
    assert_eq!(
        find(store, readers.clone()),
        BTreeSet::from([summarize.run.id.clone()]),
        "the runs that read `cleaned`"
    );
    assert!(find(store, RunQuery::default().input("total")).is_empty(), "an output key nobody reads");
    assert!(readers.matches(summarize) && !readers.matches(clean0), "the same filter on records not yet stored");

    // Records round-trip.
    let back = store.run_record(&clean0.run.id).unwrap().expect("stored");
    assert_eq!((back.run.signature.as_str(), &back.config), (clean0.run.signature.as_str(), &clean0.config));
    assert_eq!(back.outputs.len(), 1);
    assert_eq!(back.outputs[0].hash, clean0.outputs[0].hash);
    assert_eq!(store.get_run(&hit.run.id).unwrap().unwrap().cache_source(), Some(clean0.run.id.as_str()));
    assert!(store.run_record("no-such-run").unwrap().is_none());
    let some = store.run_records(&[clean1.run.id.clone(), "no-such-run".to_owned(), summarize.run.id.clone()]).unwrap();
    assert_eq!(ids(some.into_iter().map(|r| r.run)), BTreeSet::from([clean1.run.id.clone(), summarize.run.id.clone()]));

    // The cache source of a signature: the run that executed, never its hit.
    let source_run = store.cache_sources(&clean0.run.signature, 1).unwrap().pop().expect("a completed run");
    assert_eq!(source_run.run.id, clean0.run.id);
    assert_eq!(source_run.outputs.len(), 1);
    assert!(store.cache_sources("0000", 4).unwrap().is_empty());

    // Artifacts and lineage.
    let links = store.run_artifacts(&summarize.run.id).unwrap();
    let directions: Vec<(Direction, String)> = links.iter().map(|(d, a)| (*d, a.key.clone())).collect();
    assert!(directions.contains(&(Direction::Input, "cleaned".to_owned())), "{directions:?}");
    assert!(directions.contains(&(Direction::Output, "total".to_owned())), "{directions:?}");
    let created = store.find_artifacts(&ArtifactQuery::created_by(&clean1.run.id)).unwrap();
    assert_eq!(created.len(), 1);
    let consumed = store.find_artifacts(&ArtifactQuery::consumed_by(&summarize.run.id)).unwrap();
    assert_eq!(consumed[0].id, clean0.outputs[0].id);
    // A key names the output of the run that started last: the hit of clean0, after clean1.
    let latest = store.latest_artifact("cleaned").unwrap().unwrap();
    assert!(hit.run.started_at > clean1.run.started_at);
    assert_eq!(latest.id, clean0.outputs[0].id, "what the latest run returned, not the newest file");
    let total = &summarize.outputs[0];
    let tree = store.lineage(&total.id, 3).unwrap().expect("the artifact is stored");
    let producer = tree.producer.as_ref().expect("a producing run");
    assert_eq!(producer.run.id, summarize.run.id);
    assert_eq!(producer.inputs[0].artifact.id, clean0.outputs[0].id);
    assert!(store.lineage("no-such-artifact", 3).unwrap().is_none());
    // Found as find_artifact finds it: by an id's start, or by key as latest_artifact finds it.
    let by_prefix = store.lineage(&total.id[..10], 3).unwrap().expect("by id prefix");
    assert_eq!(by_prefix.artifact.id, total.id);
    assert_eq!(by_prefix.producer.as_ref().map(|p| p.run.id.as_str()), Some(summarize.run.id.as_str()));
    let by_key = store.lineage("cleaned", 1).unwrap().expect("by key");
    assert_eq!(by_key.artifact.id, clean0.outputs[0].id, "what the latest run under the key returned");
    assert_eq!(store.find_artifact(&total.id[..10]).unwrap().unwrap().id, total.id, "by id prefix");
    assert_eq!(store.find_artifact("cleaned").unwrap().unwrap().id, clean0.outputs[0].id, "by key");

    // Overview.
    let scenarios = store.scenarios(10).unwrap();
    assert_eq!((scenarios.len(), scenarios[0].name.as_str()), (1, "sweep"));
    let integrity = store.integrity().unwrap();
    assert_eq!((integrity.orphan_artifacts, integrity.dangling_links), (0, 0));

    // Read-only SQL.
    let counted = store.query("SELECT count(*) AS n FROM run", consist::store::QueryAccess::CatalogOnly).unwrap();
    assert_eq!(counted.rows[0][0], serde_json::json!(5));
    assert!(matches!(
        store.query("DELETE FROM run", consist::store::QueryAccess::CatalogOnly),
        Err(consist::Error::Query { .. })
    ));
    assert_eq!(store.summary().unwrap().runs, 5, "the refused write changed nothing");

    // The catalog's identity: made once, the same on every read.
    let identity = store.identity().unwrap().expect("a catalog written by this consist has an id");
    assert_eq!(store.identity().unwrap().as_ref(), Some(&identity));
    assert_eq!(store.identity_seen().as_ref(), Some(&identity));

    // Purge: a dry run changes nothing; a real one removes the run and its own outputs, records
    // the purge, and raises the purge epoch.
    let dry = store.purge(std::slice::from_ref(&clean1.run.id), true).unwrap();
    assert_eq!(dry.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), [clean1.outputs[0].id.as_str()]);
    assert_eq!(store.summary().unwrap().runs, 5);
    assert!(store.purged().unwrap().is_empty(), "a dry run records no purge");
    store.purge(std::slice::from_ref(&clean1.run.id), false).unwrap();
    assert!(store.get_run(&clean1.run.id).unwrap().is_none());
    assert_eq!(store.purged().unwrap(), std::collections::HashSet::from([clean1.run.id.clone()]));
    let after = store.identity().unwrap().unwrap();
    assert_eq!((after.id.as_str(), after.purge_epoch), (identity.id.as_str(), identity.purge_epoch + 1));
    // A queue that still holds the purged run does not write it back; forgetting the purge does.
    store.write(&records).unwrap();
    assert!(store.get_run(&clean1.run.id).unwrap().is_none(), "the purged run is not written back");
    assert_eq!(store.summary().unwrap().runs, 4);
    store.unpurge(std::slice::from_ref(&clean1.run.id)).unwrap();
    store.write(std::slice::from_ref(clean1)).unwrap();
    assert!(store.get_run(&clean1.run.id).unwrap().is_some());
    store.purge(std::slice::from_ref(&clean1.run.id), false).unwrap();

    // A rebuild's write: the named runs are replaced and removed, the others stay.
    let mut renamed = summarize.clone();
    renamed.run.description = Some("rebuilt".into());
    store.replace_runs(std::slice::from_ref(&renamed), std::slice::from_ref(&hit.run.id)).unwrap();
    assert_eq!(store.get_run(&summarize.run.id).unwrap().unwrap().description.as_deref(), Some("rebuilt"));
    assert!(store.get_run(&hit.run.id).unwrap().is_none());
    assert_eq!(
        find(store, RunQuery::default()),
        BTreeSet::from([header.run.id.clone(), clean0.run.id.clone(), summarize.run.id.clone()])
    );
    assert_eq!(store.run_record(&summarize.run.id).unwrap().unwrap().inputs.len(), 1, "links written again");
    // A run that finished while a rebuild read its older `running` snapshot stays finished.
    let mut stale = summarize.clone();
    stale.run.status = RunStatus::Running;
    stale.run.ended_at = None;
    store.replace_runs(std::slice::from_ref(&stale), &[]).unwrap();
    assert_eq!(store.get_run(&summarize.run.id).unwrap().unwrap().status, RunStatus::Completed);
    assert!(
        store
            .find_artifacts(&ArtifactQuery::default().key("cleaned"))
            .unwrap()
            .iter()
            .all(|a| a.id != clean1.outputs[0].id)
    );

    // A run that just started is visible while it executes; its finished record completes it.
    let mut started = summarize.clone();
    started.run.id = "summarize_started".into();
    started.run.status = RunStatus::Running;
    started.run.ended_at = None;
    started.outputs.clear();
    store.write_started(std::slice::from_ref(&started)).unwrap();
    assert_eq!(store.get_run("summarize_started").unwrap().unwrap().status, RunStatus::Running);
    let mut finished = summarize.clone();
    finished.run.id = "summarize_started".into();
    store.write(std::slice::from_ref(&finished)).unwrap();
    let back = store.run_record("summarize_started").unwrap().unwrap();
    assert_eq!((back.run.status, back.inputs.len()), (RunStatus::Completed, 1));
    // A batch that holds a run twice writes its last state.
    let (mut again_started, mut again) = (started.clone(), finished.clone());
    again_started.run.id = "summarize_twice".into();
    again.run.id = "summarize_twice".into();
    store.write(&[again_started, again]).unwrap();
    assert_eq!(store.get_run("summarize_twice").unwrap().unwrap().status, RunStatus::Completed);
    // A run `fail-zombies` marked failed that completed after all (its lease had lapsed) takes
    // its completion; a run that failed of itself stays failed, whatever is written later.
    for (id, zombie) in [("summarize_zombie", true), ("summarize_failed", false)] {
        let mut failed = started.clone();
        failed.run.id = id.into();
        failed.run.status = RunStatus::Failed;
        failed.run.ended_at = summarize.run.ended_at;
        if zombie {
            failed.run.meta.insert("failed_as_zombie".into(), true.into());
        }
        store.write(std::slice::from_ref(&failed)).unwrap();
        let mut done = summarize.clone();
        done.run.id = id.into();
        store.write(std::slice::from_ref(&done)).unwrap();
        let status = store.get_run(id).unwrap().unwrap().status;
        assert_eq!(status, if zombie { RunStatus::Completed } else { RunStatus::Failed }, "{id}");
    }

    // A NUL character in a run's text: DuckDB keeps it; PostgreSQL, which cannot hold one, gets
    // U+FFFD instead, and its summary and filters still read the catalog. Marking the run (a pin,
    // gc's eviction) sets or removes one key of its meta and keeps the rest as it was.
    let mut odd = summarize.clone();
    odd.run.id = "summarize_nul".into();
    odd.run.meta.insert("note".into(), "a\u{0}b".into());
    odd.run.description = Some("with a \u{0} in it".into());
    store.write(std::slice::from_ref(&odd)).unwrap();
    let note = store.get_run("summarize_nul").unwrap().unwrap().meta.get("note").cloned();
    assert!(["a\u{0}b", "a\u{FFFD}b"].map(serde_json::Value::from).contains(note.as_ref().unwrap()), "{note:?}");
    store.summary().unwrap();
    assert!(find(store, RunQuery { cache_hit: Some(false), ..RunQuery::default() }).contains("summarize_nul"));
    let pin =
        |value: Option<serde_json::Value>| store.set_run_meta("pinned", &[("summarize_nul".into(), value)], false);
    assert_eq!(pin(Some(true.into())).unwrap(), 1);
    let meta = store.get_run("summarize_nul").unwrap().unwrap().meta;
    assert_eq!((meta.get("note"), meta.get("pinned")), (note.as_ref(), Some(&true.into())));
    assert_eq!(pin(None).unwrap(), 1);
    let meta = store.get_run("summarize_nul").unwrap().unwrap().meta;
    assert_eq!((meta.get("note"), meta.get("pinned")), (note.as_ref(), None));

    // Replace everything: exactly the given records remain.
    let kept: Vec<RunRecord> = vec![header.clone(), clean0.clone()];
    store.replace_all(&kept).unwrap();
    assert_eq!(find(store, RunQuery::default()), BTreeSet::from([header.run.id.clone(), clean0.run.id.clone()]));
    assert_eq!(store.run_record(&clean0.run.id).unwrap().unwrap().outputs.len(), 1);
}

#[test]
fn the_duckdb_store_conforms() {
    conformance(&|dir| Box::new(DuckDbStore::new(dir.join("conformance.duckdb"), Duration::from_secs(5))));
}

#[test]
fn the_postgres_store_conforms() {
    let Some(server) = crate::support::pg::PgServer::start() else { return };
    let url = server.database("conformance");
    conformance(&|_| Box::new(consist::store::PgStore::new(&url, Duration::from_secs(10)).unwrap()));
}

/// PostgreSQL's estimate of the rows in `run`, read through the catalog's own query (-1 before
/// the table was ever analysed).
fn estimated_runs(url: &str) -> f64 {
    let location = consist::CatalogLocation::parse(url).unwrap();
    let catalog = consist::Catalog::open(&location, Duration::from_secs(10)).unwrap();
    let rows = catalog.query("SELECT reltuples::float8 AS n FROM pg_class WHERE oid = 'run'::regclass").unwrap();
    rows.rows[0][0].as_f64().expect("a number")
}

#[test]
fn a_bulk_write_gives_postgres_statistics_and_a_tracker_batch_does_not() {
    let Some(server) = crate::support::pg::PgServer::start() else { return };
    let url = server.database("statistics");
    let store = consist::store::PgStore::new(&url, Duration::from_secs(10)).unwrap();
    store.init().unwrap();
    // Autovacuum, which would analyse the tables on its own some time later, stays out of the way.
    for table in consist::store::TABLES {
        server.psql("statistics", &format!("ALTER TABLE {table} SET (autovacuum_enabled = false)"));
    }
    let template = workflow_records(&Workspace::new()).pop().unwrap();
    let copies = |from: usize, count: usize| -> Vec<RunRecord> {
        (from..from + count)
            .map(|i| {
                let mut record = template.clone();
                record.run.id = format!("bulk_{i:06}");
                for artifact in record.outputs.iter_mut() {
                    artifact.id = format!("{}-{i}", artifact.id);
                    artifact.run_id = Some(record.run.id.clone());
                }
                record
            })
            .collect()
    };
    // A write of fewer than 1,000 runs (a tracker's usual batch) leaves the statistics to autovacuum.
    store.write(&copies(0, 200)).unwrap();
    assert!(estimated_runs(&url) < 1.0, "no ANALYZE after a small batch");
    // A bulk write analyses the tables it filled, so the planner knows their size at once.
    store.write(&copies(200, 1_000)).unwrap();
    let estimate = estimated_runs(&url);
    assert!((estimate - 1_200.0).abs() < 1.0, "ANALYZE counted the 1,200 runs: {estimate}");
    // The table grew by more than a tenth since: analysed again.
    store.write(&copies(1_200, 1_000)).unwrap();
    assert!((estimated_runs(&url) - 2_200.0).abs() < 1.0, "1,000 runs after 1,200: analysed again");
    // A bulk write into a table far bigger than it (as PostgreSQL last measured it) leaves the
    // statistics as they are.
    server.psql("statistics", "UPDATE pg_class SET reltuples = 2000000, relpages = 100000 WHERE oid = 'run'::regclass");
    store.write(&copies(2_200, 1_000)).unwrap();
    assert_eq!(estimated_runs(&url), 2_000_000.0, "1,000 runs into 2,000,000: not analysed");

    // A role that may write but does not own the tables may not analyse them: its bulk write
    // still succeeds whole, and the statistics stay as they were.
    server.psql("statistics", "CREATE ROLE writer LOGIN; GRANT ALL ON ALL TABLES IN SCHEMA public TO writer");
    server.psql("statistics", "UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid = 'run'::regclass");
    let as_writer = url.replace("consist@", "writer@");
    let writer = consist::store::PgStore::new(&as_writer, Duration::from_secs(10)).unwrap();
    writer.write(&copies(3_200, 1_000)).unwrap();
    assert_eq!(store.find_runs(&RunQuery::default()).unwrap().len(), 4_200, "every run written");
    assert_eq!(estimated_runs(&url), -1.0, "not analysed by a role that does not own the tables");
}

#[test]
fn postgres_leases_have_one_holder_at_a_time_and_lapse_unless_renewed() {
    use consist::store::LeaseState;
    let Some(server) = crate::support::pg::PgServer::start() else { return };
    let url = server.database("leases");
    let store = consist::store::PgStore::new(&url, Duration::from_secs(10)).unwrap();
    let leases = store.leases().expect("a shared catalog has leases");
    let ttl = Duration::from_millis(800);
    assert_eq!(leases.take("sig:a", "h1", "run_1", "node-1", ttl).unwrap(), LeaseState::Taken);
    assert_eq!(leases.take("sig:a", "h1", "run_1", "node-1", ttl).unwrap(), LeaseState::Taken, "its holder again");
    let held = leases.take("sig:a", "h2", "run_2", "node-2", ttl).unwrap();
    assert_eq!(held, LeaseState::Held { host: Some("node-1".into()), run_id: Some("run_1".into()) });
    assert_eq!(leases.live_runs().unwrap(), std::collections::HashSet::from(["run_1".to_owned()]));
    // Renewed, it outlives its first time-to-live; not renewed, it lapses and another takes it.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(leases.renew(&["h1".to_owned(), "h2".to_owned()], ttl).unwrap(), 1, "only its holder's lease");
    std::thread::sleep(Duration::from_millis(500));
    assert!(matches!(leases.take("sig:a", "h2", "run_2", "node-2", ttl).unwrap(), LeaseState::Held { .. }));
    std::thread::sleep(Duration::from_millis(900));
    assert!(leases.live_runs().unwrap().is_empty(), "lapsed");
    assert_eq!(leases.take("sig:a", "h2", "run_2", "node-2", ttl).unwrap(), LeaseState::Taken);
    leases.release("sig:a", "h1").unwrap();
    assert_eq!(leases.live_runs().unwrap().len(), 1, "only its holder releases it");
    leases.release("sig:a", "h2").unwrap();
    assert!(leases.live_runs().unwrap().is_empty());
    let unopened = DuckDbStore::new("never-opened.duckdb", Duration::from_secs(1));
    assert!(unopened.leases().is_none(), "a DuckDB catalog uses lock files beside it instead");
}

#[test]
fn postgres_catalogs_get_an_index_for_newest_first_listings_where_the_role_may_create_it() {
    let Some(server) = crate::support::pg::PgServer::start() else { return };
    let url = server.database("listing");
    let store = consist::store::PgStore::new(&url, Duration::from_secs(10)).unwrap();
    store.write(&workflow_records(&Workspace::new())).unwrap();
    // A role that may read and write but does not own the tables; the index is read through its
    // catalog (opening one as the owner would create it).
    server.psql("listing", "CREATE ROLE lister LOGIN; GRANT ALL ON ALL TABLES IN SCHEMA public TO lister");
    let as_lister = url.replace("consist@", "lister@");
    let index = || -> Vec<String> {
        let location = consist::CatalogLocation::parse(&as_lister).unwrap();
        let catalog = consist::Catalog::open(&location, Duration::from_secs(10)).unwrap();
        let rows = catalog.query("SELECT indexdef FROM pg_indexes WHERE indexname = 'consist_ix_run_listing'").unwrap();
        rows.rows.iter().map(|r| r[0].as_str().unwrap_or_default().to_owned()).collect()
    };
    let made = index();
    assert_eq!(made.len(), 1, "a new catalog has it");
    assert!(made[0].contains(r#"(created_at, id COLLATE "C")"#), "in the listings' order: {}", made[0]);
    let newest_first = store.find_runs(&RunQuery::default()).unwrap();

    // A catalog without it (made before it existed) gets it from the next store to open it,
    // unless another session holds the migration lock (then it waits for a later store).
    server.psql("listing", "DROP INDEX consist_ix_run_listing");
    assert!(index().is_empty());
    let blocked = consist::store::PgStore::new(&url, Duration::from_secs(10)).unwrap();
    let mut holder = server.client("listing");
    let mut tx = holder.transaction().unwrap();
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&0x0063_6f6e_7369_7374_i64]).unwrap();
    assert_eq!(blocked.find_runs(&RunQuery::default()).unwrap(), newest_first, "not kept waiting");
    assert!(index().is_empty(), "another session held the migration lock");
    tx.rollback().unwrap();
    let later = consist::store::PgStore::new(&url, Duration::from_secs(10)).unwrap();
    assert_eq!(later.find_runs(&RunQuery::default()).unwrap(), newest_first, "the same runs in the same order");
    assert_eq!(index().len(), 1, "added when found missing");

    // A role that does not own the tables may not create it, and does not try: it reads and
    // writes all the same.
    server.psql("listing", "DROP INDEX consist_ix_run_listing");
    let lister = consist::store::PgStore::new(&as_lister, Duration::from_secs(10)).unwrap();
    assert_eq!(lister.find_runs(&RunQuery::default()).unwrap(), newest_first);
    lister.write(&workflow_records(&Workspace::new())).unwrap();
    assert_eq!(lister.find_runs(&RunQuery::default()).unwrap().len(), newest_first.len() * 2);
    assert!(index().is_empty(), "not created by a role that does not own the table");
}

/// A run another tool (or an earlier consist) wrote to PostgreSQL with a `\u0000` in its `meta`:
/// PostgreSQL's `->>` refuses such a document for the whole query, so before the reads guarded
/// against it, one such row failed the summary, the hit filters, the scenario list and every
/// later batch that met it. It now reads as a run without meta flags.
#[test]
fn a_postgres_run_whose_meta_holds_a_nul_escape_does_not_break_reads_or_writes() {
    let Some(server) = crate::support::pg::PgServer::start() else { return };
    let url = server.database("nul_rows");
    let store = consist::store::PgStore::new(&url, Duration::from_secs(10)).unwrap();
    let records = workflow_records(&Workspace::new());
    store.write(&records).unwrap();
    let hit = records.iter().find(|r| r.run.meta.get("cache_hit") == Some(&true.into())).unwrap();
    let summarize = records.iter().find(|r| r.run.model_name == "summarize").unwrap();
    // The hit's meta gets a NUL escape; summarize is marked failed, as fail-zombies does, with one.
    let nul = r#"{"note": "a\u0000b", "cache_hit": true, "failed_as_zombie": true}"#;
    server.psql(
        "nul_rows",
        &format!("UPDATE run SET meta = '{nul}' WHERE id IN ('{}', '{}')", hit.run.id, summarize.run.id),
    );
    server.psql("nul_rows", &format!("UPDATE run SET status = 'failed' WHERE id = '{}'", summarize.run.id));

    let summary = store.summary().unwrap();
    assert_eq!((summary.runs, summary.cache_hits), (5, 0), "the unreadable meta counts as no flags");
    assert!(find(&store, RunQuery { cache_hit: Some(false), ..RunQuery::default() }).contains(&hit.run.id));
    assert_eq!(store.scenarios(10).unwrap().len(), 1);
    // A batch that meets the failed run reads its zombie flag as absent: it stays failed.
    store.write(std::slice::from_ref(summarize)).unwrap();
    assert_eq!(store.get_run(&summarize.run.id).unwrap().unwrap().status, RunStatus::Failed);
    // An executed run whose meta cannot be read (an `evicted` mark could be in it) is never a
    // cache source, and looking its signature up does not fail.
    let executed = records.iter().find(|r| r.run.model_name == "clean" && r.run.iteration == Some(1)).unwrap();
    assert_eq!(store.cache_sources(&executed.run.signature, 10).unwrap().len(), 1);
    let evicted = r#"{"note": "a\u0000b", "evicted": {"files": 1}}"#;
    server.psql("nul_rows", &format!("UPDATE run SET meta = '{evicted}' WHERE id = '{}'", executed.run.id));
    assert!(store.cache_sources(&executed.run.signature, 10).unwrap().is_empty());
}
