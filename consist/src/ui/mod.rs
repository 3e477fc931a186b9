//! `consist ui`: a local, read-only web page over a catalog (runs, a run, lineage, scenarios,
//! compare, preview), with the JSON each page shows behind it, or the same pages as static HTML.
//!
//! Layers: `pages` asks the library for each page's data (no SQL here), `render` turns it into
//! HTML with the templates compiled into the binary, `graph` lays a lineage out as SVG, and this
//! module serves them over HTTP (axum) or `site` writes them to a directory. Nothing here
//! writes to the catalog; every database read is a short read-only turn, so a model writing the
//! catalog keeps writing while a page is open.

mod graph;
mod pages;
mod params;
mod render;
mod site;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use self::pages::Page;
use self::params::Params;
use self::render::{Mode, Renderer};
pub use self::site::{STATIC_RUNS, StaticReport, write_static};
use crate::catalog::Catalog;
use crate::error::{Error, Result};

/// How `consist ui` serves.
#[derive(Debug, Clone)]
pub struct UiOptions {
    /// The address to listen on: `127.0.0.1` (this machine only) unless told.
    pub host: String,
    /// The port; 0 picks a free one.
    pub port: u16,
    /// How often an open runs page asks for new runs.
    pub poll: Duration,
}

impl Default for UiOptions {
    fn default() -> Self {
        UiOptions { host: "127.0.0.1".into(), port: 0, poll: Duration::from_secs(2) }
    }
}

struct AppState {
    catalog: Catalog,
    renderer: Renderer,
    /// The `Host` headers a request may carry (`None`: any, when serving beyond loopback).
    hosts: Option<Vec<String>>,
}

/// The `Host` values a browser sends to a loopback server on `port`. A page on any other name
/// reached here through DNS rebinding (a site that points its own name at 127.0.0.1) is refused,
/// so no web page the user visits can read the catalog through this server.
fn loopback_hosts(port: u16) -> Vec<String> {
    ["127.0.0.1", "localhost", "[::1]"].iter().map(|h| format!("{h}:{port}")).collect()
}

/// Refuse a request for another host name (see [`loopback_hosts`]); every answer says where its
/// scripts and styles may come from (this server only) and that no other site may frame it.
async fn guard(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(allowed) = &state.hosts {
        let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
            return (StatusCode::MISDIRECTED_REQUEST, "this server answers requests for its loopback address only")
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    response
}

/// Serve the pages of `catalog` until the process ends; `ready` gets the bound address first
/// (the CLI prints it as the page's URL).
pub fn serve(catalog: Catalog, options: &UiOptions, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .map_err(|e| Error::Ui(format!("cannot start the web server: {e}")))?;
    runtime.block_on(async move {
        let address = format!("{}:{}", options.host, options.port);
        let listener = tokio::net::TcpListener::bind(&address).await.map_err(|e| {
            Error::Ui(format!("cannot listen on {address}: {e} (another port: --port N, or --port 0 for a free one)"))
        })?;
        let bound = listener.local_addr().map_err(|e| Error::Ui(e.to_string()))?;
        let hosts = bound.ip().is_loopback().then(|| loopback_hosts(bound.port()));
        let state = Arc::new(AppState { catalog, renderer: Renderer::new(Mode::Server { poll: options.poll }), hosts });
        ready(bound);
        axum::serve(listener, router(state)).await.map_err(|e| Error::Ui(format!("the web server stopped: {e}")))
    })
}

fn router(state: Arc<AppState>) -> Router {
    // Every page twice: as HTML at its path, and as the JSON it shows under `/api`.
    type List = fn() -> Page;
    type Item = fn(String) -> Page;
    let lists: [(&str, List); 4] = [
        ("/runs", || Page::Runs),
        ("/lineage", || Page::Lineage),
        ("/scenarios", || Page::Scenarios),
        ("/compare", || Page::Compare),
    ];
    let items: [(&str, Item); 3] =
        [("/runs/{id}", Page::Run), ("/scenarios/{id}", Page::Scenario), ("/artifacts/{id}", Page::Preview)];
    let mut router = Router::new()
        .route("/", get(|| async { (StatusCode::SEE_OTHER, [(header::LOCATION, "/runs")]) }))
        .route("/assets/{file}", get(asset));
    for (prefix, api) in [("", false), ("/api", true)] {
        for (path, make) in lists {
            let handler = move |s: State<Arc<AppState>>, q: RawQuery| page(s, q, make(), api);
            router = router.route(&format!("{prefix}{path}"), get(handler));
        }
        for (path, make) in items {
            let handler = move |s: State<Arc<AppState>>, Path(id): Path<String>, q: RawQuery| page(s, q, make(id), api);
            router = router.route(&format!("{prefix}{path}"), get(handler));
        }
    }
    router
        .fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with("/api/") || uri.path() == "/api" {
                json(
                    StatusCode::NOT_FOUND,
                    &serde_json::json!({ "error": format!("no such endpoint: {}", uri.path()) }),
                    None,
                )
            } else {
                (StatusCode::NOT_FOUND, "no such page: see / for the runs").into_response()
            }
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// One page, as HTML or (`api`) as the JSON it shows. The library's reads block: they run on
/// tokio's blocking pool.
async fn page(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery, page: Page, api: bool) -> Response {
    let answer = tokio::task::spawn_blocking(move || {
        let params = Params::parse(query.as_deref().unwrap_or(""));
        let built = pages::build(&state.catalog, &page, &params);
        match (built, api) {
            (Ok(view), true) => json(StatusCode::OK, &view.api, view.total),
            (Ok(view), false) => {
                let partial = params.get("partial").is_some();
                html(StatusCode::OK, state.renderer.page(&view, partial))
            }
            (Err(e), true) => json(e.status(), &serde_json::json!({ "error": e.to_string() }), None),
            (Err(e), false) => html(e.status(), state.renderer.error(&e)),
        }
    })
    .await;
    answer.unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("the page failed: {e}")).into_response())
}

fn json(status: StatusCode, value: &serde_json::Value, total: Option<usize>) -> Response {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(total) = total {
        response.headers_mut().insert("x-total-count", total.into());
    }
    response
}

fn html(status: StatusCode, body: std::result::Result<String, String>) -> Response {
    match body {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("the page could not be drawn: {e}")).into_response(),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    match render::asset(&file) {
        Some((mime, body)) => {
            ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "max-age=3600")], body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
