//! `consist runs`: recent runs as a table or JSON.

use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Cli;
use crate::error::{Error, Result};
use crate::run::{Run, RunStatus};
use crate::store::RunQuery;

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
    #[arg(long)]
    pub status: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn duration_text(run: &Run) -> String {
    match run.duration() {
        Some(d) => {
            let ms = d.num_microseconds().unwrap_or(0) as f64 / 1000.0;
            if ms < 1000.0 { format!("{ms:.1} ms") } else { format!("{:.2} s", ms / 1000.0) }
        }
        None => "-".to_owned(),
    }
}

pub(super) fn run(cli: &Cli, args: &RunsArgs) -> Result<()> {
    let status = match args.status.as_deref() {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| Error::UnknownKey {
            kind: "status",
            key: s.to_owned(),
            known: "running, completed, failed".to_owned(),
        })?),
    };
    let catalog = cli.catalog();
    if !catalog.exists() {
        return Err(Error::no_database(catalog.db_path()));
    }
    let query = RunQuery { model: args.model.clone(), status, limit: Some(args.limit), ..RunQuery::default() };
    let runs = catalog.find_runs(&query)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs).expect("runs serialize"));
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["id", "model", "status", "cache hit", "created (UTC)", "duration"]);
    for run in &runs {
        table.add_row([
            run.id.clone(),
            run.model_name.clone(),
            run.status.to_string(),
            if run.is_cache_hit() { "yes".to_owned() } else { "no".to_owned() },
            run.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            duration_text(run),
        ]);
    }
    println!("{table}");
    println!("{} run(s) from {}", runs.len(), catalog.db_path().display());
    Ok(())
}
