//! What each page shows, asked of the library ([`Catalog`]): the data a template draws and the
//! JSON `/api/...` returns (the library's own types, as the CLI's `--json` prints them).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value as Json, json};

use super::params::Params;
use crate::artifact::{Artifact, Driver};
use crate::catalog::Catalog;
use crate::error::Error;
use crate::run::{Run, RunStatus};
use crate::store::{LineageStart, RunOrder, RunQuery, RunSort};

/// The pages.
#[derive(Debug, Clone)]
pub(super) enum Page {
    /// Runs, filtered, sorted and paged.
    Runs,
    /// One run.
    Run(String),
    /// The lineage graph of a run (`run=`) or an artifact (`artifact=`).
    Lineage,
    /// Scenarios.
    Scenarios,
    /// One scenario's steps by iteration.
    Scenario(String),
    /// Runs side by side (`run=` repeated).
    Compare,
    /// An artifact's first rows and schema.
    Preview(String),
}

/// A page's data: the template's context and the JSON behind it.
pub(super) struct View {
    /// The template that draws it.
    pub template: &'static str,
    /// The page's title.
    pub title: String,
    /// What the template reads.
    pub context: Json,
    /// What `/api/...` returns.
    pub api: Json,
    /// For a paged listing, how many match in all.
    pub total: Option<usize>,
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub(super) enum PageError {
    /// A parameter is wrong; the message names it.
    BadRequest(String),
    /// The library failed or found nothing.
    Library(Error),
}

impl PageError {
    /// The HTTP status it answers with.
    pub(super) fn status(&self) -> StatusCode {
        match self {
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Library(Error::RunNotFound(_) | Error::ArtifactNotFound(_)) => StatusCode::NOT_FOUND,
            PageError::Library(Error::AmbiguousRun { .. } | Error::Query { .. }) => StatusCode::BAD_REQUEST,
            PageError::Library(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::BadRequest(m) => f.write_str(m),
            PageError::Library(e) => write!(f, "{e}"),
        }
    }
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError::Library(e)
    }
}

type Result<T> = std::result::Result<T, PageError>;

/// Runs per page unless `per=` says otherwise (at most [`MAX_PER_PAGE`]).
pub(super) const PER_PAGE: usize = 50;
pub(super) const MAX_PER_PAGE: usize = 500;
/// Lineage hops drawn unless `up=` / `down=` say otherwise.
pub(super) const LINEAGE_UP: usize = 3;
pub(super) const LINEAGE_DOWN: usize = 1;
const MAX_HOPS: usize = 500;
const PREVIEW_ROWS: usize = 50;

/// Build a page's view: its reads share one connection to the catalog, released before the page
/// is sent.
pub(super) fn build(catalog: &Catalog, page: &Page, params: &Params) -> Result<View> {
    let _session = catalog.read_session()?;
    match page {
        Page::Runs => runs(catalog, params),
        Page::Run(id) => run(catalog, id),
        Page::Lineage => lineage(catalog, params),
        Page::Scenarios => scenarios(catalog),
        Page::Scenario(id) => scenario(catalog, id),
        Page::Compare => compare(catalog, params),
        Page::Preview(id) => preview(catalog, id),
    }
}

/// A run as a table row shows it.
#[derive(Serialize)]
struct RunRow<'a> {
    #[serde(flatten)]
    run: &'a Run,
    cache_hit: bool,
    duration: String,
    created: String,
}

fn row(run: &Run) -> RunRow<'_> {
    RunRow {
        run,
        cache_hit: run.is_cache_hit(),
        duration: duration(run),
        created: run.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
    }
}

fn duration(run: &Run) -> String {
    match run.ended_at {
        Some(end) => {
            let ms = (end - run.started_at).num_milliseconds();
            if ms < 1000 { format!("{ms} ms") } else { format!("{:.1} s", ms as f64 / 1000.0) }
        }
        None => "-".into(),
    }
}

/// The filters of the runs page, from its parameters.
fn runs_query(catalog: &Catalog, params: &Params) -> Result<RunQuery> {
    let mut query = RunQuery {
        model: params.get("model").map(str::to_owned),
        iteration: params.number("iteration")?,
        tags: params.all("tag").into_iter().map(str::to_owned).collect(),
        text: params.get("q").map(str::to_owned),
        input: params.get("input").map(str::to_owned),
        ..RunQuery::default()
    };
    if let Some(status) = params.get("status") {
        query.status =
            Some(RunStatus::parse(status).ok_or_else(|| {
                PageError::BadRequest(format!("`status={status}`: use running, completed or failed"))
            })?);
    }
    if let Some(scenario) = params.get("scenario") {
        query.parent = Some(catalog.resolve_scenario(scenario)?.id);
    }
    query.cache_hit = match params.get("hit") {
        None => None,
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some(other) => return Err(PageError::BadRequest(format!("`hit={other}`: use yes or no"))),
    };
    for facet in params.all("facet") {
        let (key, value) = facet.split_once('=').ok_or_else(|| {
            PageError::BadRequest(format!("`facet={facet}`: write it as key=value, e.g. facet=scenario=baseline"))
        })?;
        // A value that reads as JSON (10, true, "x") is compared as that; else as a string.
        let value = serde_json::from_str(value).unwrap_or_else(|_| Json::String(value.to_owned()));
        query.facets.push((key.trim().to_owned(), value));
    }
    let by = match params.get("sort") {
        None => RunSort::Created,
        Some(name) => RunSort::parse(name).ok_or_else(|| {
            let names: Vec<&str> = RunSort::ALL.iter().map(|s| s.as_str()).collect();
            PageError::BadRequest(format!("`sort={name}`: sort by one of {}", names.join(", ")))
        })?,
    };
    let ascending = match params.get("dir") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => return Err(PageError::BadRequest(format!("`dir={other}`: use asc or desc"))),
    };
    query.order = RunOrder { by, ascending };
    Ok(query)
}

fn runs(catalog: &Catalog, params: &Params) -> Result<View> {
    let mut query = runs_query(catalog, params)?;
    let per = params.number::<usize>("per")?.unwrap_or(PER_PAGE).clamp(1, MAX_PER_PAGE);
    let asked = params.number::<usize>("page")?.unwrap_or(1).max(1);
    let total = catalog.count_runs(&query)?;
    let pages = total.div_ceil(per).max(1);
    // A page past the last shows the last (a link kept while runs were purged, a typo).
    let page = asked.min(pages);
    query.offset = (page - 1) * per;
    query.limit = Some(per);
    let runs = catalog.find_runs(&query)?;
    // The filter form's model list; an open page's refresh (`partial`) draws the table only.
    let models: Vec<String> = if catalog.has_store() && params.get("partial").is_none() {
        let mut models: Vec<String> = catalog.summary()?.models.into_iter().map(|m| m.model).collect();
        models.sort();
        models
    } else {
        Vec::new()
    };
    let context = json!({
        "runs": runs.iter().map(row).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "pages": pages,
        "per": per,
        "models": models,
        "filters": {
            "model": params.get("model"), "status": params.get("status"), "scenario": params.get("scenario"),
            "iteration": params.get("iteration"), "tag": params.get("tag"), "hit": params.get("hit"),
            "facet": params.get("facet"), "q": params.get("q"), "input": params.get("input"),
        },
        "sort": query.order.by.as_str(),
        "dir": if query.order.ascending { "asc" } else { "desc" },
        "sorts": RunSort::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "keep_sort": params.without(&["page", "sort", "dir"]),
        "keep_page": params.without(&["page"]),
    });
    Ok(View {
        template: "runs.html",
        title: format!("Runs ({total})"),
        context,
        api: serde_json::to_value(&runs).unwrap_or(Json::Null),
        total: Some(total),
    })
}

/// A config as indented rows: `(depth, key, value)`, a nested object's value left empty.
fn tree_rows(value: &Json, depth: usize, key: &str, out: &mut Vec<Json>) {
    match value {
        // An empty config has no rows (the page says so); an empty nested object is a value.
        Json::Object(map) if map.is_empty() && depth == 0 => {}
        Json::Null if depth == 0 => {}
        Json::Object(map) if !map.is_empty() => {
            if depth > 0 {
                out.push(json!({ "depth": depth - 1, "key": key, "value": Json::Null }));
            }
            for (k, v) in map {
                tree_rows(v, depth + 1, k, out);
            }
        }
        other => out.push(json!({ "depth": depth.saturating_sub(1), "key": key, "value": other.to_string() })),
    }
}

/// An artifact as a row: where it is, whether the file is there, who produced it.
fn artifact_row(a: &Artifact) -> Json {
    json!({
        "id": a.id, "key": a.key, "uri": a.uri, "driver": a.driver.to_string(), "hash": a.hash,
        "producer": a.run_id, "exists": a.path.exists(),
        "previewable": matches!(a.driver, Driver::Parquet | Driver::Csv),
    })
}

fn run(catalog: &Catalog, id: &str) -> Result<View> {
    let record = catalog.resolve_record(id)?;
    let r = &record.run;
    let inputs: Vec<Artifact> = record.inputs.iter().map(|a| catalog.here(a.clone())).collect();
    let outputs: Vec<Artifact> = record.outputs.iter().map(|a| catalog.here(a.clone())).collect();
    let explanation = catalog.explain_record(&record);
    let mut config = Vec::new();
    tree_rows(&record.config, 0, "", &mut config);
    let meta = |key: &str| r.meta.get(key).cloned().unwrap_or(Json::Null);
    let runtime: BTreeMap<String, String> = match r.meta.get("runtime") {
        Some(Json::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        _ => BTreeMap::new(),
    };
    let context = json!({
        "run": row(r),
        "config": config,
        "facets": record.facets.iter().map(|(k, v)| (k.clone(), v.to_string())).collect::<BTreeMap<_, _>>(),
        "runtime": runtime,
        "inputs": inputs.iter().map(artifact_row).collect::<Vec<_>>(),
        "outputs": outputs.iter().map(artifact_row).collect::<Vec<_>>(),
        "cache_source": r.cache_source(),
        "host": meta("host"),
        "pid": meta("pid"),
        "started": r.started_at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        "ended": r.ended_at.map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()),
        "error": meta("error"),
        "pinned": r.meta.get("pinned") == Some(&Json::Bool(true)),
        "is_scenario": r.is_scenario(),
        "evicted": r.meta.contains_key("evicted"),
        "miss": explanation.miss,
        "diff": explanation.diff,
        "run_dir": record.run_dir.display().to_string(),
    });
    Ok(View {
        template: "run.html",
        title: format!("{} {}", r.model_name, r.id),
        context,
        api: serde_json::to_value(&record).unwrap_or(Json::Null),
        total: None,
    })
}

fn lineage(catalog: &Catalog, params: &Params) -> Result<View> {
    let start = match (params.get("run"), params.get("artifact")) {
        (Some(run), _) => LineageStart::Run(run.to_owned()),
        (None, Some(artifact)) => LineageStart::Artifact(artifact.to_owned()),
        (None, None) => {
            return Err(PageError::BadRequest(
                "a lineage is of a run or an artifact: /lineage?run=ID or /lineage?artifact=ID".into(),
            ));
        }
    };
    let up = params.number::<usize>("up")?.unwrap_or(LINEAGE_UP).min(MAX_HOPS);
    let down = params.number::<usize>("down")?.unwrap_or(LINEAGE_DOWN).min(MAX_HOPS);
    let graph = catalog.lineage_graph(&start, up, down)?;
    let deepest_up = graph.runs.iter().map(|r| -r.hops).max().unwrap_or(0).max(0);
    let deepest_down = graph.runs.iter().map(|r| r.hops).max().unwrap_or(0).max(0);
    let (kind, focus) = match &start {
        LineageStart::Run(_) => ("run", graph.focus.clone()),
        LineageStart::Artifact(_) => ("artifact", graph.focus.clone()),
    };
    let context = json!({
        "kind": kind,
        "focus": focus,
        "up": up,
        "down": down,
        "runs": graph.runs.len(),
        "artifacts": graph.artifacts.len(),
        "reached_up": deepest_up,
        "reached_down": deepest_down,
        "layout": super::graph::layout(&graph),
    });
    Ok(View {
        template: "lineage.html",
        title: format!("Lineage of {focus}"),
        context,
        api: serde_json::to_value(&graph).unwrap_or(Json::Null),
        total: None,
    })
}

fn scenarios(catalog: &Catalog) -> Result<View> {
    let scenarios = if catalog.has_store() { catalog.scenarios(1000)? } else { Vec::new() };
    Ok(View {
        template: "scenarios.html",
        title: "Scenarios".into(),
        context: json!({ "scenarios": scenarios }),
        api: serde_json::to_value(&scenarios).unwrap_or(Json::Null),
        total: None,
    })
}

fn scenario(catalog: &Catalog, id: &str) -> Result<View> {
    let header = catalog.resolve_scenario(id)?;
    if !header.is_scenario() {
        let within = header.parent_run_id.as_deref().map(|p| format!(" (its scenario is `{p}`)")).unwrap_or_default();
        return Err(PageError::BadRequest(format!("`{}` is a step's run, not a scenario{within}", header.id)));
    }
    let mut runs = catalog.find_runs(&RunQuery { parent: Some(header.id.clone()), ..RunQuery::default() })?;
    runs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    // Steps in the order they first ran; columns are iterations (runs without one first).
    let mut models: Vec<&str> = Vec::new();
    let mut iterations: Vec<Option<i32>> = Vec::new();
    for run in &runs {
        if !models.contains(&run.model_name.as_str()) {
            models.push(&run.model_name);
        }
        if !iterations.contains(&run.iteration) {
            iterations.push(run.iteration);
        }
    }
    iterations.sort();
    let grid: Vec<Json> = models
        .iter()
        .map(|model| {
            let cells: Vec<Json> = iterations
                .iter()
                .map(|it| {
                    let here: Vec<RunRow> =
                        runs.iter().filter(|r| r.model_name == *model && r.iteration == *it).map(row).collect();
                    json!(here)
                })
                .collect();
            json!({ "model": model, "cells": cells })
        })
        .collect();
    let (hits, executed) = runs.iter().fold((0, 0), |(h, e), r| if r.is_cache_hit() { (h + 1, e) } else { (h, e + 1) });
    let context = json!({
        "scenario": row(&header),
        "iterations": iterations.iter().map(|i| i.map_or_else(|| "-".to_owned(), |i| i.to_string())).collect::<Vec<_>>(),
        "grid": grid,
        "hits": hits,
        "executed": executed,
        "runs": runs.len(),
    });
    let api = json!({ "scenario": header, "runs": runs });
    Ok(View { template: "scenario.html", title: format!("Scenario {}", header.model_name), context, api, total: None })
}

fn compare(catalog: &Catalog, params: &Params) -> Result<View> {
    let ids = params.all("run");
    if ids.len() < 2 {
        return Err(PageError::BadRequest(
            "compare two or more runs: /compare?run=A&run=B (ids or unique prefixes)".into(),
        ));
    }
    let records = ids.iter().map(|id| catalog.resolve_record(id)).collect::<crate::error::Result<Vec<_>>>()?;
    let differences_only = params.flag("diff");
    // Rows: identity, then config keys, then inputs by key, each with one value per run.
    let mut rows: Vec<(String, String, Vec<String>)> = Vec::new();
    type Field = fn(&Run) -> String;
    let identity: [(&str, Field); 6] = [
        ("model", |r| r.model_name.clone()),
        ("status", |r| r.status.to_string()),
        ("signature", |r| r.signature.clone()),
        ("code hash", |r| r.code_hash.clone()),
        ("config hash", |r| r.config_hash.clone()),
        ("input hash", |r| r.input_hash.clone()),
    ];
    for (name, value) in identity {
        rows.push(("identity".into(), name.into(), records.iter().map(|r| value(&r.run)).collect()));
    }
    let flat: Vec<BTreeMap<String, Json>> = records.iter().map(|r| crate::facet::flatten(&r.config)).collect();
    let inputs: Vec<BTreeMap<String, String>> = records
        .iter()
        .map(|r| r.inputs.iter().map(|a| (a.key.clone(), a.input_identity().unwrap_or_else(|| a.id.clone()))).collect())
        .collect();
    let keys = |maps: Vec<Vec<String>>| maps.into_iter().flatten().collect::<std::collections::BTreeSet<_>>();
    for key in keys(flat.iter().map(|m| m.keys().cloned().collect()).collect()) {
        let values = flat.iter().map(|m| m.get(&key).map_or_else(|| "—".to_owned(), Json::to_string)).collect();
        rows.push(("config".into(), key, values));
    }
    for key in keys(inputs.iter().map(|m| m.keys().cloned().collect()).collect()) {
        let values = inputs.iter().map(|m| m.get(&key).cloned().unwrap_or_else(|| "—".to_owned())).collect();
        rows.push(("input".into(), key, values));
    }
    // Recorded outside the signature: they may differ between a hit and its source.
    let runtime: Vec<BTreeMap<String, Json>> = records
        .iter()
        .map(|r| match r.run.meta.get("runtime") {
            Some(Json::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => BTreeMap::new(),
        })
        .collect();
    for key in keys(runtime.iter().map(|m| m.keys().cloned().collect()).collect()) {
        let values = runtime.iter().map(|m| m.get(&key).map_or_else(|| "—".to_owned(), Json::to_string)).collect();
        rows.push(("runtime".into(), key, values));
    }
    let table: Vec<Json> = rows
        .into_iter()
        .map(|(section, key, values)| {
            let differs = values.iter().any(|v| *v != values[0]);
            json!({ "section": section, "key": key, "values": values, "differs": differs })
        })
        .filter(|r| !differences_only || r["differs"] == Json::Bool(true))
        .collect();
    let diffs: Vec<_> = records[1..].iter().map(|b| crate::catalog::diff::RunDiff::between(&records[0], b)).collect();
    let context = json!({
        "runs": records.iter().map(|r| row(&r.run)).collect::<Vec<_>>(),
        "table": table,
        "diff_only": differences_only,
        "keep": params.without(&["diff"]),
    });
    Ok(View {
        template: "compare.html",
        title: format!("Compare {} runs", records.len()),
        context,
        api: serde_json::to_value(&diffs).unwrap_or(Json::Null),
        total: None,
    })
}

fn preview(catalog: &Catalog, id: &str) -> Result<View> {
    let artifact = catalog.find_artifact(id)?;
    // Rows and schema for Parquet and CSV; any other artifact shows what is recorded of it.
    let (rows, schema) = if matches!(artifact.driver, Driver::Parquet | Driver::Csv) && artifact.path.exists() {
        (Some(catalog.preview(&artifact.id, PREVIEW_ROWS)?.1), catalog.artifact_schema(&artifact.id)?)
    } else {
        (None, Vec::new())
    };
    let text = |v: &Json| match v {
        Json::String(s) => s.clone(),
        v => v.to_string(),
    };
    let context = json!({
        "artifact": artifact_row(&artifact),
        "path": artifact.path.display().to_string(),
        "meta": artifact.meta.iter().map(|(k, v)| (k.clone(), text(v))).collect::<BTreeMap<_, _>>(),
        "schema": schema,
        "columns": rows.as_ref().map(|r| r.columns.clone()).unwrap_or_default(),
        "rows": rows.as_ref().map(|r| r.rows.iter().map(|row| row.iter().map(text).collect::<Vec<_>>()).collect::<Vec<_>>()).unwrap_or_default(),
        "shown": rows.as_ref().map_or(0, |r| r.rows.len()),
        "previewed": rows.is_some(),
    });
    let api = json!({ "artifact": artifact, "schema": schema, "rows": rows });
    Ok(View {
        template: "preview.html",
        title: format!("{} ({})", artifact.key, artifact.id),
        context,
        api,
        total: None,
    })
}
