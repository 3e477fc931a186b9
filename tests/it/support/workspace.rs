//! Shared helpers: a temporary workspace with a tracker, and execution counters.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use consist::{CacheMode, RunResult, Tracker, Value};

/// A temporary directory holding a run dir and a database.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn run_dir(&self) -> PathBuf {
        self.path().join("runs")
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("provenance.duckdb")
    }

    pub fn tracker(&self) -> Tracker {
        self.tracker_with(CacheMode::Reuse)
    }

    pub fn tracker_with(&self, mode: CacheMode) -> Tracker {
        Tracker::builder(self.run_dir()).db_path(self.db()).cache_mode(mode).open().expect("tracker opens")
    }

    /// Write a file under the workspace and return its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, content).expect("write file");
        p
    }

    /// Open the database directly (after the trackers are dropped or flushed), as another tool
    /// would: while a process holds the file (a tracker's write, a UI's or CLI's read), DuckDB
    /// refuses the open, so it is tried again for up to 30 s.
    pub fn sql(&self) -> duckdb::Connection {
        let start = Instant::now();
        loop {
            match duckdb::Connection::open(self.db()) {
                Ok(conn) => return conn,
                Err(e) if e.to_string().contains("lock") && start.elapsed() < Duration::from_secs(30) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("open db {}: {e}", self.db().display()),
            }
        }
    }

    /// One-value query.
    pub fn scalar<T: duckdb::types::FromSql>(&self, sql: &str) -> T {
        self.sql().query_row(sql, [], |r| r.get(0)).expect(sql)
    }
}

/// Counts how often a step body really executes.
#[derive(Default)]
pub struct Counter(Cell<u32>);

impl Counter {
    pub fn hit(&self) {
        self.0.set(self.0.get() + 1);
    }

    pub fn get(&self) -> u32 {
        self.0.get()
    }
}

/// Path of a binary built next to the test executable (examples live in `examples/`).
pub fn built_binary(relative: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = profile_dir.join(relative);
    assert!(
        path.exists(),
        "{} not built; run `cargo test` (which builds examples) or `cargo build --examples`",
        path.display()
    );
    path
}

/// The `consist` CLI (through the test worker) on the database `db`.
pub fn cli(db: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::process::worker())
        .arg("cli")
        .args(args)
        .arg("--db-path")
        .arg(db)
        .output()
        .expect("the test worker runs")
}

/// The rows `consist query --json sql` answers on `db` (the database must open).
pub fn query_rows(db: &Path, sql: &str) -> Vec<serde_json::Value> {
    let out = cli(db, &["query", "--json", sql]);
    assert!(out.status.success(), "the database opens ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    answer["rows"].as_array().unwrap().clone()
}

/// Two chained steps: `clean` (config `threshold`) writes `[threshold, threshold + 1]`;
/// `summarize` reads it as input `cleaned` and writes the sum. Each counts its executions.
pub fn clean_and_summarize(
    tracker: &Tracker,
    threshold: i64,
    up_runs: &Counter,
    down_runs: &Counter,
) -> (RunResult<Value<Vec<i64>>>, RunResult<Value<i64>>) {
    let up = tracker
        .step("clean")
        .code_version("1")
        .config(&serde_json::json!({ "threshold": threshold }))
        .outputs(["cleaned"])
        .run(|_| {
            up_runs.hit();
            Ok(Value(vec![threshold, threshold + 1]))
        })
        .unwrap();
    let down = tracker
        .step("summarize")
        .code_version("1")
        .input("cleaned", up.output("cleaned").unwrap())
        .outputs(["total"])
        .run(|ctx| {
            down_runs.hit();
            let art = ctx.input("cleaned")?;
            assert_eq!(art.key, "cleaned");
            let values: Vec<i64> = ctx.load::<Value<Vec<i64>>>("cleaned")?.0;
            Ok(Value(values.iter().sum::<i64>()))
        })
        .unwrap();
    (up, down)
}

/// The test worker's `square` step (the same signature as `consist-test-worker step`), `body`
/// running inside it on a miss (count it, sleep...).
pub fn square(tracker: &Tracker, value: i64, body: impl FnOnce()) -> RunResult<Value<i64>> {
    tracker
        .step("square")
        .code_version("1")
        .config(&serde_json::json!({ "value": value }))
        .outputs(["squared"])
        .run(|_| {
            body();
            Ok(Value(value * value))
        })
        .unwrap()
}
