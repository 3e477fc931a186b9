//! A chain of N `#[step]` steps over an R-row table, run cold then warm, timed: the Rust side of
//! the side-by-side comparison with Python Consist (`benches/compare/run.sh`).
//!
//! ```text
//! cargo run --example bench_chain -- 100 1000               # cold, then warm in this process
//! cargo run --example bench_chain -- 100 1000 --warm-process # ... and warm in a second process
//! cargo run --example bench_chain -- 100 1000 --cold-only DIR  # one cold process (then --warm-only DIR)
//! ```
//! Step 0 reads a CSV of R rows (`id`, `value`) and writes Parquet; each later step reads the
//! previous step's Parquet, adds 1 to `value` and writes Parquet (the step writes its own file,
//! as Python Consist's steps do). Inside each body the read+compute time and the Parquet write
//! time are measured, so the cold pass reports consist's bookkeeping apart from the step's work.
//! Every pass ends with the tracker's drop, which writes the catalog file complete (the default
//! promise): its time is in each figure and reported apart (`*_close_ms`). With `--defer-hits` or
//! `CONSIST_DEFER_HITS=1` (`TrackerBuilder::defer_hit_writes`), a pass that only hits leaves its records in the
//! catalog's pending queue for a later database write instead; that write is then done and timed
//! after each warm pass (`*_deferred_write_ms`), and for N <= 256 so is the write of a queue that
//! 15 such passes filled: each hit-only process's real share. The last line printed is one JSON
//! object.
//!
//! For consist's own code at -O2, as a project depending on consist gets it from
//! `[profile.dev.package."*"]`, add `--config 'profile.dev.package.consist.opt-level=2'`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

mod common;

use common::status_mib;
use consist::prelude::*;
use polars::prelude::*;
use serde_json::json;

/// Nanoseconds spent reading and computing inside step bodies.
static WORK_NS: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds spent writing Parquet inside step bodies.
static WRITE_NS: AtomicU64 = AtomicU64::new(0);
/// Step bodies executed.
static BODIES: AtomicU64 = AtomicU64::new(0);
/// `--defer-hits`: hit-only passes leave their records in the pending queue.
static DEFER_HITS: AtomicBool = AtomicBool::new(false);

fn since(start: Instant, counter: &AtomicU64) {
    counter.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// Write `df` as the step's `table` output (timed as Parquet time).
fn write_table(mut df: DataFrame, ctx: &mut StepContext) -> StepResult<()> {
    let start = Instant::now();
    let path = ctx.output_dir()?.join("table.parquet");
    ParquetWriter::new(File::create(&path)?).finish(&mut df)?;
    since(start, &WRITE_NS);
    ctx.log_file("table", &path)?;
    Ok(())
}

/// Step 0: the raw CSV as Parquet.
#[step(outputs = ["table"])]
fn ingest(raw: &Path, ctx: &mut StepContext) -> StepResult<()> {
    BODIES.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let df =
        CsvReadOptions::default().with_has_header(true).try_into_reader_with_file_path(Some(raw.into()))?.finish()?;
    since(start, &WORK_NS);
    write_table(df, ctx)
}

/// Every later step: the previous table with `value + 1`.
#[step(outputs = ["table"])]
fn add_one(table: &Path, ctx: &mut StepContext) -> StepResult<()> {
    BODIES.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let mut df = ParquetReader::new(File::open(table)?).finish()?;
    let next = (df.column("value")?.as_materialized_series() + 1).with_name("value".into());
    df.replace("value", next.into())?;
    since(start, &WORK_NS);
    write_table(df, ctx)
}

/// One pass over the chain.
struct Pass {
    /// Seconds from opening the tracker to its drop returning (all recorded, database written).
    seconds: f64,
    /// Of which the tracker's drop: the last batch of records and the database write.
    close_seconds: f64,
    hits: usize,
    /// Milliseconds from process start to the first step's end.
    first_step_ms: f64,
}

fn pass(dir: &Path, steps: usize, process_start: Instant) -> consist::Result<Pass> {
    let start = Instant::now();
    let tracker = Tracker::builder(dir.join("runs"))
        .catalog(dir.join("provenance.duckdb"))
        .defer_hit_writes(DEFER_HITS.load(Ordering::Relaxed))
        .open()?;
    let first = tracker.run(ingest::step(dir.join("raw.csv")))?;
    let first_step_ms = process_start.elapsed().as_secs_f64() * 1e3;
    let mut hits = usize::from(first.cache_hit());
    let mut table = first.output("table")?.clone();
    for i in 1..steps {
        let r = tracker.run(add_one::step(&table))?;
        hits += usize::from(r.cache_hit());
        table = r.output("table")?.clone();
        if i + 1 == 1000 {
            eprintln!("rss after 1000 steps: {:.1} MiB", rss_mib());
        }
    }
    let closing = Instant::now();
    drop(tracker); // writes the last records and the database: part of the pass
    let close_seconds = closing.elapsed().as_secs_f64();
    let last = ParquetReader::new(
        File::open(&table.path).map_err(|e| consist::Error::RunDir { path: table.path.clone(), source: e })?,
    )
    .finish()
    .map_err(|e| consist::Error::Frame { key: "table".into(), path: table.path.clone(), source: e })?;
    check_values(&last, steps);
    Ok(Pass { seconds: start.elapsed().as_secs_f64(), close_seconds, hits, first_step_ms })
}

/// With `--defer-hits`, write what a pass left pending to the database, as a later process
/// would: milliseconds (`None` without: the pass wrote it).
fn deferred_write_ms(dir: &Path) -> consist::Result<Option<f64>> {
    if !DEFER_HITS.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let start = Instant::now();
    let catalog = consist::Catalog::duckdb(dir.join("provenance.duckdb"), std::time::Duration::from_secs(60));
    catalog.sync()?;
    Ok(Some(start.elapsed().as_secs_f64() * 1e3))
}

/// Row i holds `i % 1000 + steps - 1` after the chain.
fn check_values(df: &DataFrame, steps: usize) {
    let values = df.column("value").and_then(|c| c.cast(&DataType::Int64)).expect("an integer value column");
    let values = values.as_materialized_series().i64().expect("int64").clone();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v, Some((i % 1000 + steps - 1) as i64), "row {i} of the last table");
    }
}

/// Resident set size of this process, MiB (Linux; 0 elsewhere).
fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// The chain's raw input: `raw.csv` in `dir`, `rows` rows of (`id`, `id % 1000`).
fn write_csv(dir: &Path, rows: usize) -> std::io::Result<()> {
    let mut csv = String::from("id,value\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},{}\n", i % 1000));
    }
    std::fs::write(dir.join("raw.csv"), csv)
}

fn ms_per_step(seconds: f64, steps: usize) -> f64 {
    seconds * 1e3 / steps as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let process_start = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench_chain N R [--warm-process] [--defer-hits] | bench_chain N R --cold-only DIR | \
                 bench_chain N R --warm-only DIR [--defer-hits]";
    let env_defers = std::env::var(consist::DEFER_HITS_ENV).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
    DEFER_HITS.store(env_defers || args.iter().any(|a| a == "--defer-hits"), Ordering::Relaxed);
    let (steps, rows): (usize, usize) = match (args.first(), args.get(1)) {
        (Some(n), Some(r)) => (n.parse()?, r.parse()?),
        _ => return Err(usage.into()),
    };
    if steps == 0 {
        return Err("N must be at least 1".into());
    }
    if let Some(at) = args.iter().position(|a| a == "--cold-only") {
        // A cold process of its own (benches/compare's whole-process figures): the chain in DIR.
        let dir = PathBuf::from(args.get(at + 1).ok_or(usage)?);
        std::fs::create_dir_all(&dir)?;
        write_csv(&dir, rows)?;
        let cold = pass(&dir, steps, process_start)?;
        assert_eq!(cold.hits, 0, "the cold pass executes every step");
        println!("{}", json!({"cold_s": cold.seconds, "cold_close_s": cold.close_seconds}));
        return Ok(());
    }
    if let Some(at) = args.iter().position(|a| a == "--warm-only") {
        // The second process of `--warm-process`: a fresh tracker over the same directories.
        let dir = PathBuf::from(args.get(at + 1).ok_or(usage)?);
        let warm = pass(&dir, steps, process_start)?;
        assert_eq!(BODIES.load(Ordering::Relaxed), 0, "a warm pass executes no body");
        let deferred_ms = deferred_write_ms(&dir)?;
        let report = json!({"warm_s": warm.seconds, "warm_close_s": warm.close_seconds, "warm_hits": warm.hits,
            "first_step_ms": warm.first_step_ms, "rss_mib": rss_mib(), "peak_rss_mib": status_mib("VmHWM:"), "deferred_write_ms": deferred_ms});
        println!("{report}");
        return Ok(());
    }
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    write_csv(dir, rows)?;

    let cold = pass(dir, steps, process_start)?;
    let (cold_s, cold_hits, first_step_ms) = (cold.seconds, cold.hits, cold.first_step_ms);
    assert_eq!(cold_hits, 0, "the cold pass executes every step");
    let work_s = WORK_NS.load(Ordering::Relaxed) as f64 / 1e9;
    let write_s = WRITE_NS.load(Ordering::Relaxed) as f64 / 1e9;
    let cold_rss = rss_mib();
    let bodies = BODIES.load(Ordering::Relaxed);
    let warm = pass(dir, steps, process_start)?;
    let warm_rss = rss_mib();
    let deferred_ms = deferred_write_ms(dir)?;
    let (warm_s, warm_hits) = (warm.seconds, warm.hits);
    // What a hit-only process really pays for the database: a share of the write that the process
    // which fills the queue does. With one batch per pass (N <= 256), fill the queue up to just
    // below that point with more warm passes and time its write.
    let share_ms = (steps <= 256 && deferred_ms.is_some())
        .then(|| -> consist::Result<f64> {
            let passes = consist::testing::HIT_BATCHES_WAITING - 1;
            for _ in 0..passes {
                pass(dir, steps, process_start)?;
            }
            Ok(deferred_write_ms(dir)?.unwrap_or_default() / passes as f64)
        })
        .transpose()?;
    assert_eq!(warm_hits, steps, "the warm pass is all hits");
    assert_eq!(BODIES.load(Ordering::Relaxed), bodies, "a warm pass executes no body");
    let mut out = json!({
        "impl": "consist-rs",
        "steps": steps,
        "rows": rows,
        "cold_s": cold_s,
        "warm_s": warm_s,
        "cold_ms_per_step": ms_per_step(cold_s, steps),
        "warm_ms_per_step": ms_per_step(warm_s, steps),
        "warm_close_ms": warm.close_seconds * 1e3,
        "warm_hit_ms_per_step": ms_per_step(warm_s - warm.close_seconds, steps),
        "warm_deferred_write_ms": deferred_ms,
        "warm_with_deferred_write_ms_per_step": deferred_ms.map(|ms| ms_per_step(warm_s + ms / 1e3, steps)),
        "warm_share_of_deferred_write_ms": share_ms,
        "warm_with_share_of_deferred_write_ms_per_step": share_ms.map(|ms| ms_per_step(warm_s + ms / 1e3, steps)),
        "cold_close_ms": cold.close_seconds * 1e3,
        "cold_work_ms_per_step": ms_per_step(work_s, steps),
        "cold_parquet_ms_per_step": ms_per_step(write_s, steps),
        "cold_bookkeeping_ms_per_step": ms_per_step(cold_s - work_s - write_s, steps),
        "cold_hits": cold_hits,
        "warm_hits": warm_hits,
        "first_step_ms": first_step_ms,
        "rss_mib_cold": cold_rss,
        "rss_mib_warm": warm_rss,
        "peak_rss_mib": status_mib("VmHWM:"),
    });
    if args.iter().any(|a| a == "--warm-process") {
        let started = Instant::now();
        let child = std::process::Command::new(std::env::current_exe()?)
            .args([&steps.to_string(), &rows.to_string(), "--warm-only"])
            .arg(dir)
            .args(DEFER_HITS.load(Ordering::Relaxed).then_some("--defer-hits"))
            .output()?;
        let wall_s = started.elapsed().as_secs_f64();
        if !child.status.success() {
            return Err(format!("warm process failed: {}", String::from_utf8_lossy(&child.stderr)).into());
        }
        let line = String::from_utf8_lossy(&child.stdout);
        let report: serde_json::Value = serde_json::from_str(line.lines().last().unwrap_or_default())?;
        let warm_s = report["warm_s"].as_f64().unwrap_or(f64::NAN);
        out["warm_process_s"] = json!(warm_s);
        out["warm_process_ms_per_step"] = json!(ms_per_step(warm_s, steps));
        let close_s = report["warm_close_s"].as_f64().unwrap_or(f64::NAN);
        out["warm_process_hit_ms_per_step"] = json!(ms_per_step(warm_s - close_s, steps));
        let deferred_ms = report["deferred_write_ms"].as_f64();
        out["warm_process_deferred_write_ms"] = json!(deferred_ms);
        out["warm_process_with_deferred_write_ms_per_step"] =
            json!(deferred_ms.map(|ms| ms_per_step(warm_s + ms / 1e3, steps)));
        out["warm_process_hits"] = report["warm_hits"].clone();
        out["warm_process_wall_s"] = json!(wall_s);
        out["warm_process_first_step_ms"] = report["first_step_ms"].clone();
    }
    println!("{out}");
    Ok(())
}
