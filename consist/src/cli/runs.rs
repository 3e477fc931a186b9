//! `consist runs`, `show`, `artifacts`, `search`: finding runs and looking inside one.

use clap::Args;
use serde::Serialize;

use super::error::Result;
use super::{Cli, print_json, table};
use crate::Catalog;
use crate::artifact::Artifact;
use crate::catalog::explain::MissExplanation;
use crate::run::{Run, RunStatus};
use crate::store::{Direction, RunOrder, RunQuery, RunSort};

/// Options of `consist runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Show at most this many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Only runs of this model (step name).
    #[arg(long)]
    pub model: Option<String>,
    /// Only runs with this status (running, completed, failed).
    #[arg(long, value_parser = super::parse_status)]
    pub status: Option<RunStatus>,
    /// Only runs carrying this tag (repeat for several).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Only the children of this scenario: its name (its latest run), or its header run id or a
    /// unique prefix of one.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Only runs of this iteration.
    #[arg(long)]
    pub iteration: Option<i32>,
    /// Only runs that read an artifact under this key (what a change to it would re-run).
    #[arg(long)]
    pub input: Option<String>,
    /// Only cache hits (`yes`) or only runs that were not (`no`).
    #[arg(long, value_parser = ["yes", "no"])]
    pub hit: Option<String>,
    /// Sort by created, model, status, iteration or duration (largest first unless --asc).
    #[arg(long, default_value = "created", value_parser = ["created", "model", "status", "iteration", "duration"])]
    pub sort: String,
    /// Smallest first.
    #[arg(long)]
    pub asc: bool,
    /// Skip this many runs of the sorted list (a later page).
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Print JSON (an array of runs) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Print runs as a table (or JSON).
pub(super) fn print_runs(catalog: &Catalog, runs: &[Run], json: bool) {
    if json {
        print_json(runs);
        return;
    }
    let mut t = table::new(&["id", "model", "status", "iter", "cache hit", "created (UTC)", "duration"]);
    for run in runs {
        t.add_row([
            table::cell(&run.id),
            table::cell(&run.model_name),
            table::status(run.status.as_str()),
            table::cell(table::opt(run.iteration)),
            table::hit(run.is_cache_hit()),
            table::cell(table::time(&run.created_at)),
            table::cell(table::duration(run)),
        ]);
    }
    println!("{t}");
    println!("{} run(s) from {}", runs.len(), catalog.location());
}

pub(super) fn runs(cli: &Cli, args: &RunsArgs) -> Result<()> {
    let status = args.status;
    let catalog = cli.existing_catalog()?;
    let parent = args.scenario.as_deref().map(|s| catalog.resolve_scenario(s).map(|r| r.id)).transpose()?;
    let query = RunQuery {
        model: args.model.clone(),
        status,
        parent,
        iteration: args.iteration,
        tags: args.tag.clone(),
        input: args.input.clone(),
        cache_hit: args.hit.as_deref().map(|h| h == "yes"),
        order: RunOrder { by: RunSort::parse(&args.sort).unwrap_or_default(), ascending: args.asc },
        offset: args.offset,
        limit: Some(args.limit),
        ..RunQuery::default()
    };
    print_runs(&catalog, &catalog.find_runs(&query)?, args.json);
    Ok(())
}

/// Options of `consist show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id, or a unique prefix of one.
    pub run: String,
    /// Print the run's full record as JSON (the snapshot format).
    #[arg(long)]
    pub json: bool,
}

fn line(label: &str, value: impl std::fmt::Display) {
    println!("{label:<14} {value}");
}

pub(super) fn show(cli: &Cli, args: &ShowArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let record = catalog.resolve_record(&args.run)?;
    if args.json {
        print_json(&record);
        return Ok(());
    }
    let r = &record.run;
    line("run", &r.id);
    line("model", &r.model_name);
    line("status", r.status);
    line("scenario", r.parent_run_id.as_deref().unwrap_or("-"));
    line("iteration", table::opt(r.iteration));
    line("year", table::opt(r.year));
    if r.stage.is_some() || r.phase.is_some() {
        line("stage/phase", format!("{} / {}", r.stage.as_deref().unwrap_or("-"), r.phase.as_deref().unwrap_or("-")));
    }
    line("tags", if r.tags.is_empty() { "-".to_owned() } else { r.tags.join(", ") });
    line("signature", &r.signature);
    line("code hash", &r.code_hash);
    line("config hash", &r.config_hash);
    line("input hash", &r.input_hash);
    line("started", r.started_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"));
    line("duration", table::duration(r));
    match (r.cache_source(), MissExplanation::from_meta(&r.meta)) {
        (Some(source), _) => line("cache", format!("hit, reusing run {source}")),
        (None, Some(miss)) => line("cache", format!("miss: {}", miss.summary)),
        (None, None) => line("cache", "-"),
    }
    if let Some(error) = r.meta.get("error").and_then(|e| e.as_str()) {
        line("error", error);
    }
    if r.meta.get("pinned") == Some(&serde_json::Value::Bool(true)) {
        line("pinned", "yes: `db gc` keeps its files");
    }
    if let Some(evicted) = r.meta.get("evicted") {
        let at = evicted["at"].as_str().unwrap_or("?");
        line("outputs", format!("evicted by `db gc` at {at}: this signature executes again when called"));
    }
    println!("\nconfig:\n{}", serde_json::to_string_pretty(&record.config).unwrap_or_default());
    if !record.facets.is_empty() {
        println!("\nfacets:");
        for (k, v) in &record.facets {
            println!("  {k} = {v}");
        }
    }
    if let Some(serde_json::Value::Object(runtime)) = r.meta.get("runtime") {
        println!("\nruntime (recorded, not in the signature):");
        for (k, v) in runtime {
            println!("  {k} = {v}");
        }
    }
    let shown = ["cache_hit", "cache_source", "cache_miss", "error", crate::store::RUN_DIR_KEY, "runtime", "pinned"];
    let meta: serde_json::Map<_, _> =
        r.meta.iter().filter(|(k, _)| !shown.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    println!("\nmeta:\n{}", serde_json::to_string_pretty(&meta).unwrap_or_default());
    let sides = [(Direction::Input, &record.inputs), (Direction::Output, &record.outputs)];
    println!("\n{}", artifact_table(sides.iter().flat_map(|(d, list)| list.iter().map(move |a| (*d, a)))));
    Ok(())
}

/// Options of `consist artifacts`.
#[derive(Debug, Args)]
pub struct ArtifactsArgs {
    /// Run id, or a unique prefix of one.
    pub run: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One row of `consist artifacts --json`.
#[derive(Serialize)]
struct ArtifactRow<'a> {
    direction: Direction,
    exists: bool,
    #[serde(flatten)]
    artifact: &'a Artifact,
}

fn artifact_table<'a>(rows: impl Iterator<Item = (Direction, &'a Artifact)>) -> comfy_table::Table {
    let mut t = table::new(&["direction", "key", "id", "uri", "driver", "hash", "exists"]);
    for (direction, a) in rows {
        t.add_row([
            table::cell(direction.as_str()),
            table::cell(&a.key),
            table::cell(&a.id),
            table::cell(&a.uri),
            table::cell(a.driver.to_string()),
            table::cell(a.hash.as_deref().map(table::short).unwrap_or_else(|| "-".into())),
            table::ok(a.path.exists()),
        ]);
    }
    t
}

pub(super) fn artifacts(cli: &Cli, args: &ArtifactsArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let run = catalog.resolve_run(&args.run)?;
    let all = catalog.run_artifacts(&run.id)?;
    if args.json {
        let rows: Vec<ArtifactRow<'_>> = all
            .iter()
            .map(|(direction, artifact)| ArtifactRow {
                direction: *direction,
                exists: artifact.path.exists(),
                artifact,
            })
            .collect();
        print_json(&rows);
        return Ok(());
    }
    println!("{}", artifact_table(all.iter().map(|(d, a)| (*d, a))));
    println!("{} artifact(s) of run {}", all.len(), run.id);
    Ok(())
}

/// Options of `consist search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Text to look for (case-insensitive) in run ids, models, tags and descriptions (read as one
    /// line), and in configs.
    pub text: String,
    /// Show at most this many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn search(cli: &Cli, args: &SearchArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    print_runs(&catalog, &catalog.search_runs(&args.text, args.limit)?, args.json);
    Ok(())
}
