//! Pages as HTML: the templates and assets compiled into the binary (no CDN: clusters are often
//! air-gapped), the links of a served page or of a static site, and the error page.

use std::time::Duration;

use minijinja::Environment;
use serde_json::json;

use super::pages::{LINEAGE_DOWN, LINEAGE_UP, PageError, View};

/// Where the pages live.
#[derive(Debug, Clone)]
pub(super) enum Mode {
    /// Served: links are paths on the server; the runs page asks for new runs every `poll`.
    Server {
        /// How often.
        poll: Duration,
    },
    /// Files in one directory: links are file names; pages that need the server are left out,
    /// and a link to a run without a page here leads to [`NOT_EXPORTED`].
    Static {
        /// The runs with a page.
        runs: std::sync::Arc<std::collections::HashSet<String>>,
    },
}

/// The static site's page for a run it has no page for.
pub(super) const NOT_EXPORTED: &str = "not-in-this-report.html";

const TEMPLATES: [(&str, &str); 10] = [
    ("base.html", include_str!("templates/base.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("runs_table.html", include_str!("templates/runs_table.html")),
    ("run.html", include_str!("templates/run.html")),
    ("lineage.html", include_str!("templates/lineage.html")),
    ("scenarios.html", include_str!("templates/scenarios.html")),
    ("scenario.html", include_str!("templates/scenario.html")),
    ("compare.html", include_str!("templates/compare.html")),
    ("preview.html", include_str!("templates/preview.html")),
    ("error.html", include_str!("templates/error.html")),
];

/// The assets every page links: `(name, MIME type, content)`.
pub(super) const ASSETS: [(&str, &str, &str); 3] = [
    ("style.css", "text/css; charset=utf-8", include_str!("assets/style.css")),
    ("live.js", "text/javascript; charset=utf-8", include_str!("assets/live.js")),
    ("graph.js", "text/javascript; charset=utf-8", include_str!("assets/graph.js")),
];

/// An asset by name: its MIME type and content.
pub(super) fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    ASSETS.iter().find(|(n, _, _)| *n == name).map(|(_, mime, body)| (*mime, *body))
}

/// A name that is safe as one file name (a static page's): the id itself when it is made of
/// letters, digits, `-`, `_` and `.` (as run ids are), else those characters and a short hash of
/// the id, so that two ids never share a page.
pub(super) fn file_safe(id: &str) -> String {
    let safe: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    if safe == id && !id.starts_with('.') {
        return safe;
    }
    format!("{safe}-{}", &blake3::hash(id.as_bytes()).to_hex()[..8])
}

/// Characters a URL path segment or query value keeps as they are (RFC 3986's unreserved).
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `id` as one URL path segment or query value (a space is `%20`, not the form encoding's `+`,
/// which a path keeps as it is).
fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, UNRESERVED).to_string()
}

/// The templates, with the links of one [`Mode`].
pub(super) struct Renderer {
    env: Environment<'static>,
    mode: Mode,
}

impl Renderer {
    /// Templates for pages served or written in `mode`.
    pub(super) fn new(mode: Mode) -> Renderer {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("the UI's templates parse");
        }
        let served = matches!(mode, Mode::Server { .. });
        let exported = match &mode {
            Mode::Static { runs } => runs.clone(),
            Mode::Server { .. } => Default::default(),
        };
        env.add_function("run_url", move |id: String| match served {
            true => format!("/runs/{}", segment(&id)),
            false if exported.contains(&id) => format!("run-{}.html", file_safe(&id)),
            false => NOT_EXPORTED.to_owned(),
        });
        env.add_function("runs_url", move |query: Option<String>| match (served, query) {
            (true, Some(q)) if !q.is_empty() => format!("/runs?{q}"),
            (true, _) => "/runs".to_owned(),
            (false, _) => "index.html".to_owned(),
        });
        env.add_function("scenarios_url", move || if served { "/scenarios" } else { "scenarios.html" });
        env.add_function("scenario_url", move |id: String| {
            if served { format!("/scenarios/{}", segment(&id)) } else { format!("scenario-{}.html", file_safe(&id)) }
        });
        // A static site has each run's lineage at the default hops only, and no artifact pages.
        env.add_function("lineage_url", move |kind: String, id: String, up: Option<usize>, down: Option<usize>| {
            let (up, down) = (up.unwrap_or(LINEAGE_UP), down.unwrap_or(LINEAGE_DOWN));
            match (served, kind.as_str()) {
                (true, _) => format!("/lineage?{kind}={}&up={up}&down={down}", segment(&id)),
                (false, "run") if up == LINEAGE_UP && down == LINEAGE_DOWN => {
                    format!("lineage-{}.html", file_safe(&id))
                }
                _ => String::new(),
            }
        });
        env.add_function(
            "preview_url",
            move |id: String| {
                if served { format!("/artifacts/{}", segment(&id)) } else { String::new() }
            },
        );
        env.add_function("compare_url", move |a: String, b: String| {
            if served { format!("/compare?run={}&run={}", segment(&a), segment(&b)) } else { String::new() }
        });
        env.add_function(
            "asset_url",
            move |name: String| if served { format!("/assets/{name}") } else { format!("assets/{name}") },
        );
        Renderer { env, mode }
    }

    fn globals(&self) -> serde_json::Value {
        match &self.mode {
            Mode::Server { poll } => json!({ "static_site": false, "poll_ms": poll.as_millis() as u64 }),
            Mode::Static { .. } => json!({ "static_site": true, "poll_ms": 0 }),
        }
    }

    /// A page; `partial` draws only its live part (the runs table), which an open page fetches.
    pub(super) fn page(&self, view: &View, partial: bool) -> Result<String, String> {
        let name = if partial && view.template == "runs.html" { "runs_table.html" } else { view.template };
        let template = self.env.get_template(name).map_err(|e| e.to_string())?;
        template
            .render(json!({ "page": view.context, "title": view.title, "site": self.globals() }))
            .map_err(|e| format!("{e:#}"))
    }

    /// The page of an error: what went wrong, and the way back.
    pub(super) fn error(&self, error: &PageError) -> Result<String, String> {
        self.message(&error.to_string(), error.status().as_u16())
    }

    /// A page that only says `message` (an error's, with its HTTP status).
    pub(super) fn message(&self, message: &str, status: u16) -> Result<String, String> {
        let template = self.env.get_template("error.html").map_err(|e| e.to_string())?;
        template
            .render(json!({
                "title": "Not shown",
                "page": { "message": message, "status": status },
                "site": self.globals(),
            }))
            .map_err(|e| e.to_string())
    }
}
