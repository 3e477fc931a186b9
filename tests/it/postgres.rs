//! A PostgreSQL catalog end to end, on a real throwaway server (see `pg.rs`): trackers that share
//! cache hits through it, the CLI against it, and a password that is never shown.

use std::path::Path;

use consist::{RunQuery, Tracker};

use crate::support::pg::{PgServer, forget_local_state};
use crate::support::{Counter, Workspace, clean_and_summarize};

fn tracker(run_dir: &Path, url: &str) -> Tracker {
    Tracker::builder(run_dir).catalog(url).open().expect("tracker on PostgreSQL opens")
}

#[test]
fn trackers_share_hits_through_a_postgres_catalog_and_its_local_state_can_go() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("shared");
    let ws = Workspace::new();
    let (up, down) = (Counter::default(), Counter::default());
    {
        let first = tracker(&ws.run_dir(), &url);
        let (clean, summary) = clean_and_summarize(&first, 3, &up, &down);
        assert!(!clean.cache_hit() && !summary.cache_hit());
        first.flush().unwrap();
        // A second host has none of this host's local state: only the catalog.
        let local = format!("{}.consist", first.db_path().display());
        std::fs::remove_dir_all(&local).unwrap();
    }
    let second = tracker(&ws.run_dir(), &url);
    let (clean, summary) = clean_and_summarize(&second, 3, &up, &down);
    assert!(clean.cache_hit() && summary.cache_hit(), "hits served by the PostgreSQL catalog");
    assert_eq!((up.get(), down.get()), (1, 1), "each body ran once");
    assert_eq!(summary.value().unwrap().0, 7);
    let (changed, _) = clean_and_summarize(&second, 4, &up, &down);
    assert!(!changed.cache_hit(), "a new config still misses");
    second.flush().unwrap();

    let runs = second.catalog().find_runs(&RunQuery::default()).unwrap();
    assert_eq!(runs.len(), 6, "three executions, two hits, one more execution: all recorded once");
    let source = second.catalog().find_runs(&RunQuery::default().model("clean").limit(10)).unwrap();
    let hits: Vec<_> = source.iter().filter(|r| r.cache_source().is_some()).collect();
    assert_eq!(hits.len(), 1);
    let executed = source.iter().find(|r| r.cache_source().is_none() && r.id != changed.run.id).unwrap();
    assert_eq!(hits[0].cache_source(), Some(executed.id.as_str()), "the hit names the run that executed");
    drop(second);
    forget_local_state(&url);
}

#[test]
fn the_cli_reads_a_postgres_catalog_and_never_shows_its_password() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("cli");
    let ws = Workspace::new();
    let (up, down) = (Counter::default(), Counter::default());
    let t = tracker(&ws.run_dir(), &url);
    clean_and_summarize(&t, 1, &up, &down);
    t.flush().unwrap();
    drop(t);
    // Trust authentication ignores the password; it must still never be printed.
    let with_password = url.replace("consist@", "consist:s3cret-pw@");
    let run = |args: &[&str]| {
        let out = crate::support::cli(Path::new(&with_password), args);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!text.contains("s3cret-pw"), "the password is shown by {args:?}: {text}");
        (out.status.success(), text)
    };
    let (ok, text) = run(&["runs"]);
    assert!(ok && text.contains("clean") && text.contains("summarize"), "{text}");
    let (ok, text) = run(&["query", "select model_name, count(*) as n from run group by 1 order by 1", "--json"]);
    assert!(ok, "{text}");
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rows["rows"], serde_json::json!([["clean", 1], ["summarize", 1]]));
    let (ok, text) = run(&["query", "delete from run"]);
    assert!(!ok && text.contains("read-only"), "{text}");
    let (ok, text) = run(&["db", "inspect"]);
    assert!(ok && text.contains("consist:***@127.0.0.1"), "{text}");
    let export = ws.path().join("export");
    let (ok, text) = run(&["db", "export", export.to_str().unwrap()]);
    assert!(ok, "{text}");
    let runs: i64 = duckdb::Connection::open_in_memory()
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM '{}'", export.join("run.parquet").display()), [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 2, "the export holds the catalog's runs");
    assert_eq!(
        std::fs::read_dir(&export).unwrap().count(),
        consist::testing::TABLES.len(),
        "one file per table, nothing else"
    );
    let (ok, text) = run(&["db", "compact"]);
    assert!(ok && text.contains("consist:***@127.0.0.1") && text.contains(" bytes"), "{text}");
    let (ok, _) = run(&["db", "rebuild", "--run-dir", ws.run_dir().to_str().unwrap()]);
    assert!(ok);
    let (ok, text) = run(&["summary", "--json"]);
    assert!(ok, "{text}");
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(summary["runs"], 2, "rebuilt from the snapshots: {summary}");
    let down_url = server.url("no_such_db").replace("consist@", "consist:s3cret-pw@");
    let out = crate::support::cli(Path::new(&down_url), &["runs"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("no_such_db") && !text.contains("s3cret-pw"), "{text}");
    forget_local_state(&url);
    forget_local_state(&down_url);
}

/// The last line printed for each step by `consist-test-worker steps`: (kind, run id, square).
fn step_lines(out: std::process::Output) -> Vec<(String, String, i64)> {
    let text = crate::process::stdout_of(out);
    text.lines()
        .filter(|l| l.starts_with("executed ") || l.starts_with("hit "))
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            (parts[0].to_owned(), parts[1].to_owned(), parts[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn eight_processes_record_into_one_postgres_catalog_and_share_one_cache_source_per_signature() {
    use std::process::{Command, Stdio};
    let Some(server) = PgServer::start() else { return };
    let url = server.database("contention");
    let ws = Workspace::new();
    let steps = |values: &[i64]| {
        let mut command = Command::new(crate::process::worker());
        command.arg("steps").arg(ws.run_dir()).arg(&url).args(values.iter().map(i64::to_string));
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    };
    // Each process: 25 values every process runs (shared signatures) and 25 of its own.
    let shared: Vec<i64> = (0..25).collect();
    let children: Vec<_> = (1..=8i64)
        .map(|p| {
            let values: Vec<i64> = shared.iter().copied().chain((0..25).map(|i| 1000 * p + i)).collect();
            steps(&values).spawn().unwrap()
        })
        .collect();
    let mut lines = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("error"), "no error reaches a process: {stderr}");
        lines.extend(step_lines(out));
    }
    assert_eq!(lines.len(), 400);
    assert!(lines.iter().all(|(_, _, square)| square.isqrt().pow(2) == *square), "every value is right");

    let user = tracker(&ws.run_dir(), &url);
    let runs = user.catalog().find_runs(&RunQuery::default().model("square")).unwrap();
    let ids: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!((runs.len(), ids.len()), (400, 400), "all runs recorded, each once");
    assert!(runs.iter().all(|r| r.status == consist::RunStatus::Completed));
    let executed: std::collections::BTreeMap<&str, &consist::Run> =
        runs.iter().filter(|r| r.cache_source().is_none()).map(|r| (r.id.as_str(), r)).collect();
    for (hit, source) in runs.iter().filter_map(|r| r.cache_source().map(|source| (r, source))) {
        let source = executed.get(source).expect("a hit names a run that executed and completed");
        assert_eq!(source.signature, hit.signature);
    }
    drop(user);

    // A new host (no local state): every shared signature is a hit naming the catalog's one
    // cache source for it, the earliest completed run that executed with it.
    forget_local_state(&url);
    let again = step_lines(steps(&shared).output().unwrap());
    assert!(again.iter().all(|(kind, _, _)| kind == "hit"), "{again:?}");
    let user = tracker(&ws.run_dir(), &url);
    for (_, id, _) in &again {
        let run = user.catalog().resolve_run(id).unwrap();
        let source = user.catalog().store().cache_sources(&run.signature, 1).unwrap().remove(0);
        assert_eq!(run.cache_source(), Some(source.run.id.as_str()));
    }
    drop(user);
    forget_local_state(&url);
}

#[test]
fn a_writer_killed_mid_step_is_never_a_cache_source() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let Some(server) = PgServer::start() else { return };
    let url = server.database("killed");
    let ws = Workspace::new();
    let step = |sleep_ms: &str| {
        let mut command = Command::new(crate::process::worker());
        command.arg("step").arg(ws.run_dir()).arg(&url).args(["13", sleep_ms]);
        command
    };
    let last = |out: std::process::Output| crate::process::stdout_of(out).lines().last().unwrap().to_owned();
    let id_of = |line: &str| line.split(' ').nth(1).unwrap().to_owned();
    let mut child = step("30000").stdout(Stdio::piped()).spawn().unwrap();
    let started = BufReader::new(child.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    let killed = started.strip_prefix("started ").expect("the worker announces the step").to_owned();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Another host (no local state: only the catalog can answer) executes it again; after that,
    // a hit (on yet another host) names the run that completed.
    forget_local_state(&url);
    let again = last(step("0").output().unwrap());
    assert!(again.starts_with("executed ") && again.ends_with(" 169"), "must execute: {again}");
    forget_local_state(&url);
    let hit = last(step("0").output().unwrap());
    assert!(hit.starts_with("hit ") && hit.ends_with(" 169"), "{hit}");

    let user = tracker(&ws.run_dir(), &url);
    let runs = user.catalog().find_runs(&RunQuery::default().model("square")).unwrap();
    assert!(runs.iter().all(|r| r.cache_source() != Some(killed.as_str())), "no hit names the killed run");
    let hit_run = user.catalog().resolve_run(&id_of(&hit)).unwrap();
    assert_eq!(hit_run.cache_source(), Some(id_of(&again).as_str()), "the hit names the run that completed");
    let source = user.catalog().store().cache_sources(&hit_run.signature, 1).unwrap().remove(0);
    assert_eq!((source.run.id, source.run.status), (id_of(&again), consist::RunStatus::Completed));
    drop(user);
    forget_local_state(&url);
}

/// What must survive a copy: run id, signature, status, input and output artifacts (id:hash).
type RecordShape = (String, String, String, Vec<String>, Vec<String>);

#[test]
fn db_copy_moves_a_catalog_duckdb_to_postgres_to_duckdb_unchanged() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("copied");
    let ws = Workspace::new();
    let (up, down) = (Counter::default(), Counter::default());
    {
        let t = ws.tracker();
        for threshold in [1, 2] {
            clean_and_summarize(&t, threshold, &up, &down);
        }
        clean_and_summarize(&t, 1, &up, &down); // two hits
        t.flush().unwrap();
    }
    let back = ws.path().join("back.duckdb");
    let copy = |from: &str, to: &str| {
        let out = std::process::Command::new(crate::process::worker())
            .args(["cli", "db", "copy", from, to, "--json"])
            .output()
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&crate::process::stdout_of(out)).unwrap()
    };
    let first = copy(ws.db().to_str().unwrap(), &url);
    assert_eq!((first["runs_checked"].as_u64(), first["merge"]["merged"].as_array().unwrap().len()), (Some(6), 6));
    let again = copy(ws.db().to_str().unwrap(), &url);
    assert_eq!(again["merge"]["already_present"].as_array().unwrap().len(), 6, "copying twice changes nothing");
    let second = copy(&url, back.to_str().unwrap());
    assert_eq!(second["links_checked"], first["links_checked"]);

    // Same runs, signatures, statuses and artifact links at both ends.
    let summary = |location: &str| {
        let catalog = consist::Catalog::open(
            &consist::CatalogLocation::parse(location).unwrap(),
            std::time::Duration::from_secs(10),
        )
        .unwrap();
        let runs = catalog.find_runs(&RunQuery::default()).unwrap();
        let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
        let mut records: Vec<RecordShape> = catalog
            .run_records(&ids)
            .unwrap()
            .into_iter()
            .map(|r| {
                let ids = |list: &[consist::Artifact]| list.iter().map(|a| format!("{}:{:?}", a.id, a.hash)).collect();
                (
                    r.run.id.clone(),
                    r.run.signature.clone(),
                    r.run.status.as_str().to_owned(),
                    ids(&r.inputs),
                    ids(&r.outputs),
                )
            })
            .collect();
        records.sort();
        records
    };
    let original = summary(ws.db().to_str().unwrap());
    assert_eq!(original.len(), 6);
    assert_eq!(summary(back.to_str().unwrap()), original);
    // The copy serves hits where the outputs exist.
    let t = consist::Tracker::builder(ws.run_dir()).db_path(&back).open().unwrap();
    let (clean, _) = clean_and_summarize(&t, 2, &up, &down);
    assert!(clean.cache_hit(), "the copied catalog serves hits");
    drop(t);
    forget_local_state(&url);
}

#[test]
fn the_examples_give_the_same_results_and_hits_on_postgres_as_on_duckdb() {
    let Some(server) = PgServer::start() else { return };
    // Run ids, artifact ids and timings differ between any two runs; everything else must not.
    let masked = |out: String, dir: &Path| {
        let out = out.replace(&dir.display().to_string(), "<dir>");
        let ids = regex::Regex::new(r"_[0-9a-f]{16}|[0-9a-f]{8}-[0-9a-f-]{27}|[0-9]+\.[0-9]+ (s|ms)\b").unwrap();
        let out = ids.replace_all(&out, "<id>").into_owned();
        out.lines().filter(|l| !l.starts_with("wall time")).collect::<Vec<_>>().join("\n")
    };
    for (example, passes) in [
        ("first_workflow", vec![vec![], vec![], vec!["--threshold", "25"]]),
        (
            "iterative_workflow",
            vec![vec!["--iterations", "3", "--extended", "4"], vec!["--iterations", "3", "--extended", "4", "--keep"]],
        ),
    ] {
        let url = server.database(example);
        let (on_duckdb, on_postgres) = (Workspace::new(), Workspace::new());
        for args in passes {
            let duck = crate::examples::example(example, on_duckdb.path(), &args);
            let pg = crate::process::stdout_of(
                crate::examples::example_command(example, on_postgres.path(), &args)
                    .env("CONSIST_DB", &url)
                    .output()
                    .unwrap(),
            );
            assert_eq!(masked(pg, on_postgres.path()), masked(duck, on_duckdb.path()), "{example} {args:?}");
        }
        forget_local_state(&url);
    }
}

#[test]
fn a_postgres_catalog_from_a_newer_consist_is_refused_untouched() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("newer");
    let ws = Workspace::new();
    let first = tracker(&ws.run_dir(), &url);
    first.step("square").code_version("1").config(&5).outputs(["squared"]).run(|_| Ok(consist::Value(25))).unwrap();
    first.flush().unwrap();
    drop(first);
    let newer = consist::store::SCHEMA_VERSION + 1;
    server.psql("newer", &format!("INSERT INTO consist_schema_version(version) VALUES ({newer})"));
    forget_local_state(&url);
    let refused = Tracker::builder(ws.run_dir()).catalog(&url).open().unwrap_err().to_string();
    assert!(refused.contains(&format!("schema version {newer}")) && refused.contains("upgrade consist"), "{refused}");
}
