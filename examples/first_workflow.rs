//! First workflow (the Python seed `first-workflow.md`): two `#[step]` functions, an artifact
//! passed from one to the other, a config change that invalidates downstream, and lineage.
//!
//! ```text
//! cargo run --example first_workflow                    # both steps execute
//! cargo run --example first_workflow                    # both are cache hits
//! cargo run --example first_workflow -- --threshold 25  # both execute again: mean 40, count 3
//! ```
//! Compared with the Python seed: no `runtime_kwargs` repeating the config (the arguments *are*
//! the config), no string keys for parameters (the compiler checks the call), and the input
//! artifact is matched to the `cleaned` parameter by name and loaded as a `DataFrame`.

use std::path::Path;

use clap::Parser;
use consist::prelude::*;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// Remove rows whose value is below `threshold`.
#[step(outputs = ["cleaned"])]
fn clean_data(raw: &Path, threshold: f64) -> StepResult<DataFrame> {
    println!("  (executing clean_data, threshold {threshold})");
    let df =
        CsvReadOptions::default().with_has_header(true).try_into_reader_with_file_path(Some(raw.into()))?.finish()?;
    let mask = df.column("value")?.as_materialized_series().cast(&DataType::Float64)?.f64()?.gt_eq(threshold);
    Ok(df.filter(&mask)?)
}

/// Mean and count of the cleaned values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Summary {
    mean: f64,
    count: usize,
}

/// Summary statistics of the cleaned data.
#[step(outputs = ["summary"])]
fn summarize(cleaned: &DataFrame) -> StepResult<Summary> {
    println!("  (executing summarize)");
    let values = cleaned.column("value")?.as_materialized_series().cast(&DataType::Float64)?;
    Ok(Summary { mean: values.f64()?.mean().unwrap_or(f64::NAN), count: cleaned.height() })
}

#[derive(Parser)]
struct Args {
    /// Rows with a value below this are dropped.
    #[arg(long, default_value_t = 15.0)]
    threshold: f64,
}

fn status(cache_hit: bool) -> &'static str {
    if cache_hit { "completed (cache hit)" } else { "completed (executed)" }
}

fn main() -> consist::Result<()> {
    let args = Args::parse();
    let raw = Path::new("data/raw.csv");
    if !raw.exists() {
        std::fs::create_dir_all("data").map_err(|e| consist::Error::RunDir { path: "data".into(), source: e })?;
        std::fs::write(raw, "id,value\n1,10\n2,20\n3,30\n4,40\n5,50\n")
            .map_err(|e| consist::Error::RunDir { path: raw.into(), source: e })?;
    }
    // The catalog: ./provenance.duckdb, or what CONSIST_DB names (a DuckDB path or a postgres:// URL).
    let catalog = std::env::var("CONSIST_DB").unwrap_or_else(|_| "./provenance.duckdb".into());
    // `data/` is mounted as `inputs`: its files are recorded as `inputs://...`, so the catalog
    // stays valid wherever a colleague or a cluster keeps that folder.
    let tracker = Tracker::builder("./runs").catalog(&catalog).mount("inputs", "data").open()?;

    // Step 1: clean. `raw` is an input (hashed by content), `threshold` is config.
    let clean = tracker.run(clean_data::step(raw, args.threshold))?;
    println!("Clean: {}", status(clean.cache_hit()));

    // Step 2: summarize the artifact step 1 produced (a Merkle link to the clean run).
    let summary = tracker.run(summarize::step(clean.output("cleaned")?))?;
    println!("Summarize: {}", status(summary.cache_hit()));
    let s = summary.value()?;
    println!("Result: {{\"mean\": {:.1}, \"count\": {}}}", s.mean, s.count);

    // Lineage: what the summary was computed from.
    println!("Lineage of summary ({}):", summary.run.id);
    for artifact in tracker.artifacts_for_run(&summary.run.id)?.inputs.values() {
        let producer = artifact.run_id.as_deref().unwrap_or("raw file");
        println!("  input {} <- {} ({})", artifact.key, producer, artifact.uri);
        if let Some(run_id) = &artifact.run_id {
            for upstream in tracker.artifacts_for_run(run_id)?.inputs.values() {
                println!("    input {} ({})", upstream.key, upstream.uri);
            }
        }
    }
    Ok(())
}
