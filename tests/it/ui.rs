//! `consist ui` in a real browser: headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs) loads the pages the server renders from the iterative example's catalog, follows
//! their links, and watches an open runs page pick up runs a model records meanwhile. The JSON
//! endpoints are compared with the library and the CLI's `--json`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use consist::{Catalog, LineageStart, RunQuery};
use regex::Regex;
use serde_json::Value as Json;

use crate::examples::example;
use crate::process::worker;
use crate::support::pg::{PgServer, forget_local_state};
use crate::support::{Counter, Workspace, clean_and_summarize, cli, square};

/// `consist ui` serving `db` on a free loopback port, stopped when dropped.
struct Ui {
    child: Child,
    url: String,
    /// What it printed when it started.
    banner: String,
}

impl Ui {
    fn start(db: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Ui {
        let mut child = Command::new(worker())
            .args(["cli", "ui", "--port", "0"])
            .args(extra)
            .arg("--db-path")
            .arg(db)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the test worker runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("{line}"));
        Ui { child, url: url.trim_end_matches('/').to_owned(), banner: line.clone() }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Chromium binary; `None` (the test is skipped) only outside CI.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(name)).find(|p| p.exists())
    });
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "no chromium on PATH: `.ci/run` installs Debian's `chromium`");
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
    }
    found
}

/// Chromium, headless, with a profile of its own (tests run side by side).
fn browser(chromium: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(chromium);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// The page at `url` as the browser built it (scripts run), serialized.
fn dom(chromium: &Path, profile: &Path, url: &str) -> String {
    let out = browser(chromium, profile).args(["--virtual-time-budget=1000", "--dump-dom", url]).output().unwrap();
    assert!(out.status.success(), "chromium --dump-dom {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A screenshot of `url`, checked to be a real image.
fn screenshot(chromium: &Path, profile: &Path, url: &str, file: &Path, size: &str) {
    let out = browser(chromium, profile)
        .args(["--hide-scrollbars", &format!("--window-size={size}"), &format!("--screenshot={}", file.display()), url])
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium --screenshot {url}: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(file).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} is not a page's picture", file.display());
}

/// Status, body and `x-total-count` of a GET.
fn get(url: &str) -> (u16, String, Option<usize>) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = agent.get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let total = response.headers().get("x-total-count").and_then(|v| v.to_str().ok()?.parse().ok());
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap(), total)
}

/// Every capture of group 1 of `pattern` in `text` (empty where the group is optional).
fn all(pattern: &str, text: &str) -> Vec<String> {
    let found = Regex::new(pattern).unwrap();
    found.captures_iter(text).map(|c| c.get(1).map_or("", |m| m.as_str()).to_owned()).collect()
}

/// The run ids listed in a runs table, in order, and their models.
fn listed(page: &str) -> (Vec<String>, Vec<String>) {
    let rows = Regex::new(
        r#"<tr class="[^"]*">(?:<td><input [^>]*></td>)?\s*<td><a href="/runs/([^"]+)">[^<]*</a></td>\s*<td>([^<]*)</td>"#,
    )
    .unwrap();
    rows.captures_iter(page).map(|c| (c[1].to_owned(), c[2].to_owned())).unzip()
}

fn ids(runs: &[consist::Run]) -> Vec<String> {
    runs.iter().map(|r| r.id.clone()).collect()
}

/// Where the screenshots go: the README's `docs/ui/` when `CONSIST_UI_SCREENSHOTS=1`.
fn shots_dir(ws: &Workspace) -> PathBuf {
    if std::env::var_os("CONSIST_UI_SCREENSHOTS").is_some() {
        return Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ui");
    }
    ws.path().join("shots")
}

#[test]
fn the_pages_show_the_iterative_example_in_a_browser_and_their_links_navigate() {
    let Some(chromium) = chromium() else { return };
    let ws = Workspace::new();
    example("iterative_workflow", ws.path(), &["--iterations", "3", "--extended", "4"]);
    let db = ws.path().join("runs/travel_demand/provenance.duckdb");
    let before = blake3::hash(&std::fs::read(&db).unwrap());
    let catalog = Catalog::duckdb(&db, Duration::from_secs(10));
    let profile = ws.path().join("profile");
    let shots = shots_dir(&ws);
    std::fs::create_dir_all(&shots).unwrap();
    let ui = Ui::start(&db, &[]);
    assert!(ui.url.starts_with("http://127.0.0.1:"), "loopback unless --host says otherwise: {}", ui.url);

    // The runs table lists what the library lists, newest first, and counts them all.
    let total = catalog.count_runs(&RunQuery::default()).unwrap();
    let page = dom(&chromium, &profile, &ui.at("/runs?per=500"));
    assert_eq!(listed(&page).0, ids(&catalog.find_runs(&RunQuery::default().limit(500)).unwrap()));
    assert_eq!(all(r#"data-total="(\d+)""#, &page), [total.to_string()]);
    // Ticking runs and pressing the button opens /compare?run=A&run=B: a GET form of them.
    assert!(page.contains(r#"<form id="compare-form" method="get" action="/compare">"#));
    assert_eq!(all(r#"<input type="checkbox" name="run" value="([^"]+)""#, &page), listed(&page).0);
    assert!(total > 40, "{total}");
    screenshot(&chromium, &profile, &ui.at("/runs"), &shots.join("runs.png"), "1280,900");

    // A filter narrows them: the model's cache hits only, as the library finds them.
    let page = dom(&chromium, &profile, &ui.at("/runs?model=traffic_simulation&hit=yes&per=500"));
    let (filtered, models) = listed(&page);
    let expected = catalog.find_runs(&RunQuery::default().model("traffic_simulation").cache_hit(true)).unwrap();
    assert_eq!(filtered, ids(&expected));
    assert!(!filtered.is_empty() && filtered.len() < total && models.iter().all(|m| m == "traffic_simulation"));
    // Sorted by model, smallest first.
    let (_, models) = listed(&dom(&chromium, &profile, &ui.at("/runs?sort=model&dir=asc&per=500")));
    assert!(models.len() == total.min(500) && models.windows(2).all(|w| w[0] <= w[1]), "{models:?}");

    // The JSON behind the page is the CLI's `runs --json`, and says how many match in all.
    let (status, body, count) = get(&ui.at("/api/runs?model=traffic_simulation&per=20"));
    let api: Json = serde_json::from_str(&body).unwrap();
    let out = cli(&db, &["runs", "--model", "traffic_simulation", "--limit", "20", "--json"]);
    let printed: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (status, api, count),
        (200, printed, Some(catalog.count_runs(&RunQuery::default().model("traffic_simulation")).unwrap()))
    );

    // A hit's page shows its cache source and its inputs with their producers, and links go there.
    let hit = &expected[0];
    let source = hit.cache_source().unwrap().to_owned();
    let record = catalog.run_record(&hit.id).unwrap();
    let page = dom(&chromium, &profile, &ui.at(&format!("/runs/{}", hit.id)));
    assert_eq!(all(r#"id="cache-source" href="/runs/([^"]+)""#, &page), std::slice::from_ref(&source));
    let producers = all(r#"class="producer" href="/runs/([^"]+)""#, &page);
    for input in &record.inputs {
        assert!(page.contains(&format!(">{}<", input.key)), "input {} listed", input.key);
        if let Some(producer) = &input.run_id {
            assert!(producers.contains(producer), "{producer} linked");
        }
    }
    let followed = dom(&chromium, &profile, &ui.at(&format!("/runs/{source}")));
    assert!(followed.contains(&format!("<code>{source}</code>")), "the source's own page");
    screenshot(&chromium, &profile, &ui.at(&format!("/runs/{}", hit.id)), &shots.join("run.png"), "1280,1100");

    // The lineage of the extended scenario's last step draws one node per run of its chain, each
    // a link to that run's page.
    let last = catalog.find_runs(&RunQuery::default().model("skims_by_iteration").limit(1)).unwrap().remove(0);
    let graph = catalog.lineage_graph(&LineageStart::Run(last.id.clone()), 100, 0).unwrap();
    let url = ui.at(&format!("/lineage?run={}&up=100&down=0", last.id));
    let page = dom(&chromium, &profile, &url);
    let mut drawn = all(r#"data-run="([^"]+)""#, &page);
    drawn.sort();
    let mut chain: Vec<String> = graph.runs.iter().map(|r| r.run.id.clone()).collect();
    chain.sort();
    assert_eq!(drawn, chain);
    assert!(graph.runs.iter().map(|r| -r.hops).max().unwrap() >= 6 && chain.len() > 20, "{}", chain.len());
    let node_link = all(r#"<a href="/runs/([^"]+)" class="node run"#, &page).remove(0);
    assert!(
        dom(&chromium, &profile, &ui.at(&format!("/runs/{node_link}"))).contains(&format!("<code>{node_link}</code>"))
    );
    screenshot(&chromium, &profile, &url, &shots.join("lineage.png"), "1280,800");
    // Downstream: the runs that read what `init` wrote.
    let init = catalog.find_runs(&RunQuery::default().model("init").limit(1)).unwrap().remove(0);
    let page = dom(&chromium, &profile, &ui.at(&format!("/lineage?run={}&up=0&down=1", init.id)));
    let downstream = catalog.lineage_graph(&LineageStart::Run(init.id.clone()), 0, 1).unwrap();
    assert!(downstream.runs.len() > 1 && all(r#"data-run="([^"]+)""#, &page).len() == downstream.runs.len());

    // Scenarios, and one scenario's tally: one cell per step run.
    let page = dom(&chromium, &profile, &ui.at("/scenarios"));
    let scenario = all(r#"<a href="/scenarios/([^"]+)">"#, &page).remove(0);
    let url = ui.at(&format!("/scenarios/{scenario}"));
    let page = dom(&chromium, &profile, &url);
    let steps = catalog.count_runs(&RunQuery::default().parent(&scenario)).unwrap();
    assert_eq!(all(r#"(class="cell )"#, &page).len(), steps);
    screenshot(&chromium, &profile, &url, &shots.join("scenario.png"), "1280,700");

    // Compare two iterations that executed, then only what differs.
    let executed = catalog.find_runs(&RunQuery::default().model("traffic_simulation").cache_hit(false)).unwrap();
    let url = ui.at(&format!("/compare?run={}&run={}", executed[0].id, executed[1].id));
    let every = all(r#"<tr class="(differs)?">"#, &dom(&chromium, &profile, &url)).len();
    let page = dom(&chromium, &profile, &format!("{url}&diff=1"));
    let differing = all(r#"<tr class="([a-z]*)">"#, &page);
    assert!(!differing.is_empty() && differing.len() < every && differing.iter().all(|c| c == "differs"));
    screenshot(&chromium, &profile, &url, &shots.join("compare.png"), "1280,700");

    // A Parquet output's schema and first rows.
    let skims = record.outputs.iter().find(|a| a.key == "skims").unwrap();
    let url = ui.at(&format!("/artifacts/{}", skims.id));
    let page = dom(&chromium, &profile, &url);
    let (_, preview) = catalog.preview(&skims.id, 50).unwrap();
    assert_eq!(all(r#"(<tr class="column">)"#, &page).len(), preview.columns.len(), "one schema row per column");
    assert!(page.contains(&format!("First {} rows", preview.rows.len())));
    screenshot(&chromium, &profile, &url, &shots.join("preview.png"), "1280,700");

    // An artifact that is not a table shows what is recorded of it, not an error.
    let other = catalog
        .find_runs(&RunQuery::default().model("summaries").limit(1))
        .unwrap()
        .iter()
        .flat_map(|r| catalog.run_record(&r.id).unwrap().outputs)
        .find(|a| !matches!(a.driver, consist::Driver::Parquet | consist::Driver::Csv))
        .expect("the summaries step writes a plot");
    let (status, body, _) = get(&ui.at(&format!("/artifacts/{}", other.id)));
    assert!(status == 200 && body.contains("rows are shown for Parquet and CSV artifacts only"), "{status} {body}");
    // A page past the last shows the last; a step's run is not a scenario; unknown API paths
    // answer JSON.
    let pages = total.div_ceil(20);
    let (status, body, _) = get(&ui.at("/runs?per=20&page=99999"));
    assert!(status == 200 && body.contains(&format!("page {pages} of {pages}")), "{body}");
    let (status, body, _) = get(&ui.at(&format!("/scenarios/{}", hit.id)));
    assert!(status == 400 && body.contains("is a step&#x27;s run, not a scenario"), "{status} {body}");
    let (status, body, _) = get(&ui.at("/api/nothing"));
    assert!(status == 404 && serde_json::from_str::<Json>(&body).is_ok(), "{status} {body}");

    // Bad input is a clear error; no path or SQL reaches the server's files.
    let (status, body, _) = get(&ui.at("/runs?dir=sideways"));
    assert!(status == 400 && body.contains("use asc or desc"), "{status} {body}");
    let (status, body, _) = get(&ui.at("/runs?status=bogus"));
    assert!(status == 400 && body.contains("use running, completed or failed"), "{status} {body}");
    let (status, body, _) = get(&ui.at("/api/artifacts/..%2F..%2F..%2Fetc%2Fpasswd"));
    assert!(status == 404 && !body.contains("root:"), "{status} {body}");
    let (status, _, _) = get(&ui.at("/api/compare?run=x"));
    assert_eq!(status, 400);

    // A static site of the same pages: every link in it names a file it holds.
    drop(ui);
    let site = ws.path().join("site");
    let out = cli(&db, &["ui", "--static", site.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    let links = all(r##"href="([^"#?]+\.html)""##, &index);
    assert!(links.len() > total, "{}", links.len());
    let run_page = links.iter().find(|l| l.starts_with("run-")).unwrap();
    let more = all(r#"href="([^"]+\.html)""#, &std::fs::read_to_string(site.join(run_page)).unwrap());
    for page in links.iter().chain(&more) {
        assert!(site.join(page).exists(), "{page} linked but not written");
    }
    let page =
        dom(&chromium, &profile, &format!("file://{}", site.join(format!("lineage-{}.html", last.id)).display()));
    assert!(!all(r#"data-run="([^"]+)""#, &page).is_empty());

    assert_eq!(blake3::hash(&std::fs::read(&db).unwrap()), before, "the UI never writes the catalog");
}

#[test]
fn an_open_runs_page_shows_new_runs_while_the_model_keeps_writing() {
    let Some(chromium) = chromium() else { return };
    let ws = Workspace::new();
    let tracker = ws.tracker();
    for value in 0..3 {
        square(&tracker, value, || {});
    }
    tracker.flush().unwrap();
    let ui = Ui::start(ws.db(), &["--poll-ms", "200"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut browser = browser(&chromium, &ws.path().join("profile"))
        .arg(format!("--remote-debugging-port={port}"))
        .arg(ui.at("/runs"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The open page's title, as the browser reports it on its DevTools endpoint.
    let title = || -> Vec<String> {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let Ok(mut r) = agent.get(&format!("http://127.0.0.1:{port}/json/list")).call() else { return Vec::new() };
        let list: Json = serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or_default();
        list.as_array().into_iter().flatten().filter_map(|t| Some(t["title"].as_str()?.to_owned())).collect()
    };
    let wait_for = |want: &str| {
        let start = Instant::now();
        while !title().iter().any(|t| t == want) {
            assert!(start.elapsed() < Duration::from_secs(60), "the page never showed {want:?}: {:?}", title());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("Runs (3) · consist");
    // The model records five more runs while the page polls; every write succeeds.
    for value in 3..8 {
        square(&tracker, value, || {});
        tracker.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    wait_for("Runs (8) · consist");
    let stored: i64 = ws.scalar("SELECT count(*) FROM run");
    assert_eq!(stored, 8, "every run the model recorded reached the file while the page was open");
    // A hit still waiting in the pending queue (not in the file yet) is on the page too, as
    // `consist runs` shows it.
    let deferring = consist::Tracker::builder(ws.run_dir()).db_path(ws.db()).defer_hit_writes(true).open().unwrap();
    assert!(square(&deferring, 0, || {}).cache_hit());
    drop(deferring);
    wait_for("Runs (9) · consist");
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 8, "the hit is only in the queue");
    let (_, _, total) = get(&ui.at("/api/runs?hit=yes"));
    assert_eq!(total, Some(1));
    let _ = browser.kill();
    let _ = browser.wait();
}

#[test]
fn the_pages_serve_a_postgres_catalog_without_showing_its_password() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("ui");
    let ws = Workspace::new();
    let (up, down) = (Counter::default(), Counter::default());
    let tracker = consist::Tracker::builder(ws.run_dir()).catalog(&url).open().unwrap();
    let (_, summary) = clean_and_summarize(&tracker, 2, &up, &down);
    tracker.flush().unwrap();
    let with_password = url.replace("consist@", "consist:s3cret-pw@");
    let ui = Ui::start(&with_password, &[]);
    assert!(ui.banner.contains("consist:***@127.0.0.1") && !ui.banner.contains("s3cret-pw"), "{}", ui.banner);
    let (status, body, total) = get(&ui.at("/runs"));
    assert!(status == 200 && body.contains(">clean<") && body.contains(">summarize<") && total.is_none(), "{body}");
    let (status, body, total) = get(&ui.at("/api/runs?sort=model&dir=asc"));
    let runs: Json = serde_json::from_str(&body).unwrap();
    let models: Vec<&str> = runs.as_array().unwrap().iter().map(|r| r["model_name"].as_str().unwrap()).collect();
    assert_eq!((status, total, models), (200, Some(2), vec!["clean", "summarize"]));
    let (status, body, _) = get(&ui.at(&format!("/lineage?run={}&up=3&down=0", summary.run.id)));
    assert_eq!((status, all(r#"data-run="([^"]+)""#, &body).len()), (200, 2), "{body}");
    let (status, body, _) = get(&ui.at(&format!("/runs/{}", summary.run.id)));
    assert!(status == 200 && body.contains("class=\"producer\""), "{body}");
    drop(tracker);
    forget_local_state(&url);
}

/// A raw HTTP/1.1 GET with the given `Host` header: the status line's code.
fn status_for_host(ui: &Ui, path: &str, host: &str) -> u16 {
    use std::io::{Read, Write};
    let address = ui.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

#[test]
fn a_hostile_catalog_is_shown_as_text_and_other_sites_cannot_read_the_server() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let evil = r#"<img src=x onerror=alert(1)>"#;
    let note = r#"</script><script>alert(2)</script>"#;
    let first = tracker
        .step(evil)
        .code_version("1")
        .config(&serde_json::json!({ "note": note, "k": 1 }))
        .tag(r#""'><svg onload=alert(3)>"#)
        .outputs(["table"])
        .run(|_| Ok(consist::Value(1)))
        .unwrap();
    let second = tracker
        .step(evil)
        .code_version("1")
        .config(&serde_json::json!({ "note": note, "k": 2 }))
        .input("table", first.output("table").unwrap())
        .outputs(["table"])
        .run(|_| Ok(consist::Value(2)))
        .unwrap();
    tracker.flush().unwrap();
    let ui = Ui::start(ws.db(), &[]);
    let (a, b) = (&first.run.id, &second.run.id);
    for path in [
        "/runs".to_owned(),
        format!("/runs/{b}"),
        format!("/lineage?run={b}&up=3&down=3"),
        format!("/compare?run={a}&run={b}"),
        format!("/runs?q={}", "%3Cimg"),
    ] {
        let (status, body, _) = get(&ui.at(&path));
        assert_eq!(status, 200, "{path}: {body}");
        for raw in ["<img src=x", "<script>alert", "<svg onload"] {
            assert!(!body.contains(raw), "{path} carries {raw:?} unescaped");
        }
        assert!(body.contains("&lt;img src=x onerror="), "{path} shows the name as text");
    }
    let site = ws.path().join("site");
    let out = cli(&ws.db(), &["ui", "--static", site.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for entry in std::fs::read_dir(&site).unwrap().flatten().filter(|e| e.path().is_file()) {
        let page = std::fs::read_to_string(entry.path()).unwrap();
        assert!(!page.contains("<img src=x") && !page.contains("<script>alert"), "{}", entry.path().display());
    }

    // A page on another name that resolves to this machine (DNS rebinding) is refused; the
    // server's own loopback names are not.
    let port = ui.url.rsplit(':').next().unwrap().to_owned();
    assert_eq!(status_for_host(&ui, "/api/runs", &format!("attacker.example:{port}")), 421);
    assert_eq!(status_for_host(&ui, "/api/runs", "attacker.example"), 421);
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        assert_eq!(status_for_host(&ui, "/api/runs", &host), 200, "{host}");
    }
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let response = agent.get(&ui.at("/runs")).call().unwrap();
    let policy = response.headers().get("content-security-policy").unwrap().to_str().unwrap();
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
}
