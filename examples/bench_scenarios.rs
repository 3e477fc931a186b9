//! A sweep written as a modeler writes one: S scenarios of an epidemic model, D days each, a
//! 20,000-row population frame passed from day to day through each scenario's coupler. Run cold
//! in a fresh directory, then again with a new tracker over the same catalog (all hits), timed.
//!
//! ```text
//! cargo run --example bench_scenarios -- 3 30            # 3 scenarios x 30 days
//! cargo run --example bench_scenarios -- 3 30 --read     # the caller also reads each day's frame
//! ```
//! Each scenario is a header run with `seed_population`, one `day` step per day (the population
//! frame in, the next day's frame out) and a `summarize` step over the last day: S x (D + 2)
//! step runs. `--read` makes the caller read every returned frame (e.g. to plot the epidemic
//! curve), as some workflows do. The last line printed is one JSON object; the all-hit pass is
//! reported before the tracker's drop (`warm_ms_per_step`, comparable to `bench_chain`'s
//! `warm_hit_ms_per_step`) and with it (`warm_s`).
//!
//! For consist's own code at -O2, as a project depending on consist gets it from
//! `[profile.dev.package."*"]`, add `--config 'profile.dev.package.consist.opt-level=2'`.

use std::time::Instant;

use consist::prelude::*;
use polars::prelude::*;
use serde::Serialize;
use serde_json::json;

/// People in the simulated population (rows of the frame passed from day to day).
const PEOPLE: usize = 20_000;
/// Compartments, as stored in the `state` column.
const SUSCEPTIBLE: i32 = 0;
const INFECTED: i32 = 1;
const RECOVERED: i32 = 2;

/// What differs between scenarios.
#[derive(Serialize, Clone, Copy)]
struct Epidemic {
    beta: f64,
    gamma: f64,
    seed: u64,
    initially_infected: usize,
}

/// A uniform draw in [0, 1) from (seed, day, person), the same on every run.
fn draw(seed: u64, day: u32, person: usize) -> f64 {
    let mut x = seed ^ (u64::from(day) << 32) ^ person as u64;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Day 0: everyone susceptible but the first `infected`.
#[step(outputs = ["population"])]
fn seed_population(infected: usize) -> StepResult<DataFrame> {
    let state: Vec<i32> = (0..PEOPLE).map(|i| if i < infected { INFECTED } else { SUSCEPTIBLE }).collect();
    Ok(df!(
        "person" => (0..PEOPLE as i64).collect::<Vec<_>>(),
        "state" => state,
        "days_infected" => vec![0i32; PEOPLE],
    )?)
}

/// One day: each susceptible person is infected with probability beta * I / N, each infected
/// person recovers with probability gamma.
#[step(outputs = ["population"])]
fn day(population: &DataFrame, epidemic: &Epidemic, day: u32) -> StepResult<DataFrame> {
    let state: Vec<i32> = population.column("state")?.i32()?.into_no_null_iter().collect();
    let days: Vec<i32> = population.column("days_infected")?.i32()?.into_no_null_iter().collect();
    let infected = state.iter().filter(|&&s| s == INFECTED).count() as f64;
    let force = epidemic.beta * infected / state.len() as f64;
    let (mut next, mut next_days) = (state.clone(), days.clone());
    for (i, s) in state.iter().enumerate() {
        let u = draw(epidemic.seed, day, i);
        match *s {
            SUSCEPTIBLE if u < force => next[i] = INFECTED,
            INFECTED if u < epidemic.gamma => next[i] = RECOVERED,
            INFECTED => next_days[i] += 1,
            _ => {}
        }
    }
    let mut out = population.clone();
    out.with_column(Column::new("state".into(), next))?;
    out.with_column(Column::new("days_infected".into(), next_days))?;
    Ok(out)
}

/// Final counts per compartment: [susceptible, infected, recovered].
#[step(outputs = ["counts"])]
fn summarize(population: &DataFrame) -> StepResult<[u64; 3]> {
    let mut counts = [0u64; 3];
    for s in population.column("state")?.i32()?.into_no_null_iter() {
        counts[s as usize] += 1;
    }
    Ok(counts)
}

/// What one pass did: step runs, of which executed, and the final counts per scenario.
#[derive(Default, PartialEq, Debug)]
struct Pass {
    steps: usize,
    executed: usize,
    counts: Vec<[u64; 3]>,
    frame_rows_read: usize,
}

/// Run every scenario once with `tracker`.
fn sweep(tracker: &Tracker, scenarios: &[Epidemic], days: u32, read: bool) -> consist::Result<Pass> {
    let mut pass = Pass::default();
    for (n, epidemic) in scenarios.iter().enumerate() {
        let scenario = tracker.scenario(&format!("epidemic_{n}")).config(epidemic).start()?;
        let mut note = |hit: bool| {
            pass.steps += 1;
            pass.executed += usize::from(!hit);
        };
        let seeded = scenario.run(seed_population::step(epidemic.initially_infected))?;
        note(seeded.cache_hit());
        for d in 0..days {
            let today = scenario.run(day::step(scenario.require("population")?, epidemic, d).iteration(d as i32))?;
            note(today.cache_hit());
            if read {
                pass.frame_rows_read += today.value()?.height();
            }
        }
        let summary = scenario.run(summarize::step(scenario.require("population")?))?;
        note(summary.cache_hit());
        pass.counts.push(*summary.value()?);
        scenario.finish()?;
    }
    Ok(pass)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let read = args.iter().any(|a| a == "--read");
    let numbers: Vec<u32> =
        args.iter().filter(|a| !a.starts_with("--")).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let (n_scenarios, days) = (numbers.first().copied().unwrap_or(3), numbers.get(1).copied().unwrap_or(30));
    let scenarios: Vec<Epidemic> = (0..n_scenarios)
        .map(|i| Epidemic {
            beta: 0.25 + 0.05 * f64::from(i),
            gamma: 0.1,
            seed: 42 + u64::from(i),
            initially_infected: 10 + i as usize,
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("provenance.duckdb");
    let open = || Tracker::builder(dir.path().join("runs")).catalog(&db).open();

    let start = Instant::now();
    let tracker = open()?;
    let cold = sweep(&tracker, &scenarios, days, read)?;
    drop(tracker);
    let cold_s = start.elapsed().as_secs_f64();
    assert_eq!(cold.executed, cold.steps, "a fresh directory executes every step");

    let start = Instant::now();
    let tracker = open()?;
    let warm = sweep(&tracker, &scenarios, days, read)?;
    let warm_hits_s = start.elapsed().as_secs_f64();
    drop(tracker);
    let warm_s = start.elapsed().as_secs_f64();
    assert_eq!(warm.executed, 0, "the second pass is all hits");
    assert_eq!(warm.counts, cold.counts, "hits return what the cold pass computed");
    assert_eq!(warm.frame_rows_read, cold.frame_rows_read);

    let runs = consist::Catalog::duckdb(&db, std::time::Duration::from_secs(10))
        .find_runs(&consist::RunQuery::default())?
        .len();
    println!("final counts [S, I, R] per scenario: {:?}", warm.counts);
    println!(
        "{}",
        json!({
            "scenarios": n_scenarios,
            "days": days,
            "rows": PEOPLE,
            "read_frames": read,
            "steps_per_pass": warm.steps,
            "cold_s": cold_s,
            "cold_ms_per_step": cold_s * 1e3 / cold.steps as f64,
            "warm_s": warm_s,
            "warm_ms_per_step": warm_hits_s * 1e3 / warm.steps as f64,
            "warm_drop_ms": (warm_s - warm_hits_s) * 1e3,
            "runs_in_catalog": runs,
        })
    );
    Ok(())
}
