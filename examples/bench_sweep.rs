//! A parameter sweep on one core, then on all of them: the same preprocessing, then V values of a
//! growth rate each running its own chain of CPU-bound `#[step]`s.
//!
//! ```text
//! cargo run --example bench_sweep -- 20 4     # 20 values, 4 steps each
//! ```
//! Pass 1 runs the sweep one value after the other in a fresh directory; pass 2 runs it with
//! `Tracker::map` in another fresh directory; pass 3 re-runs the sweep sequentially over pass 2's
//! catalog, which must be all hits. Prints one JSON line with the times, the speed-up and the
//! process's peak RSS. A hit decodes its `Vec<f64>` in this crate's code (generic code is compiled
//! where it is used), at the example's -O0 unless `--config
//! 'profile.dev.package.consist-examples.opt-level=2'`: see BENCHMARKS.md, *A sweep on all cores*.

use std::time::Instant;

mod common;

use consist::prelude::*;
use serde_json::json;

/// Cells in the simulated state.
const CELLS: usize = 20_000;
/// Logistic-map iterations per cell and step (the CPU-bound part).
const ITERATIONS: usize = 150;

/// The shared preprocessing: an initial state.
#[step(outputs = ["state"])]
fn prepare(cells: usize) -> StepResult<Vec<f64>> {
    Ok((0..cells).map(|i| 0.1 + 0.8 * (i as f64 / cells as f64)).collect())
}

/// One stage of the simulation: iterate the logistic map with rate `r` on every cell.
#[step(outputs = ["state"])]
fn advance(#[consist(input)] state: Vec<f64>, r: f64, stage: u32) -> StepResult<Vec<f64>> {
    let _ = stage;
    Ok(state
        .into_iter()
        .map(|mut x| {
            for _ in 0..ITERATIONS {
                x = r * x * (1.0 - x);
            }
            x
        })
        .collect())
}

/// One value's chain of `stages` steps; returns (mean of the final state, steps executed).
fn chain(tracker: &Tracker, start: &Artifact, r: f64, stages: u32) -> consist::Result<(f64, usize)> {
    let mut state = start.clone();
    let mut last = Vec::new();
    let mut executed = 0;
    for stage in 0..stages {
        let result = tracker.run(advance::step(&state, r, stage))?;
        executed += usize::from(!result.cache_hit());
        state = result.output("state")?.clone();
        last = result.into_value()?;
    }
    Ok((last.iter().sum::<f64>() / last.len() as f64, executed))
}

/// One pass over the sweep in `dir`: (seconds, means, steps executed).
fn pass(dir: &std::path::Path, values: &[f64], stages: u32, parallel: bool) -> consist::Result<(f64, Vec<f64>, usize)> {
    let start = Instant::now();
    let tracker = Tracker::builder(dir.join("runs")).open()?;
    let prepared = tracker.run(prepare::step(CELLS))?;
    let initial = prepared.output("state")?.clone();
    let results: Vec<(f64, usize)> = if parallel {
        tracker.map(values.iter().copied(), |t, r| chain(t, &initial, r, stages))?
    } else {
        values.iter().map(|&r| chain(&tracker, &initial, r, stages)).collect::<consist::Result<_>>()?
    };
    drop(tracker);
    let executed = usize::from(!prepared.cache_hit()) + results.iter().map(|(_, e)| e).sum::<usize>();
    Ok((start.elapsed().as_secs_f64(), results.into_iter().map(|(m, _)| m).collect(), executed))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let (n_values, stages) = (args.first().copied().unwrap_or(20), args.get(1).copied().unwrap_or(4) as u32);
    let values: Vec<f64> = (0..n_values).map(|i| 2.5 + 1.4 * i as f64 / n_values.max(1) as f64).collect();
    let sequential_dir = tempfile::tempdir()?;
    let parallel_dir = tempfile::tempdir()?;
    let (seq_s, seq_means, seq_executed) = pass(sequential_dir.path(), &values, stages, false)?;
    let (par_s, par_means, par_executed) = pass(parallel_dir.path(), &values, stages, true)?;
    assert_eq!(seq_means, par_means, "the same results either way");
    assert_eq!(seq_executed, par_executed, "the same steps executed either way");
    let (rerun_s, _, rerun_executed) = pass(parallel_dir.path(), &values, stages, false)?;
    assert_eq!(rerun_executed, 0, "a sequential re-run of the parallel sweep is all hits");
    println!(
        "{}",
        json!({
            "values": n_values,
            "steps_per_value": stages,
            "steps": seq_executed,
            "threads": rayon_threads(),
            "sequential_s": seq_s,
            "parallel_s": par_s,
            "speedup": seq_s / par_s,
            "sequential_rerun_all_hits_s": rerun_s,
            "rerun_ms_per_step": rerun_s * 1e3 / seq_executed as f64,
            "peak_rss_mib": common::status_mib("VmHWM:"),
        })
    );
    Ok(())
}

/// Threads `Tracker::map` uses (rayon's global pool: `RAYON_NUM_THREADS`, else the cores).
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
