//! `consist ui --static DIR`: the same pages as plain HTML files in one directory, to attach to a
//! paper or a ticket: the runs (newest first), each of their pages and lineages, the scenarios.

use std::path::{Path, PathBuf};

use super::pages::{self, Page, View};
use super::params::Params;
use super::render::{ASSETS, Mode, NOT_EXPORTED, Renderer, file_safe};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::store::RunQuery;

/// What a static site holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaticReport {
    /// Where its pages are (`index.html` is the runs).
    pub dir: PathBuf,
    /// The runs it has a page for.
    pub runs: usize,
    /// How many runs the catalog holds (more than `runs` when `limit` cut the list).
    pub total: usize,
    /// Files written.
    pub files: usize,
}

/// Most runs a static site has pages for (its index lists them all on one page).
pub const STATIC_RUNS: usize = super::pages::MAX_PER_PAGE;

/// Write the pages of the newest `limit` runs (at most [`STATIC_RUNS`]) of `catalog` into `dir`
/// (created if needed; files of an earlier site are overwritten, nothing else is touched). A link
/// to an older run leads to a page that says it is not in the report.
pub fn write_static(catalog: &Catalog, dir: &Path, limit: usize) -> Result<StaticReport> {
    let limit = limit.clamp(1, STATIC_RUNS);
    let runs = catalog.find_runs(&RunQuery::default().limit(limit))?;
    let exported: std::collections::HashSet<String> = runs.iter().map(|r| r.id.clone()).collect();
    let renderer = Renderer::new(Mode::Static { runs: std::sync::Arc::new(exported) });
    std::fs::create_dir_all(dir.join("assets")).map_err(Error::io("creating the static site", dir))?;
    let mut files = 0;
    let mut write = |name: &str, body: &str| -> Result<()> {
        let path = dir.join(name);
        crate::files::atomic::write_atomic(&path, body.as_bytes(), false)
            .map_err(Error::io("writing the static site", &path))?;
        files += 1;
        Ok(())
    };
    for (name, _, body) in ASSETS {
        write(&format!("assets/{name}"), body)?;
    }
    let page = |page: Page, params: Params| -> Result<String> {
        let view: View = pages::build(catalog, &page, &params).map_err(|e| Error::Ui(e.to_string()))?;
        renderer.page(&view, false).map_err(Error::Ui)
    };
    let per = limit.to_string();
    write("index.html", &page(Page::Runs, Params::of(&[("per", &per)]))?)?;
    let elsewhere = format!("This run is not in this report, which has pages for the newest {limit} runs.");
    write(NOT_EXPORTED, &renderer.message(&elsewhere, 404).map_err(Error::Ui)?)?;
    for run in &runs {
        let id = file_safe(&run.id);
        write(&format!("run-{id}.html"), &page(Page::Run(run.id.clone()), Params::default())?)?;
        write(&format!("lineage-{id}.html"), &page(Page::Lineage, Params::of(&[("run", &run.id)]))?)?;
    }
    write("scenarios.html", &page(Page::Scenarios, Params::default())?)?;
    let scenarios = if catalog.has_store() { catalog.scenarios(1000)? } else { Vec::new() };
    for s in &scenarios {
        write(&format!("scenario-{}.html", file_safe(&s.id)), &page(Page::Scenario(s.id.clone()), Params::default())?)?;
    }
    Ok(StaticReport { dir: dir.to_owned(), runs: runs.len(), total: catalog.count_runs(&RunQuery::default())?, files })
}
