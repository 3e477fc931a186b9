//! Iterative workflow (the Python seed `iterative-workflows.md`): a travel-demand model iterated
//! to equilibrium inside a scenario, extended incrementally, and queried for lineage and impact.
//!
//! ```text
//! cargo run --example iterative_workflow                     # baseline 10 + extended 15 iterations
//! CONSIST_LOG=consist=debug cargo run --example iterative_workflow   # every hit and miss, with reasons
//! cargo run -p consist -- runs --db-path runs/travel_demand/provenance.duckdb --model mode_choice
//! ```
//!
//! Per iteration: `logsums` (an inline trace), then five `#[step]` functions: `trip_distribution`
//! (with an optional input: last iteration's trips, absent in iteration 0),
//! `calculate_utilities`, `mode_choice`, `assignment`, `traffic_simulation`, whose new `skims`
//! feed the next iteration through the scenario's coupler. A final `summaries` step (a list input:
//! every iteration's trips) writes CSV tables and PNG plots, and `skims_by_iteration` writes every
//! iteration's skims as one output set. `traffic_simulation` takes its thread count as a runtime
//! parameter (recorded, not signed).
//!
//! Compared with the Python seed: the per-iteration seeds are part of each step's config (the seed
//! passes a different seed through unhashed `fn_args`), and `summaries` reads every iteration's
//! trips as inputs instead of receiving precomputed tables outside the signature, so an extended
//! scenario cannot reuse a summary of fewer iterations.

mod model;
mod plots;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use consist::prelude::*;
use consist::{ArtifactQuery, Driver, FrameSet, Hydration, RunQuery, RunStatus};
use indicatif::{ProgressBar, ProgressStyle};
use model::{AssignmentParams, DestinationParams, MODES, ModeParams, ZoneParams};
use polars::prelude::*;
use serde::Serialize;

#[derive(Parser)]
struct Args {
    /// Run directory (its database is `<run-dir>/provenance.duckdb`).
    #[arg(long, default_value = "runs/travel_demand")]
    run_dir: PathBuf,
    /// Iterations of the baseline scenario (at least 1).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..))]
    iterations: i32,
    /// Iterations of the extended scenario (at least --iterations: it extends the baseline).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(i32).range(1..))]
    extended: i32,
    /// Keep the previous run directory and its cache (by default the demo starts cold).
    #[arg(long)]
    keep: bool,
}

/// Everything that defines a scenario (recorded in its header run).
#[derive(Debug, Clone, Serialize)]
struct ScenarioConfig {
    n_iterations: i32,
    seed: u64,
    skim_perturbation: f64,
    destination_update_share: f64,
    zone_params: ZoneParams,
    mode_params: ModeParams,
    dest_params: DestinationParams,
    assignment_params: AssignmentParams,
}

/// Cache hits and executions, per iteration (`None`: init, summaries and skims_by_iteration).
#[derive(Default)]
struct Tally(BTreeMap<Option<i32>, (usize, usize)>);

impl Tally {
    fn note<T>(&mut self, iteration: Option<i32>, result: &RunResult<T>) {
        let entry = self.0.entry(iteration).or_default();
        if result.cache_hit() { entry.0 += 1 } else { entry.1 += 1 }
    }

    /// (hits, executed) over iterations in `range`.
    fn sum(&self, range: std::ops::Range<i32>) -> (usize, usize) {
        self.0
            .iter()
            .filter(|(i, _)| i.is_some_and(|i| range.contains(&i)))
            .fold((0, 0), |a, (_, c)| (a.0 + c.0, a.1 + c.1))
    }
}

struct Outcome {
    scenario_id: String,
    init: RunResult<()>,
    tally: Tally,
    summaries: RunResult<()>,
    skims: RunResult<FrameSet>,
}

/// One iteration of the loop; every result is tallied. Returns its trips and its skims.
fn iterate(
    scenario: &Scenario,
    cfg: &ScenarioConfig,
    i: i32,
    tally: &mut Tally,
) -> consist::Result<(Artifact, Artifact)> {
    let seed = cfg.seed + i as u64;
    let logsums = scenario
        .step("logsums")
        .code_hash(model::od_logsums::code_hash())
        .config(&cfg.mode_params)
        .facet_from(["beta_time", "beta_cost", "asc_transit", "asc_walk", "fuel_cost_per_mile", "transit_fare"])
        .input_key("skims", "skims")
        .input_key("zones", "zones")
        .outputs(["logsums"])
        .iteration(i)
        .hydration(Hydration::InputsMissing)
        .trace(|t| {
            if !t.is_cached() {
                let mut df = model::od_logsums(&t.load("skims")?, &t.load("zones")?, &cfg.mode_params)?;
                t.log_frame("logsums", &mut df)?;
            }
            Ok(())
        })?;
    tally.note(Some(i), &logsums);

    let distribution = scenario.run(
        model::trip_distribution::step(
            scenario.require("persons")?,
            scenario.require("zones")?,
            logsums.output("logsums")?,
            scenario.get("trips"), // last iteration's trips: absent in iteration 0
            &cfg.dest_params,
            cfg.destination_update_share,
            seed,
        )
        .facet_from(["dest_params.beta_size", "dest_params.beta_access", "update_share"])
        .iteration(i),
    )?;
    tally.note(Some(i), &distribution);

    let utilities = scenario.run(
        model::calculate_utilities::step(
            distribution.output("trips")?,
            scenario.require("skims")?,
            scenario.require("zones")?,
            &cfg.mode_params,
        )
        .facet_from([
            "mode_params.beta_time",
            "mode_params.beta_cost",
            "mode_params.asc_transit",
            "mode_params.asc_walk",
        ])
        .iteration(i),
    )?;
    tally.note(Some(i), &utilities);
    let choice = scenario.run(model::mode_choice::step(utilities.output("utilities")?, seed).iteration(i))?;
    tally.note(Some(i), &choice);
    let volumes = scenario.run(model::assignment::step(choice.output("trips_with_modes")?).iteration(i))?;
    tally.note(Some(i), &volumes);
    let skims = scenario.run(
        model::traffic_simulation::step(
            volumes.output("volumes")?,
            scenario.require("skims")?,
            &cfg.assignment_params,
            threads(),
        )
        .facet_from(["assignment_params.bpr_alpha", "assignment_params.bpr_beta", "assignment_params.base_capacity"])
        .iteration(i),
    )?;
    tally.note(Some(i), &skims);
    Ok((choice.output("trips_with_modes")?.clone(), skims.output("skims")?.clone()))
}

/// Every iteration's skims under one key, one Parquet file per iteration beside a manifest (an
/// output set): what a downstream tool reads as a folder, or `FrameSet::read` as frames.
#[step(outputs = ["skims_by_iteration"])]
fn skims_by_iteration(skims: Vec<&DataFrame>) -> StepResult<FrameSet> {
    let mut set = FrameSet::new();
    for (i, frame) in skims.into_iter().enumerate() {
        set.insert(format!("iteration-{i:02}"), frame.clone());
    }
    Ok(set)
}

/// Per-iteration tables (CSV) and plots (PNG) from every iteration's `trips_with_modes` (a list
/// input: one Merkle link per iteration, in order), logged by hand through the context.
/// Its code identity follows `model::summarize` and the `plots` functions it calls into their
/// files, like any code of this crate.
#[step(outputs = ["mode_shares", "iteration_summaries", "pmt_totals", "mode_shares_plot", "iteration_totals_plot"])]
fn summaries(trips_with_modes: Vec<&DataFrame>, ctx: &mut StepContext<'_>) -> StepResult<()> {
    let dir = ctx.output_dir()?.join("summary");
    std::fs::create_dir_all(&dir)?;
    let rows = trips_with_modes.iter().map(|trips| model::summarize(trips)).collect::<PolarsResult<Vec<_>>>()?;
    let iteration: Vec<i64> = (0..rows.len() as i64).collect();
    let column = |f: &dyn Fn(&model::IterationSummary) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let mut shares = df!("iteration" => iteration.clone())?;
    let mut pmt = df!("iteration" => iteration.clone())?;
    for (m, mode) in MODES.iter().enumerate() {
        shares.with_column(Column::new((*mode).into(), column(&|r| r.shares[m])))?;
        pmt.with_column(Column::new((*mode).into(), column(&|r| r.pmt[m])))?;
    }
    let mut totals = df!(
        "iteration" => iteration,
        "trips" => rows.iter().map(|r| r.trips as i64).collect::<Vec<_>>(),
        "vmt" => column(&|r| r.vmt),
        "car_share" => column(&|r| r.shares[0]),
    )?;
    for (key, df) in [("mode_shares", &mut shares), ("iteration_summaries", &mut totals), ("pmt_totals", &mut pmt)] {
        let path = dir.join(format!("{key}.csv"));
        CsvWriter::new(std::fs::File::create(&path)?).finish(df)?;
        ctx.log_file(key, &path)?;
    }
    let series = |f: &dyn Fn(&model::IterationSummary, usize) -> f64| -> Vec<plots::Series<'static>> {
        MODES
            .iter()
            .enumerate()
            .map(|(m, name)| plots::Series {
                name,
                points: rows.iter().enumerate().map(|(i, r)| (i as f64, f(r, m))).collect(),
            })
            .collect()
    };
    let shares_png = dir.join("mode_shares.png");
    plots::line_chart(&shares_png, "Mode shares by iteration", "share", &series(&|r, m| r.shares[m]))?;
    ctx.log_file("mode_shares_plot", &shares_png)?;
    let vmt =
        [plots::Series { name: "car", points: rows.iter().enumerate().map(|(i, r)| (i as f64, r.vmt)).collect() }];
    let totals_png = dir.join("iteration_totals.png");
    let pmt_series = series(&|r, m| r.pmt[m]);
    plots::side_by_side(
        &totals_png,
        ("Vehicle miles traveled", "VMT", &vmt),
        ("Person miles traveled by mode", "PMT", &pmt_series),
    )?;
    ctx.log_file("iteration_totals_plot", &totals_png)?;
    Ok(())
}

fn run_scenario(tracker: &Tracker, name: &str, cfg: &ScenarioConfig) -> consist::Result<Outcome> {
    let scenario = tracker
        .scenario(name)
        .config(cfg)
        .facet_from(["n_iterations"])
        .tag("examples")
        .tag("simulation")
        .tag("travel_demand")
        .start()?;
    let mut tally = Tally::default();
    let init = scenario.run(
        model::init::step(&cfg.zone_params, &cfg.mode_params, cfg.skim_perturbation).facet_from(["skim_perturbation"]),
    )?;
    tally.note(None, &init);
    let init = init.discard_value();

    let bar = ProgressBar::new(cfg.n_iterations as u64).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} iterations {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_owned());
    let (mut trips, mut skims) = (Vec::new(), Vec::new());
    for i in 0..cfg.n_iterations {
        let (trips_i, skims_i) = iterate(&scenario, cfg, i, &mut tally)?;
        trips.push(trips_i);
        skims.push(skims_i);
        let (hits, executed) = tally.sum(i..i + 1);
        bar.set_message(format!("(iteration {i}: {hits} hits, {executed} executed)"));
        bar.inc(1);
    }
    bar.finish_and_clear();

    let summaries = scenario.run(summaries::step(&trips).hydration(Hydration::OutputsAll))?;
    tally.note(None, &summaries);
    let skims = scenario.run(skims_by_iteration::step(&skims))?;
    tally.note(None, &skims);
    let header = scenario.finish()?;
    Ok(Outcome { scenario_id: header.id, init, tally, summaries, skims })
}

/// The simulation's worker threads: this machine's cores (a runtime parameter: another machine's
/// count does not invalidate its cache).
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn section(title: &str) {
    println!("\n== {title} ==");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    consist::init_logging();
    let args = Args::parse();
    if args.extended < args.iterations {
        return Err(format!(
            "--extended {} is fewer than --iterations {}: the extended scenario continues the baseline, \
             so pass at least as many iterations",
            args.extended, args.iterations
        )
        .into());
    }
    let clock = Instant::now();
    if !args.keep && args.run_dir.exists() {
        std::fs::remove_dir_all(&args.run_dir)?;
    }
    let tracker = Tracker::builder(&args.run_dir).hashing(HashingStrategy::Fast).open()?;
    let base_cfg = ScenarioConfig {
        n_iterations: args.iterations,
        seed: 0,
        skim_perturbation: 0.1,
        destination_update_share: 0.2,
        zone_params: ZoneParams::default(),
        mode_params: ModeParams::default(),
        dest_params: DestinationParams::default(),
        assignment_params: AssignmentParams::default(),
    };

    section(&format!("1. Baseline scenario: {} iterations", args.iterations));
    let base = run_scenario(&tracker, "travel_demand_demo", &base_cfg)?;
    let shares: DataFrame = tracker.load(base.summaries.output("mode_shares")?)?;
    println!("Mode shares per iteration (they settle as congestion feeds back):\n{shares}");
    for key in ["mode_shares_plot", "iteration_totals_plot", "iteration_summaries"] {
        println!("{key}: {}", relative(&base.summaries.output(key)?.path));
    }
    let by_iteration = base.skims.output("skims_by_iteration")?;
    let members = base.skims.value()?.len();
    println!(
        "skims_by_iteration: {} (an output set: {members} Parquet files and a manifest)",
        relative(&by_iteration.path)
    );

    section("2. Lineage of the final skims (depth 4)");
    let final_skims = tracker.get_artifact("skims")?.ok_or("no skims artifact was recorded")?;
    print!("{}", tracker.artifact_lineage(&final_skims.id, 4)?.render());

    section(&format!("3. Extended scenario: {} iterations", args.extended));
    let extended_cfg = ScenarioConfig { n_iterations: args.extended, ..base_cfg };
    let ext = run_scenario(&tracker, "travel_demand_demo_extended", &extended_cfg)?;
    let old = ext.tally.sum(0..args.iterations);
    let new = ext.tally.sum(args.iterations..args.extended);
    println!("iterations 0-{}: {} steps were cache hits, {} executed", args.iterations - 1, old.0, old.1);
    println!(
        "iterations {}-{}: {} steps were cache hits, {} executed",
        args.iterations,
        args.extended - 1,
        new.0,
        new.1
    );
    let how = |r: &RunResult<()>| if r.cache_hit() { "cache hit" } else { "executed" };
    println!("init: {}; summaries (reads every iteration's trips): {}", how(&ext.init), how(&ext.summaries));

    section("4. Materialize a cached artifact of the extended scenario");
    // Iteration 3 as in the seed (or the last baseline iteration, for short runs).
    let cached_iteration = 3.min(args.iterations - 1);
    let query = RunQuery::default().parent(&ext.scenario_id).model("mode_choice").iteration(cached_iteration);
    let cached = tracker
        .find_runs(&query)?
        .into_iter()
        .find(|r| r.is_cache_hit())
        .ok_or("that iteration of mode_choice was not a cache hit")?;
    let parquet: Vec<Artifact> = tracker
        .find_artifacts(&ArtifactQuery::created_by(&cached.id))?
        .into_iter()
        .filter(|a| a.driver == Driver::Parquet)
        .collect();
    println!(
        "{} (cache hit of {}) reuses {}",
        cached.id,
        cached.cache_source().unwrap_or("?"),
        relative(&parquet[0].path)
    );
    let target = args.run_dir.join("outputs").join(format!("{}_materialized", ext.scenario_id));
    for path in tracker.materialize(&parquet[..1], &target)? {
        println!("materialized into {}", relative(&path));
    }

    section("5. Provenance queries on the baseline");
    let completed = RunQuery::default().parent(&base.scenario_id).status(RunStatus::Completed);
    let iteration = 5.min(args.iterations - 1);
    println!("Runs of iteration {iteration}, with the artifacts they created:");
    for run in tracker.find_runs(&completed.clone().iteration(iteration))?.iter().rev() {
        let created: Vec<String> =
            tracker.find_artifacts(&ArtifactQuery::created_by(&run.id))?.into_iter().map(|a| a.key).collect();
        println!("  {:<20} {:<30} {}", run.model_name, run.id, created.join(", "));
    }
    println!("Runs that consumed `zones` (what a parking-cost change would re-run):");
    // One query (the seed loops over the runs and asks each for its inputs).
    let mut consumers = tracker.find_runs(&completed.clone().input("zones"))?;
    consumers.sort_by_key(|r| (r.iteration, r.model_name.clone()));
    let per_model = consumers.iter().fold(BTreeMap::<&str, usize>::new(), |mut m, r| {
        *m.entry(r.model_name.as_str()).or_default() += 1;
        m
    });
    for run in consumers.iter().take(4) {
        println!("  {:<20} {:<30} iteration {}", run.model_name, run.id, run.iteration.unwrap_or(-1));
    }
    println!("  ... {} runs in all: {per_model:?}", consumers.len());

    let location = tracker.catalog().location();
    let database = location.duckdb_path().map_or_else(|| location.to_string(), relative);
    println!("\nwall time: {:.2} s (database: {database})", clock.elapsed().as_secs_f64());
    Ok(())
}

/// A path relative to the current directory when it is below it.
fn relative(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd).unwrap_or(path).display().to_string()
}
