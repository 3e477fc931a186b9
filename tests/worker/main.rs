//! A helper process for the end-to-end tests: runs one step, or the consist CLI.
//!
//! ```text
//! consist-test-worker step <run_dir> <catalog> <value> <sleep_ms>
//! consist-test-worker steps <run_dir> <catalog> <value>...
//! consist-test-worker big <run_dir> <catalog> <bytes>
//! consist-test-worker cli <consist arguments...>
//! ```
//! `big` runs one step whose output is a value of `<bytes>` bytes (for file-size limits).
//! `<catalog>` is a DuckDB path or a `postgres://` URL (`-`: the default). `step` prints
//! `started <run_id>` when the body begins (only on a miss), then `executed <run_id> <squared>` or
//! `hit <run_id> <squared>`; `steps` runs one `square` step per value in one tracker and prints
//! the same last line for each (each body sleeps `CONSIST_TEST_SLEEP_MS`, default 0).
//! `CONSIST_TEST_LEASE_TTL_MS` sets the tracker's lease time-to-live; `CONSIST_HOST` (read by
//! consist itself) names the host, and `XDG_CACHE_HOME` holds a PostgreSQL catalog's local
//! state: together, one process plays one host of a shared catalog.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use consist::{Tracker, Value};

fn step(args: &[String]) -> consist::Result<()> {
    let [run_dir, db_path, value, sleep_ms] = args else {
        panic!("usage: step <run_dir> <db_path | - for the default> <value> <sleep_ms>");
    };
    let value: i64 = value.parse().expect("value is an integer");
    let sleep = Duration::from_millis(sleep_ms.parse().expect("sleep_ms is an integer"));
    let tracker = open(run_dir, db_path)?;
    square(&tracker, value, sleep)
}

fn open(run_dir: &str, catalog: &str) -> consist::Result<Tracker> {
    let mut builder = Tracker::builder(run_dir);
    if catalog != "-" {
        builder = builder.catalog(catalog);
    }
    if let Some(ms) = std::env::var("CONSIST_TEST_LEASE_TTL_MS").ok().and_then(|v| v.parse().ok()) {
        builder = builder.lease_ttl(Duration::from_millis(ms));
    }
    builder.open()
}

fn steps(args: &[String]) -> consist::Result<()> {
    let [run_dir, catalog, values @ ..] = args else {
        panic!("usage: steps <run_dir> <catalog | -> <value>...");
    };
    let tracker = open(run_dir, catalog)?;
    let sleep_ms = std::env::var("CONSIST_TEST_SLEEP_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    for value in values {
        square(&tracker, value.parse().expect("value is an integer"), Duration::from_millis(sleep_ms))?;
    }
    tracker.flush().map(drop)
}

fn big(args: &[String]) -> consist::Result<()> {
    let [run_dir, catalog, bytes] = args else {
        panic!("usage: big <run_dir> <catalog | -> <bytes>");
    };
    let bytes: usize = bytes.parse().expect("bytes is an integer");
    let tracker = open(run_dir, catalog)?;
    let result =
        tracker.step("big").code_version("1").config(&bytes).outputs(["blob"]).run(|_| Ok(Value(vec![7u8; bytes])))?;
    let kind = if result.cache_hit() { "hit" } else { "executed" };
    println!("{kind} {} {}", result.run.id, result.value.0.len());
    Ok(())
}

fn square(tracker: &Tracker, value: i64, sleep: Duration) -> consist::Result<()> {
    let result = tracker
        .step("square")
        .code_version("1")
        .config(&serde_json::json!({ "value": value }))
        .outputs(["squared"])
        .run(|ctx| {
            println!("started {}", ctx.run_id());
            std::io::stdout().flush()?;
            std::thread::sleep(sleep);
            Ok(Value(value * value))
        })?;
    let kind = if result.cache_hit() { "hit" } else { "executed" };
    println!("{kind} {} {}", result.run.id, result.value.0);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(command @ ("step" | "steps" | "big")) => {
            consist::init_logging();
            let done = match command {
                "step" => step(&args[2..]),
                "steps" => steps(&args[2..]),
                _ => big(&args[2..]),
            };
            match done {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("cli") => consist::cli::main_from(std::iter::once("consist".to_owned()).chain(args[2..].iter().cloned())),
        _ => {
            eprintln!("usage: consist-test-worker step|steps|big|cli ...");
            ExitCode::from(2)
        }
    }
}
