//! `consist summary`, `scenarios`, `scenario`: the catalog at a glance.

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;
use serde_json::Value as Json;

use super::sql::collect;
use super::{Cli, print_json, table};
use crate::error::Result;
use crate::store::RunQuery;

/// Options of `consist summary`.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs of one model in `consist summary`.
#[derive(Debug, Serialize)]
struct ModelCount {
    model: String,
    runs: i64,
    cache_hits: i64,
    failed: i64,
}

/// The output of `consist summary --json`.
#[derive(Debug, Serialize)]
struct Summary {
    runs: i64,
    completed: i64,
    failed: i64,
    running: i64,
    cache_hits: i64,
    /// Cache hits among completed step runs (scenario headers excluded).
    cache_hit_ratio: Option<f64>,
    scenarios: i64,
    artifacts: i64,
    first_run: Option<DateTime<Utc>>,
    last_run: Option<DateTime<Utc>>,
    /// Runs recorded in snapshots but not yet written to the database.
    pending: usize,
    models: Vec<ModelCount>,
}

fn int(v: &Json) -> i64 {
    v.as_i64().unwrap_or(0)
}

pub(super) fn summary(cli: &Cli, args: &SummaryArgs) -> Result<()> {
    let store = cli.duckdb()?;
    let conn = store.connect_read_only()?;
    let hit = "coalesce(json_extract(meta, '$.cache_hit')::BOOLEAN, false)";
    let scenario = "coalesce(json_extract_string(meta, '$.kind') = 'scenario', false)";
    let totals = collect(
        &conn,
        &format!(
            "SELECT count(*), count(*) FILTER (status = 'completed'), count(*) FILTER (status = 'failed'),
               count(*) FILTER (status = 'running'), count(*) FILTER ({hit}),
               count(*) FILTER (status = 'completed' AND NOT {scenario}), count(*) FILTER ({scenario}),
               (SELECT count(*) FROM artifact), epoch_us(min(created_at)), epoch_us(max(created_at))
             FROM run"
        ),
        &[],
    )
    .map_err(|e| store.error(e))?;
    let models = collect(
        &conn,
        &format!(
            "SELECT model_name, count(*), count(*) FILTER ({hit}), count(*) FILTER (status = 'failed')
             FROM run GROUP BY model_name ORDER BY count(*) DESC, model_name"
        ),
        &[],
    )
    .map_err(|e| store.error(e))?;
    drop(conn);
    let t = &totals.rows[0];
    let completed_steps = int(&t[5]);
    let summary = Summary {
        runs: int(&t[0]),
        completed: int(&t[1]),
        failed: int(&t[2]),
        running: int(&t[3]),
        cache_hits: int(&t[4]),
        cache_hit_ratio: (completed_steps > 0).then(|| int(&t[4]) as f64 / completed_steps as f64),
        scenarios: int(&t[6]),
        artifacts: int(&t[7]),
        first_run: t[8].as_i64().and_then(DateTime::from_timestamp_micros),
        last_run: t[9].as_i64().and_then(DateTime::from_timestamp_micros),
        pending: cli.catalog().pending_count(),
        models: models
            .rows
            .iter()
            .map(|r| ModelCount {
                model: r[0].as_str().unwrap_or_default().to_owned(),
                runs: int(&r[1]),
                cache_hits: int(&r[2]),
                failed: int(&r[3]),
            })
            .collect(),
    };
    if args.json {
        print_json(&summary);
        return Ok(());
    }
    println!("database       {}", cli.db_path().display());
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

/// One row of `consist scenarios` (`--json` prints an array of these).
#[derive(Debug, Serialize)]
struct ScenarioRow {
    /// The header run's id.
    id: String,
    /// The scenario name (the header's model name).
    name: String,
    /// The header's status.
    status: String,
    /// When the scenario started.
    created_at: DateTime<Utc>,
    /// Its step runs.
    runs: i64,
    /// How many of them were cache hits.
    cache_hits: i64,
    /// Highest iteration + 1, if any step had an iteration.
    iterations: Option<i64>,
}

pub(super) fn scenarios(cli: &Cli, args: &ScenariosArgs) -> Result<()> {
    let store = cli.duckdb()?;
    let conn = store.connect_read_only()?;
    let sql = format!(
        "SELECT s.id, s.model_name, s.status, epoch_us(s.created_at),
           count(c.id), count(c.id) FILTER (coalesce(json_extract(c.meta, '$.cache_hit')::BOOLEAN, false)),
           max(c.iteration) + 1
         FROM run s LEFT JOIN run c ON c.parent_run_id = s.id
         WHERE json_extract_string(s.meta, '$.kind') = 'scenario'
         GROUP BY s.id, s.model_name, s.status, s.created_at ORDER BY s.created_at DESC LIMIT {}",
        args.limit
    );
    let rows = collect(&conn, &sql, &[]).map_err(|e| store.error(e))?;
    let text = |v: &Json| v.as_str().unwrap_or_default().to_owned();
    let scenarios: Vec<ScenarioRow> = rows
        .rows
        .iter()
        .map(|r| ScenarioRow {
            id: text(&r[0]),
            name: text(&r[1]),
            status: text(&r[2]),
            created_at: r[3].as_i64().and_then(DateTime::from_timestamp_micros).unwrap_or_default(),
            runs: int(&r[4]),
            cache_hits: int(&r[5]),
            iterations: r[6].as_i64(),
        })
        .collect();
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
    /// Scenario (header run) id, or a unique prefix of one.
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
    let header = catalog.resolve_run(&args.id)?;
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
