//! A helper process for the end-to-end tests: runs one step, or the consist CLI.
//!
//! ```text
//! consist-test-worker step <run_dir> <catalog> <value> <sleep_ms>
//! consist-test-worker steps <run_dir> <catalog> <value>...
//! consist-test-worker big <run_dir> <catalog> <bytes>
//! consist-test-worker chain <run_dir> <catalog> <steps>
//! consist-test-worker cli <consist arguments...>
//! consist-test-worker as-a-user <run_dir> typo|panic
//! ```
//! `as-a-user` is a program that installs no tracing subscriber (as a modeler's does not):
//! `typo` reads a scenario key misspelt (`stat` for `state`), `panic` runs a step whose body
//! panics; it prints `got <n>` or the step's error on stdout.
//! `big` runs one step whose output is a value of `<bytes>` bytes (for file-size limits).
//! `chain` runs `seed` then `advance` steps, each reading the previous one's table (1,000
//! numbers) and adding 1, printing `executed|hit <run_id> <first value>` for each.
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

fn chain(args: &[String]) -> consist::Result<()> {
    let [run_dir, catalog, steps] = args else {
        panic!("usage: chain <run_dir> <catalog | -> <steps>");
    };
    let steps: i64 = steps.parse().expect("steps is an integer");
    let tracker = open(run_dir, catalog)?;
    let first = tracker
        .step("seed")
        .code_version("1")
        .outputs(["table"])
        .run(|_| Ok(Value((0..1000).collect::<Vec<i64>>())))?;
    report(&first, first.value().unwrap().0[0]);
    let mut previous = first.output("table")?.clone();
    for step in 1..steps {
        let next =
            tracker.step("advance").code_version("1").config(&step).input("table", previous).outputs(["table"]).run(
                |ctx| {
                    let table: Vec<i64> = ctx.load::<Value<Vec<i64>>>("table")?.0;
                    Ok(Value(table.into_iter().map(|v| v + 1).collect::<Vec<i64>>()))
                },
            )?;
        report(&next, next.value().unwrap().0[0]);
        previous = next.output("table")?.clone();
    }
    tracker.flush().map(drop)
}

fn report<T>(result: &consist::RunResult<T>, first_value: i64) {
    let kind = if result.cache_hit() { "hit" } else { "executed" };
    println!("{kind} {} {first_value}", result.run.id);
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
    println!("{kind} {} {}", result.run.id, result.value().unwrap().0.len());
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
    println!("{kind} {} {}", result.run.id, result.value().unwrap().0);
    Ok(())
}

/// A program that, like a modeler's, installs no subscriber and makes a mistake.
fn as_a_user(args: &[String]) -> consist::Result<()> {
    let [run_dir, mistake] = args else { panic!("usage: as-a-user <run_dir> typo|panic") };
    let tracker = Tracker::builder(run_dir).open()?;
    if mistake == "typo" {
        let scenario = tracker.scenario("sweep").start()?;
        scenario.step("init").code_version("1").outputs(["state"]).run(|_| Ok(Value(1u8)))?;
        println!("got {}", scenario.get("stat").map_or(0, |_| 1));
        return scenario.finish().map(drop);
    }
    let failed = tracker
        .step("explode")
        .code_version("1")
        .outputs(["x"])
        .run(|_| -> consist::StepResult<Value<u8>> { panic!("the model diverged") });
    println!("{}", failed.err().map(|e| e.to_string()).unwrap_or_default());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(command @ ("step" | "steps" | "big" | "chain")) => {
            consist::init_logging();
            let done = match command {
                "step" => step(&args[2..]),
                "steps" => steps(&args[2..]),
                "chain" => chain(&args[2..]),
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
        Some("as-a-user") => match as_a_user(&args[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Some("cli") => consist::cli::main_from(std::iter::once("consist".to_owned()).chain(args[2..].iter().cloned())),
        _ => {
            eprintln!("usage: consist-test-worker step|steps|big|chain|as-a-user|cli ...");
            ExitCode::from(2)
        }
    }
}
