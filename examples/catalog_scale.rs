//! How fast the CLI and the web UI answer on a big catalog: writes N synthetic runs (one output
//! artifact each; within each scenario of 500 runs, a run reads the previous run's output, so
//! lineage is a chain) into a fresh DuckDB database in batches, then times CLI commands on it, in
//! process, and `consist ui`'s pages over HTTP (from the request to the page's last byte).
//!
//! ```text
//! cargo run --example catalog_scale -- --runs 100000
//! cargo run --example catalog_scale -- --dir /tmp/scale100k --reuse   # time an existing one again
//! cargo run --example catalog_scale -- --db-url postgres://...         # the same on PostgreSQL
//! ```
//! With `--db-url` the runs go into that PostgreSQL database (its own: it should be empty; with
//! `--reuse`, the one an earlier run filled), and the commands and pages read it there.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use consist::store::{DuckDbStore, PgStore};
use consist::store::{SNAPSHOT_FORMAT, Store};
use consist::{Artifact, Driver, Run, RunRecord, RunStatus};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// How many runs to write.
    #[arg(long, default_value_t = 100_000)]
    runs: usize,
    /// Where to put the database (a temporary directory by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Time the catalog already in --dir instead of writing a new one.
    #[arg(long, requires = "dir")]
    reuse: bool,
    /// How many times each page is fetched (the median is shown).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// A PostgreSQL catalog (`postgres://...`) instead of a DuckDB file in --dir.
    #[arg(long)]
    db_url: Option<String>,
}

fn record(i: usize, run_dir: &std::path::Path) -> RunRecord {
    let now = Utc::now();
    let id = run_id(i);
    let model = id.rsplit_once('_').map_or("", |(model, _)| model);
    let mut meta = serde_json::Map::new();
    meta.insert("cache_hit".into(), json!(i.is_multiple_of(3)));
    let run = Run {
        id: id.clone(),
        parent_run_id: Some(format!("scenario_{:04}", i / 500)),
        status: RunStatus::Completed,
        model_name: model.into(),
        description: None,
        year: None,
        iteration: Some((i % 500 / 5) as i32),
        stage: None,
        phase: None,
        tags: vec!["scale".into()],
        config_hash: format!("{:064x}", i % 97),
        code_hash: "c".repeat(64),
        input_hash: format!("{i:064x}"),
        signature: format!("{:064x}", i * 7919),
        meta,
        started_at: now,
        ended_at: Some(now),
        created_at: now,
        updated_at: now,
    };
    let output = output_of(i, run_dir);
    // Within a scenario each run reads the previous run's output.
    let inputs = if i.is_multiple_of(500) { vec![] } else { vec![output_of(i - 1, run_dir)] };
    RunRecord {
        format: SNAPSHOT_FORMAT.into(),
        run,
        config: json!({"beta": i % 97}),
        facets: Default::default(),
        run_dir: run_dir.to_path_buf(),
        inputs,
        outputs: vec![output],
    }
}

/// Run `i`'s model and id.
fn run_id(i: usize) -> String {
    let model = ["logsums", "trip_distribution", "mode_choice", "assignment", "traffic_simulation"][i % 5];
    format!("{model}_{i:08x}")
}

/// The output artifact of run `i`.
fn output_of(i: usize, run_dir: &std::path::Path) -> Artifact {
    let id = run_id(i);
    Artifact {
        id: format!("00000000-0000-4000-8000-{i:012x}"),
        key: "out".into(),
        uri: format!("./outputs/{id}/out.parquet"),
        path: run_dir.join(format!("outputs/{id}/out.parquet")),
        driver: Driver::Parquet,
        hash: Some(format!("{i:064x}")),
        run_id: Some(id),
        producer_signature: Some(format!("{:064x}", i * 7919)),
        meta: serde_json::Map::new(),
        created_at: Utc::now(),
    }
}

fn time(label: &str, args: &[&str], db: &str) -> Duration {
    let mut argv = vec!["consist".to_owned()];
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    argv.extend(["--db-path".to_owned(), db.to_owned()]);
    let start = Instant::now();
    let status = consist::cli::main_from(argv);
    let took = start.elapsed();
    if status != std::process::ExitCode::SUCCESS {
        eprintln!("{label}: failed (the error is printed above)");
    }
    took
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let tmp = if args.reuse { args.dir.clone().unwrap() } else { tempfile_dir(args.dir.clone())? };
    let db = match &args.db_url {
        Some(url) => url.clone(),
        None => tmp.join("scale.duckdb").to_string_lossy().into_owned(),
    };
    if !args.reuse {
        let store: Box<dyn Store> = match &args.db_url {
            Some(url) => Box::new(PgStore::new(url, Duration::from_secs(60))?),
            None => Box::new(DuckDbStore::new(&db, Duration::from_secs(60))),
        };
        store.init()?;
        let start = Instant::now();
        for chunk in (0..args.runs).collect::<Vec<_>>().chunks(5000) {
            let records: Vec<RunRecord> = chunk.iter().map(|&i| record(i, &tmp)).collect();
            store.write(&records)?;
        }
        eprintln!("wrote {} runs in {:.1} s", args.runs, start.elapsed().as_secs_f64());
    }
    // The output of the last run of the first scenario (a chain of up to 500 runs above it).
    let last_in_scenario = output_of(args.runs.clamp(1, 500) - 1, &tmp).id;
    let mut figures = Vec::new();
    for (label, argv) in [
        ("runs --limit 20", vec!["runs", "--limit", "20"]),
        ("runs --model mode_choice --iteration 42", vec!["runs", "--model", "mode_choice", "--iteration", "42"]),
        ("show <run id>", vec!["show", "mode_choice_00012347"]),
        ("summary", vec!["summary"]),
        ("search mode_choice_0001", vec!["search", "mode_choice_0001", "--limit", "5"]),
        ("query count by model", vec!["query", "SELECT model_name, count(*) FROM run GROUP BY 1"]),
        ("lineage --depth 100 (a chain of 100 runs)", vec!["lineage", &last_in_scenario, "--depth", "100"]),
        ("lineage out --depth 1 (by key: the latest run's)", vec!["lineage", "out", "--depth", "1"]),
    ] {
        figures.push((label, time(label, &argv, &db)));
    }
    eprintln!("\nCLI command on {} runs (in process, output above)", args.runs);
    for (label, took) in figures {
        eprintln!("{label:<45} {:>8.1} ms", took.as_secs_f64() * 1e3);
    }
    time_pages(&db, args.runs, args.repeat)
}

/// `consist ui` on the catalog, in this process: each page fetched `repeat` times over HTTP.
fn time_pages(db: &str, runs: usize, repeat: usize) -> Result<(), Box<dyn std::error::Error>> {
    let catalog = consist::Catalog::open(&consist::CatalogLocation::parse(db)?, Duration::from_secs(60))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        consist::ui::serve(catalog, &consist::ui::UiOptions::default(), |a| tx.send(a).unwrap())
    });
    let base = format!("http://{}", rx.recv()?);
    let chain_end = run_id(runs.clamp(1, 500) - 1);
    let pages = [
        ("runs (newest 50 of all)", "/runs".to_owned()),
        ("runs filtered and sorted", "/runs?model=mode_choice&hit=no&sort=duration&dir=desc".to_owned()),
        ("runs, text search, page 20", "/runs?q=mode_choice_0001&page=20".to_owned()),
        ("runs, page 1000", "/runs?page=1000".to_owned()),
        ("run page", format!("/runs/{}", run_id(12347))),
        ("lineage, 100 hops upstream", format!("/lineage?run={chain_end}&up=100&down=0")),
        ("lineage, 3 up and 3 down", format!("/lineage?run={}&up=3&down=3", run_id(250))),
        ("scenarios", "/scenarios".to_owned()),
        ("compare two runs", format!("/compare?run={}&run={}", run_id(12347), run_id(12348))),
        ("JSON: /api/runs", "/api/runs".to_owned()),
    ];
    eprintln!("\nconsist ui page on {runs} runs (median of {repeat}, request to last byte)");
    for (label, path) in pages {
        let mut took = Vec::new();
        for _ in 0..repeat {
            let start = Instant::now();
            let mut response = ureq::get(&format!("{base}{path}")).call()?;
            let bytes = response.body_mut().read_to_vec()?.len();
            took.push((start.elapsed(), bytes));
        }
        took.sort();
        let (median, bytes) = took[took.len() / 2];
        eprintln!("{label:<45} {:>8.1} ms {:>8} B", median.as_secs_f64() * 1e3, bytes);
    }
    Ok(())
}

/// The given directory, or a fresh one under the system temp dir.
fn tempfile_dir(dir: Option<PathBuf>) -> std::io::Result<PathBuf> {
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join(format!("consist-scale-{}", std::process::id())));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
