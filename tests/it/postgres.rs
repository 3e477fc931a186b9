//! A PostgreSQL catalog end to end, on a real throwaway server (see `pg.rs`): trackers that share
//! cache hits through it, the CLI against it, and a password that is never shown.

use std::path::Path;

use consist::{RunQuery, Tracker};

use crate::pg::PgServer;
use crate::util::{Counter, Workspace, clean_and_summarize};

/// Remove this process's local state of the catalog at `url` (kept under the user's cache).
fn forget_local_state(url: &str) {
    let state = consist::CatalogLocation::parse(url).unwrap().state_path();
    let _ = std::fs::remove_dir_all(format!("{}.consist", state.display()));
}

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
    assert_eq!(summary.value.0, 7);
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
        let out = crate::util::cli(Path::new(&with_password), args);
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
    let (ok, _) = run(&["db", "rebuild", "--run-dir", ws.run_dir().to_str().unwrap()]);
    assert!(ok);
    let (ok, text) = run(&["summary", "--json"]);
    assert!(ok, "{text}");
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(summary["runs"], 2, "rebuilt from the snapshots: {summary}");
    let down_url = server.url("no_such_db").replace("consist@", "consist:s3cret-pw@");
    let out = crate::util::cli(Path::new(&down_url), &["runs"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("no_such_db") && !text.contains("s3cret-pw"), "{text}");
    forget_local_state(&url);
    forget_local_state(&down_url);
}
