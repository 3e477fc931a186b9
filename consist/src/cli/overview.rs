//! `consist summary`, `scenarios`, `scenario`: the catalog at a glance.

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;

use super::error::Result;
use super::{Cli, print_json, table};
use crate::store::RunQuery;

/// Options of `consist summary`.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn summary(cli: &Cli, args: &SummaryArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let summary = catalog.summary()?;
    if args.json {
        print_json(&summary);
        return Ok(());
    }
    println!("database       {}", catalog.location());
    println!(
        "runs           {} ({} completed, {} failed, {} running); {} scenario(s)",
        summary.runs, summary.completed, summary.failed, summary.running, summary.scenarios
    );
    if let Some(ratio) = summary.cache_hit_ratio {
        println!("cache hits     {} ({:.1}% of completed step runs)", summary.cache_hits, 100.0 * ratio);
    }
    println!("artifacts      {}", summary.artifacts);
    let when = |t: &Option<DateTime<Utc>>| t.as_ref().map_or_else(|| "-".to_owned(), table::time);
    println!("recorded       {} .. {} (UTC)", when(&summary.first_run), when(&summary.last_run));
    if summary.pending > 0 {
        println!("pending        {} run(s) not yet in the database (listed by `consist runs`)", summary.pending);
    }
    let mut t = table::new(&["model", "runs", "cache hits", "failed"]);
    for m in &summary.models {
        t.add_row([m.model.clone(), m.runs.to_string(), m.cache_hits.to_string(), m.failed.to_string()]);
    }
    println!("{t}");
    Ok(())
}

/// Options of `consist scenarios`.
#[derive(Debug, Args)]
pub struct ScenariosArgs {
    /// Show at most this many scenarios.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print `{"columns": [...], "rows": [[...]]}` instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn scenarios(cli: &Cli, args: &ScenariosArgs) -> Result<()> {
    let scenarios = cli.existing_catalog()?.scenarios(args.limit)?;
    if args.json {
        print_json(&scenarios);
        return Ok(());
    }
    let mut t = table::new(&["id", "name", "status", "created (UTC)", "runs", "cache hits", "iterations"]);
    for s in &scenarios {
        t.add_row([
            table::cell(&s.id),
            table::cell(&s.name),
            table::status(&s.status),
            table::cell(table::time(&s.created_at)),
            table::cell(s.runs.to_string()),
            table::cell(s.cache_hits.to_string()),
            table::cell(table::opt(s.iterations)),
        ]);
    }
    println!("{t}");
    println!("{} scenario(s)", scenarios.len());
    Ok(())
}

/// Options of `consist scenario`.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// A scenario's name (its latest run), or a header run id or unique prefix of one, as
    /// `runs --scenario` takes it.
    pub id: String,
    /// Print JSON (the header run and its children) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The output of `consist scenario --json`.
#[derive(Serialize)]
struct ScenarioView {
    scenario: crate::run::Run,
    runs: Vec<crate::run::Run>,
}

pub(super) fn scenario(cli: &Cli, args: &ScenarioArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let header = catalog.resolve_scenario(&args.id)?;
    let mut runs = catalog.find_runs(&RunQuery { parent: Some(header.id.clone()), ..RunQuery::default() })?;
    runs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    if args.json {
        print_json(&ScenarioView { scenario: header, runs });
        return Ok(());
    }
    println!("scenario {} ({}, {})", header.id, header.model_name, header.status);
    let mut t = table::new(&["iter", "model", "run", "status", "cache hit", "duration"]);
    for run in &runs {
        t.add_row([
            table::cell(table::opt(run.iteration)),
            table::cell(&run.model_name),
            table::cell(&run.id),
            table::status(run.status.as_str()),
            table::hit(run.is_cache_hit()),
            table::cell(table::duration(run)),
        ]);
    }
    println!("{t}");
    println!("{} run(s)", runs.len());
    Ok(())
}
