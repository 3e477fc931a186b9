//! Artifacts in an object store: hosts that share a catalog and a bucket, and no files. Each host
//! is a worker process with its own run dir and local state, reaching a real S3-compatible server
//! (`s3.rs`) through the standard AWS environment variables.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use consist::{Catalog, CatalogLocation};

use crate::hosts::{Host, results, said};
use crate::support::pg::{PgServer, forget_local_state};
use crate::support::s3::S3Server;
use crate::support::{Workspace, gc_at_once};

/// A host reaching `bucket` on `server` (`CONSIST_REMOTE` plus the server's credentials).
fn host(name: &str, root: &Path, server: &S3Server, remote: &str) -> Host {
    let mut host = Host::new(name, root);
    host.env = server.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    host.env.push(("CONSIST_REMOTE".into(), remote.to_owned()));
    host
}

/// `chain` of `steps` on `catalog` as `host`: (kind, run id, first value) of each step.
fn chain(host: &Host, catalog: &str, steps: usize) -> Vec<(String, String, i64)> {
    let out = host.worker().arg("chain").arg(&host.run_dir).arg(catalog).arg(steps.to_string()).output().unwrap();
    assert!(out.status.success(), "{}", said(&out));
    results(&out)
}

fn kinds(results: &[(String, String, i64)]) -> Vec<&str> {
    results.iter().map(|(kind, _, _)| kind.as_str()).collect()
}

/// The content hash of run `id`'s one output, read from the catalog.
fn output_hash(catalog: &str, id: &str) -> String {
    let catalog = Catalog::open(&CatalogLocation::parse(catalog).unwrap(), Duration::from_secs(10)).unwrap();
    catalog.run_record(id).unwrap().outputs[0].hash.clone().unwrap()
}

/// The story of the issue, on one catalog: host A runs a chain; its files are gone (another
/// machine); host B, with an empty run dir, hits every step from the bucket; one object is
/// corrupted; host C re-executes that step only, and the bucket heals.
fn two_hosts_share_a_chain(catalog: &str, ws: &Workspace, server: &S3Server, bucket: &str) {
    let remote = server.bucket(bucket);
    let a = host("node-a", ws.path(), server, &remote);
    let first = chain(&a, catalog, 5);
    assert_eq!(kinds(&first), ["executed"; 5]);
    std::fs::remove_dir_all(&a.run_dir).unwrap();

    let b = host("node-b", ws.path(), server, &remote);
    let hits = chain(&b, catalog, 5);
    assert_eq!(kinds(&hits), ["hit"; 5], "every step from the bucket, with an empty run dir");
    let values: Vec<i64> = hits.iter().map(|(_, _, v)| *v).collect();
    assert_eq!(values, [0, 1, 2, 3, 4]);

    // A bad disk in the store: one object holds other bytes.
    let damaged = output_hash(catalog, &first[3].1);
    let object = server.bucket_dir(bucket).join("consist/blake3").join(&damaged[..2]).join(&damaged);
    assert!(object.is_file(), "s3s-fs keeps the object at {}", object.display());
    std::fs::write(&object, b"not what it was").unwrap();
    let c = host("node-c", ws.path(), server, &remote);
    let again = chain(&c, catalog, 5);
    assert_eq!(kinds(&again), ["hit", "hit", "hit", "executed", "hit"], "only the step whose object is bad runs");
    assert_eq!(again.iter().map(|(_, _, v)| *v).collect::<Vec<_>>(), values, "and gives the same result");
    assert_ne!(std::fs::read(&object).unwrap(), b"not what it was", "the bad object was replaced");
    let d = host("node-d", ws.path(), server, &remote);
    assert_eq!(kinds(&chain(&d, catalog, 5)), ["hit"; 5]);
}

#[test]
fn hosts_that_share_no_files_share_hits_through_a_bucket_on_duckdb() {
    let Some(server) = S3Server::start() else { return };
    let ws = Workspace::new();
    let catalog = ws.path().join("shared/provenance.duckdb");
    std::fs::create_dir_all(catalog.parent().unwrap()).unwrap();
    two_hosts_share_a_chain(catalog.to_str().unwrap(), &ws, &server, "duckbucket");
}

#[test]
fn hosts_that_share_no_files_share_hits_through_a_bucket_on_postgres() {
    let Some(pg) = PgServer::start() else { return };
    let Some(server) = S3Server::start() else { return };
    let url = pg.database("remote");
    let ws = Workspace::new();
    two_hosts_share_a_chain(&url, &ws, &server, "pgbucket");
    forget_local_state(&url);
}

#[test]
fn a_failed_upload_or_a_read_only_remote_leaves_a_source_only_its_host_can_serve() {
    let Some(server) = S3Server::start() else { return };
    let ws = Workspace::new();
    let catalog = ws.path().join("provenance.duckdb");
    let catalog = catalog.to_str().unwrap();
    let remote = server.bucket("flaky");
    // Its store unreachable (a wrong endpoint): the step runs and is recorded, not uploaded.
    let mut a = host("node-a", ws.path(), &server, &remote);
    a.env.retain(|(k, _)| k != "AWS_ENDPOINT");
    a.env.push(("AWS_ENDPOINT".into(), "http://127.0.0.1:9".into()));
    assert_eq!(kinds(&chain(&a, catalog, 2)), ["executed"; 2]);
    // A read-only client: runs, never writes.
    let mut r = host("reader", ws.path(), &server, &remote);
    r.env.push(("CONSIST_REMOTE_READ_ONLY".into(), "1".into()));
    let out = r.worker().arg("step").arg(&r.run_dir).arg(catalog).args(["6", "0"]).output().unwrap();
    assert!(out.status.success(), "{}", said(&out));
    let objects = std::fs::read_dir(server.bucket_dir("flaky")).unwrap().count();
    assert_eq!(objects, 0, "nothing reached the bucket");
    // Another host with no files of theirs: not a hit that cannot be served, a miss.
    std::fs::remove_dir_all(&a.run_dir).unwrap();
    let b = host("node-b", ws.path(), &server, &remote);
    assert_eq!(kinds(&chain(&b, catalog, 2)), ["executed"; 2]);
}

fn cli(host: &Host, catalog: &str, args: &[String]) -> (bool, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out: Output = host.cli(catalog, &args);
    (out.status.success(), said(&out))
}

#[test]
fn the_cli_pushes_a_catalog_made_before_the_remote_pulls_it_elsewhere_and_collects_garbage() {
    let Some(server) = S3Server::start() else { return };
    let ws = Workspace::new();
    let catalog = ws.path().join("provenance.duckdb");
    let catalog = catalog.to_str().unwrap();
    let remote = server.bucket("later");
    let mut a = host("node-a", ws.path(), &server, &remote);
    a.env.retain(|(k, _)| k != "CONSIST_REMOTE");
    assert_eq!(kinds(&chain(&a, catalog, 4)), ["executed"; 4]);
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().map(|a| a.to_string()).chain(["--remote".to_owned(), remote.clone()]).collect()
    };

    let (ok, text) = cli(&a, catalog, &with(&["remote", "status"]));
    assert!(ok && text.contains("on this host only  4"), "{text}");
    let (ok, text) = cli(&a, catalog, &with(&["remote", "push", "--all"]));
    assert!(ok && text.contains("pushed 4 file(s)"), "{text}");
    let (ok, text) = cli(&a, catalog, &with(&["remote", "push"]));
    assert!(
        ok && text.contains("pushed 0 file(s)") && text.contains("4 already there"),
        "a second push resumes: {text}"
    );
    let (ok, text) = cli(&a, catalog, &with(&["remote", "status", "--json"]));
    let status: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    assert!(ok && status["both"] == 4, "{text}");

    // Another host pulls them into its own run dir; a tracker there hits from those files.
    std::fs::remove_dir_all(&a.run_dir).unwrap();
    let b = host("node-b", ws.path(), &server, &remote);
    let target = b.run_dir.to_str().unwrap().to_owned();
    let (ok, text) = cli(&b, catalog, &with(&["remote", "pull", "--run-dir", &target]));
    assert!(ok && text.contains("pulled 4 file(s)"), "{text}");
    let mut offline = host("node-b", ws.path(), &server, &remote);
    offline.env.retain(|(k, _)| k != "CONSIST_REMOTE");
    offline.state = b.state;
    assert_eq!(kinds(&chain(&offline, catalog, 4)), ["hit"; 4], "the pulled files serve the hits");

    // Keep only the seed's objects: none goes while it is younger than --min-age (a host may be
    // about to record the run that references it).
    let (ok, text) = cli(&offline, catalog, &with(&["remote", "gc", "--keep-runs-of", "model=seed"]));
    assert!(
        ok && text.contains("removed 0 of 4 object(s)") && text.contains("3 unreferenced but written within 3600s"),
        "{text}"
    );
    let old = ["remote", "gc", "--keep-runs-of", "model=seed", "--min-age", "0"];
    let (ok, text) = cli(&offline, catalog, &with(&old));
    assert!(!ok && text.contains("--yes"), "gc asks first: {text}");
    let (ok, text) = cli(&offline, catalog, &with(&[&old[..], &["--yes"]].concat()));
    assert!(ok && text.contains("removed 3 of 4 object(s)"), "{text}");
    let (ok, text) = cli(&offline, catalog, &with(&["remote", "status", "--json", "--run-dir", &target]));
    let status: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    assert!(ok && status["both"] == 1 && status["local_only"] == 3, "only the seed's object is left: {text}");
    let (ok, text) = cli(&offline, catalog, &with(&["remote", "gc", "--keep-runs-of", "nonsense"]));
    assert!(!ok && text.contains("model=NAME"), "{text}");
}

/// The worker's chain, in this process (the fast path): whether each step was a hit.
fn chain_here(run_dir: &Path, db: &Path, remote: &str, steps: usize) -> Vec<bool> {
    chain_with(run_dir, db, remote, false, steps)
}

/// [`chain_here`] with a remote that may be read-only.
fn chain_with(run_dir: &Path, db: &Path, remote: &str, read_only: bool, steps: usize) -> Vec<bool> {
    use consist::{Tracker, Value};
    let tracker = Tracker::builder(run_dir).db_path(db).remote(remote).remote_read_only(read_only).open().unwrap();
    let mut hits = Vec::new();
    let seed = tracker.step("seed").code_version("1").outputs(["table"]).run(|_| Ok(Value(vec![0i64; 1000]))).unwrap();
    hits.push(seed.cache_hit());
    let mut previous = seed.output("table").unwrap().clone();
    for step in 1..steps {
        let next = tracker
            .step("advance")
            .code_version("1")
            .config(&step)
            .input("table", &previous)
            .outputs(["table"])
            .run(|ctx| {
                Ok(Value(ctx.load::<Value<Vec<i64>>>("table")?.0.into_iter().map(|v| v + 1).collect::<Vec<i64>>()))
            })
            .unwrap();
        hits.push(next.cache_hit());
        previous = next.output("table").unwrap().clone();
    }
    hits
}

#[test]
fn a_lost_or_partial_object_is_a_miss_that_heals_the_bucket() {
    let ws = Workspace::new();
    let bucket = ws.path().join("bucket");
    let remote = format!("file://{}", bucket.display());
    let db = ws.path().join("provenance.duckdb");
    assert_eq!(chain_here(&ws.path().join("a"), &db, &remote, 3), [false; 3]);
    std::fs::remove_dir_all(ws.path().join("a")).unwrap();
    let catalog = Catalog::duckdb(&db, Duration::from_secs(5));
    let runs = catalog.find_runs(&consist::RunQuery::default().model("advance")).unwrap();
    let object = |run: &consist::Run| {
        let hash = catalog.run_record(&run.id).unwrap().outputs[0].hash.clone().unwrap();
        bucket.join("blake3").join(&hash[..2]).join(hash)
    };
    // Oldest first: `advance` 1, then 2. One object lost, the other cut short.
    let (first, second) = (object(&runs[1]), object(&runs[0]));
    std::fs::remove_file(&first).unwrap();
    let bytes = std::fs::read(&second).unwrap();
    std::fs::write(&second, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(chain_here(&ws.path().join("b"), &db, &remote, 3), [true, false, false], "each bad object: one miss");
    assert!(first.is_file() && std::fs::read(&second).unwrap() == bytes, "both objects are whole again");
    std::fs::remove_dir_all(ws.path().join("b")).unwrap();
    assert_eq!(chain_here(&ws.path().join("c"), &db, &remote, 3), [true; 3]);
}

/// `db gc` on a host that fetched another host's outputs from the bucket frees those copies,
/// and only them: the runs are not marked evicted and stay cache sources, so the next pass here
/// hits again, fetching anew. A copy fetched aside (`.consist/remote/<hash>/`, content other
/// runs may share) stays.
#[test]
fn gc_frees_the_copies_fetched_from_the_bucket_and_the_runs_stay_cache_sources() {
    let ws = Workspace::new();
    let remote = format!("file://{}", ws.path().join("bucket").display());
    let db = ws.path().join("provenance.duckdb");
    assert_eq!(chain_here(&ws.path().join("a"), &db, &remote, 3), [false; 3]);
    std::fs::remove_dir_all(ws.path().join("a")).unwrap(); // another host's run dir
    let catalog = Catalog::duckdb(&db, Duration::from_secs(5));
    let executed = catalog.find_runs(&consist::RunQuery::default()).unwrap();
    let seed = catalog.run_record(&executed.iter().find(|r| r.model_name == "seed").unwrap().id).unwrap();
    // Other bytes where the seed's output would go here: its copy goes under .consist/remote/.
    let b = ws.path().join("b");
    let own = b.join(seed.outputs[0].uri.trim_start_matches("./"));
    std::fs::create_dir_all(own.parent().unwrap()).unwrap();
    std::fs::write(&own, b"other bytes").unwrap();
    assert_eq!(chain_here(&b, &db, &remote, 3), [true; 3]);
    let aside = b.join(".consist/remote").join(seed.outputs[0].hash.as_deref().unwrap());
    assert!(aside.is_dir(), "the seed's copy was fetched aside");
    assert_eq!(files(&b.join("outputs")), 3, "two copies at their own place, and the other bytes");

    let report = catalog.gc(&gc_at_once()).unwrap();
    assert_eq!(report.evicted.len(), 3, "{report:#?}");
    assert!(report.evicted.iter().all(|e| e.copies_only), "{report:#?}");
    assert_eq!((report.files_after, report.bytes_after), (0, 0), "{report:#?}");
    assert!(aside.is_dir() && files(&b.join("outputs")) == 0, "every copy at its own place freed, the one aside kept");
    for run in &executed {
        assert!(!catalog.run_record(&run.id).unwrap().run.meta.contains_key("evicted"), "{} is not marked", run.id);
    }
    assert_eq!(chain_here(&b, &db, &remote, 3), [true; 3], "still cache sources: fetched again");
    assert_eq!(files(&b.join("outputs")), 3);
}

/// What a running step fetched is not freed under it: neither its input (read by a running
/// run) nor, with the default `--min-age`, what was fetched within it (a fetch is a use).
#[test]
fn gc_keeps_the_copies_a_running_step_reads_or_just_fetched() {
    use consist::{Tracker, Value};
    let ws = Workspace::new();
    let remote = format!("file://{}", ws.path().join("bucket").display());
    let db = ws.path().join("provenance.duckdb");
    let a = Tracker::builder(ws.path().join("a")).db_path(&db).remote(&remote).open().unwrap();
    let made = a.step("make").code_version("1").outputs(["x"]).run(|_| Ok(Value(vec![5u32; 100]))).unwrap();
    let x = made.output("x").unwrap().clone();
    drop(a);
    std::fs::remove_dir_all(ws.path().join("a")).unwrap();
    let b = Tracker::builder(ws.path().join("b")).db_path(&db).remote(&remote).open().unwrap();
    let at_once = gc_at_once();
    let used = b
        .step("use")
        .code_version("1")
        .input("x", &x)
        .outputs(["y"])
        .run(|ctx| {
            let copy = ctx.input_path("x")?.to_path_buf();
            let report = Catalog::duckdb(&db, Duration::from_secs(10)).gc(&at_once).unwrap();
            assert!(copy.is_file() && report.evicted.is_empty(), "{report:#?}");
            assert_eq!(report.protected.get("read by a running run"), Some(&1), "{report:#?}");
            Ok(Value(ctx.load::<Value<Vec<u32>>>("x")?.0.len()))
        })
        .unwrap();
    assert_eq!(used.value().unwrap().0, 100);
    drop(b);
    let catalog = Catalog::duckdb(&db, Duration::from_secs(10));
    let default_age = consist::admin::GcOptions { min_age: Some(Duration::from_secs(3600)), ..gc_at_once() };
    let report = catalog.gc(&default_age).unwrap();
    // `make`'s copy was fetched within the hour, `use` ran within it.
    assert!(report.evicted.is_empty() && report.protected.get("used within --min-age") == Some(&2), "{report:#?}");
    let report = catalog.gc(&at_once).unwrap();
    let freed: Vec<(&str, bool)> = report.evicted.iter().map(|e| (e.model.as_str(), e.copies_only)).collect();
    assert_eq!(freed, [("make", true), ("use", false)], "once the step is done, the copy goes");
}

/// Another host's run dir at the same path as one of this host's (each machine its own
/// `/scratch/runs`): what is there was fetched, so gc frees it without marking the runs. A run
/// dir shared with the host that ran them (its snapshots are there): their own files, freed and
/// marked, as on the host itself.
#[test]
fn gc_tells_another_hosts_run_dir_at_the_same_path_from_a_shared_one() {
    let ws = Workspace::new();
    let remote = format!("file://{}", ws.path().join("bucket").display());
    let as_host = |name: &str, run_dir: &Path| {
        let mut host = Host::new(name, ws.path());
        host.run_dir = run_dir.to_path_buf();
        host.env.push(("CONSIST_REMOTE".into(), remote.clone()));
        host
    };
    let options = gc_at_once();
    for (shared, name) in [(false, "apart"), (true, "shared")] {
        let (db, run_dir) = (ws.path().join(format!("{name}.duckdb")), ws.path().join(name).join("runs"));
        let db = db.to_str().unwrap();
        let ran = chain(&as_host("node-a", &run_dir), db, 3);
        assert_eq!(kinds(&ran), ["executed"; 3]);
        if !shared {
            std::fs::remove_dir_all(&run_dir).unwrap(); // node-a's disk, not this one
        }
        assert_eq!(kinds(&chain(&as_host("node-b", &run_dir), db, 3)), ["hit"; 3]);
        assert_eq!(files(&run_dir.join("outputs")), 3, "{name}: node-b's run dir holds the outputs");
        let catalog = Catalog::duckdb(db, Duration::from_secs(5));
        let report = catalog.gc(&options).unwrap();
        assert_eq!(report.evicted.len(), 3, "{name}: {report:#?}");
        assert!(report.evicted.iter().all(|e| e.copies_only != shared), "{name}: {report:#?}");
        assert_eq!(files(&run_dir.join("outputs")), 0, "{name}: freed");
        for (_, id, _) in &ran {
            let marked = catalog.run_record(id).unwrap().run.meta.contains_key("evicted");
            assert_eq!(marked, shared, "{name}: {id}");
        }
        let again = chain(&as_host("node-b", &run_dir), db, 3);
        assert_eq!(kinds(&again), if shared { ["executed"; 3] } else { ["hit"; 3] }, "{name}");
    }
}

/// How many files are under `dir`, at any depth (0 when it does not exist).
fn files(dir: &Path) -> usize {
    let Ok(listing) = std::fs::read_dir(dir) else { return 0 };
    listing.map(|e| e.unwrap().path()).map(|p| if p.is_dir() { files(&p) } else { 1 }).sum()
}

/// A static web server (Python's `http.server`) publishing `dir`, on a free loopback port;
/// stopped when dropped.
struct WebServer(std::process::Child, u16);

impl WebServer {
    fn start(dir: &Path) -> WebServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs (the interop tests need it too)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "http.server did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        WebServer(child, port)
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_bucket_published_by_a_plain_web_server_serves_hits_to_a_read_only_host() {
    let ws = Workspace::new();
    let bucket = ws.path().join("bucket");
    let db = ws.path().join("provenance.duckdb");
    let remote = format!("file://{}", bucket.display());
    assert_eq!(chain_here(&ws.path().join("a"), &db, &remote, 3), [false; 3]);
    std::fs::remove_dir_all(ws.path().join("a")).unwrap();
    let web = WebServer::start(&bucket);
    let mirror = format!("http://127.0.0.1:{}/", web.1);
    assert_eq!(chain_with(&ws.path().join("b"), &db, &mirror, true, 3), [true; 3], "every output comes over HTTP");
    assert!(ws.path().join("b/outputs").is_dir());
    drop(web);
    // The server gone: a miss that executes (and a read-only host writes nothing to it).
    std::fs::remove_dir_all(ws.path().join("b")).unwrap();
    assert_eq!(chain_with(&ws.path().join("c"), &db, &mirror, true, 3), [false; 3]);
}

#[test]
fn a_body_on_a_host_without_its_inputs_reads_them_from_the_bucket_also_when_inputs_are_hydrated() {
    use consist::{Hydration, Tracker, Value};
    let ws = Workspace::new();
    let remote = format!("file://{}", ws.path().join("bucket").display());
    let db = ws.path().join("provenance.duckdb");
    let a = Tracker::builder(ws.path().join("a")).db_path(&db).remote(&remote).open().unwrap();
    let made = a.step("make").code_version("1").outputs(["x"]).run(|_| Ok(Value(5u32))).unwrap();
    let x = made.output("x").unwrap().clone();
    drop(a);
    std::fs::remove_dir_all(ws.path().join("a")).unwrap();
    for hydration in [Hydration::Metadata, Hydration::InputsMissing] {
        let run_dir = ws.path().join(format!("{hydration:?}"));
        let b = Tracker::builder(&run_dir).db_path(&db).remote(&remote).hydration(hydration).open().unwrap();
        let mut seen = None;
        let used = b
            .step("use")
            .code_version("1")
            .config(&format!("{hydration:?}"))
            .input("x", &x)
            .outputs(["y"])
            .run(|ctx| {
                seen = Some(ctx.input_path("x")?.to_path_buf());
                Ok(Value(ctx.load::<Value<u32>>("x")?.0 + 1))
            })
            .unwrap();
        assert!(!used.cache_hit() && used.value().unwrap().0 == 6, "{hydration:?}");
        let seen = seen.unwrap();
        assert!(seen.starts_with(&run_dir), "{hydration:?}: the body read {}", seen.display());
    }
}

#[test]
fn the_iterative_example_is_all_hits_on_a_second_host_that_shares_only_the_catalog_and_a_bucket() {
    let ws = Workspace::new();
    let db = ws.path().join("shared/provenance.duckdb");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let remote = format!("file://{}", ws.path().join("bucket").display());
    let run = |run_dir: &str| {
        let args = ["--run-dir", run_dir, "--iterations", "2", "--extended", "3"];
        let mut command = crate::examples::example_command("iterative_workflow", ws.path(), &args);
        command.env("CONSIST_DB", &db).env("CONSIST_REMOTE", &remote);
        crate::process::stdout_of(command.output().unwrap())
    };
    run("laptop/runs");
    std::fs::remove_dir_all(ws.path().join("laptop")).unwrap();
    let second = run("ci-runner/runs");
    assert!(second.contains("iterations 0-1: 12 steps were cache hits, 0 executed"), "{second}");
    assert!(second.contains("iterations 2-2: 6 steps were cache hits, 0 executed"), "{second}");
    let catalog = Catalog::duckdb(&db, Duration::from_secs(5));
    let executed: Vec<String> = catalog
        .find_runs(&consist::RunQuery::default())
        .unwrap()
        .into_iter()
        .filter(|r| {
            !r.is_cache_hit()
                && r.meta.get("_physical_run_dir").and_then(|d| d.as_str()).is_some_and(|d| d.contains("ci-runner"))
        })
        .map(|r| r.model_name)
        .collect();
    assert_eq!(executed.len(), 2, "only its two scenario headers: {executed:?}");
    assert!(ws.path().join("ci-runner/runs/outputs").is_dir(), "its files came from the bucket");
}
