//! Cache controls that widen a hit on purpose (runtime values, ignored config keys): recorded in
//! the run, shown by `show`, `diff` and `explain`, and never wider than asked.

use consist::{Hydration, Tracker, Value};
use serde_json::json;

use crate::support::{Counter, Workspace, cli, gc_at_once};

/// Not `Serialize`: recorded by its type's name.
struct Pool;

#[consist::step(outputs = ["total"])]
fn total(values: Vec<i64>, #[consist(runtime)] threads: usize, #[consist(runtime)] pool: &Pool) -> i64 {
    let _ = (threads, pool);
    values.iter().sum()
}

#[test]
fn runtime_parameters_are_recorded_outside_the_signature_and_shown() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let first = tracker.run(total::step(vec![1, 2, 3], 8, &Pool)).unwrap();
    let second = tracker.run(total::step(vec![1, 2, 3], 16, &Pool)).unwrap();
    assert!(!first.run.is_cache_hit() && second.run.is_cache_hit(), "threads is not in the signature");
    assert_eq!(*second.value().unwrap(), 6);
    assert_eq!(first.run.meta["runtime"]["threads"], 8);
    assert_eq!(second.run.meta["runtime"]["threads"], 16, "the hit records its own value");
    assert!(first.run.meta["runtime"]["pool"].as_str().unwrap().ends_with("Pool>"), "{:?}", first.run.meta);
    assert!(tracker.run(total::step(vec![1, 2, 4], 16, &Pool)).unwrap().run.meta.contains_key("cache_miss"));
    tracker.flush().unwrap();

    let catalog = tracker.catalog();
    let explained = catalog.explain_run(&second.run.id).unwrap();
    let diff = explained.diff.expect("a hit is compared with the run it reused");
    assert_eq!(diff.run_a, first.run.id);
    assert_eq!(diff.runtime.changed["threads"], [json!(8), json!(16)]);
    assert!(diff.config.is_empty() && diff.same_signature);

    let text = |args: &[&str]| String::from_utf8(cli(&ws.db(), args).stdout).unwrap();
    let shown = text(&["show", &second.run.id]);
    assert!(
        shown.contains("runtime (recorded, not in the signature):\n") && shown.contains("  threads = 16"),
        "{shown}"
    );
    let explain = text(&["explain", &second.run.id]);
    assert!(explain.contains("was a cache hit") && explain.contains("~ threads: 8 -> 16"), "{explain}");
    let diff = text(&["diff", &first.run.id, &second.run.id]);
    assert!(diff.contains("runtime (recorded, not in the signature):\n  ~ threads: 8 -> 16"), "{diff}");
}

fn solve(
    tracker: &Tracker,
    config: &serde_json::Value,
    ignore: &[&str],
    ran: &Counter,
) -> consist::Result<consist::Run> {
    let name = if ignore.is_empty() { "strict" } else { "lenient" };
    tracker
        .step(name)
        .code_version("1")
        .config(config)
        .ignore_config_keys(ignore.iter().copied())
        .runtime("log_level", "info")
        .outputs(["x"])
        .run(|_| {
            ran.hit();
            Ok(Value(config["alpha"].as_i64().unwrap_or(0)))
        })
        .map(|r| r.run)
}

#[test]
fn an_ignored_config_key_widens_only_the_step_that_ignores_it() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let ran = Counter::default();
    let config = |alpha: i64, threads: i64| json!({ "alpha": alpha, "solver": { "threads": threads, "tol": 1e-6 } });
    let lenient = |c: &serde_json::Value| solve(&tracker, c, &["solver.threads"], &ran).unwrap();
    let strict = |c: &serde_json::Value| solve(&tracker, c, &[], &ran).unwrap();

    let (a, b) = (lenient(&config(1, 8)), strict(&config(1, 8)));
    assert_eq!(ran.get(), 2);
    assert_eq!(a.meta["runtime"], json!({ "log_level": "info", "solver.threads": 8 }));
    let (a2, b2) = (lenient(&config(1, 16)), strict(&config(1, 16)));
    assert!(a2.is_cache_hit(), "the step that ignores solver.threads hits");
    assert!(!b2.is_cache_hit(), "a step that does not ignore it re-executes");
    assert_eq!(a2.meta["runtime"]["solver.threads"], 16);
    assert_eq!(a2.signature, a.signature);
    assert_ne!(b2.signature, b.signature);
    assert!(!lenient(&config(2, 16)).is_cache_hit(), "the other keys still count");
    assert!(!lenient(&json!({ "alpha": 1, "solver": { "threads": 8, "tol": 1e-7 } })).is_cache_hit(), "siblings too");
    assert_eq!(ran.get(), 5);

    // The signed config is what is stored: its hash still checks, and the key is not in it.
    tracker.flush().unwrap();
    let record = tracker.catalog().run_record(&a.id).unwrap();
    assert_eq!(record.config, json!({ "alpha": 1, "solver": { "tol": 1e-6 } }));

    let typo = solve(&tracker, &config(1, 8), &["solver.thread"], &ran).unwrap_err().to_string();
    assert!(
        typo.contains("ignore_config_keys names `solver.thread`") && typo.contains("did you mean `solver.threads`?"),
        "{typo}"
    );
    assert_eq!(ran.get(), 5, "nothing runs on a bad key");
}

fn make(tracker: &Tracker, n: u64, tag: Option<&str>, ran: &Counter) -> consist::Run {
    let mut step = tracker.step("make").code_version("1").config(&n).outputs(["v"]);
    if let Some(tag) = tag {
        step = step.tag(tag);
    }
    let result = step
        .run(|_| {
            ran.hit();
            Ok(Value(vec![n; 1000]))
        })
        .unwrap();
    assert_eq!(result.value().unwrap().0, vec![n; 1000]);
    result.run
}

fn output_file(ws: &Workspace, run: &consist::Run) -> std::path::PathBuf {
    let dir = ws.run_dir().join("outputs").join(&run.id);
    std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path()
}

/// gc frees the least recently used runs' files (a hit counts as a use), keeps every record,
/// pinned, tagged and running-scenario runs; an evicted run's signature re-executes cleanly.
#[test]
fn gc_frees_the_least_recently_used_files_and_an_evicted_run_reexecutes() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let ran = Counter::default();
    let runs: Vec<consist::Run> = (1..=4).map(|n| make(&tracker, n, None, &ran)).collect();
    let paper = make(&tracker, 5, Some("paper"), &ran);
    let scenario = tracker.scenario("live").start().unwrap();
    let live = scenario
        .step("make")
        .code_version("1")
        .config(&6u64)
        .outputs(["v"])
        .run(|_| Ok(Value(vec![6u64; 1000])))
        .unwrap()
        .run;
    assert!(make(&tracker, 1, None, &ran).is_cache_hit(), "run 1 is used again: now the most recent");
    tracker.flush().unwrap();
    let catalog = tracker.catalog();
    assert_eq!(catalog.pin(std::slice::from_ref(&runs[1].id), true).unwrap(), 1);
    let size = std::fs::metadata(output_file(&ws, &runs[0])).unwrap().len();

    // Six entries of one file each; three protected. Keep two files: 2, 5 and 6 stay whatever
    // their age, then the least recently used go: 3, then 4 (1 was hit last).
    let options = consist::admin::GcOptions {
        max_size: Some(2 * size),
        keep_tags: vec!["paper".into()],
        dry_run: true,
        ..Default::default()
    };
    let plan = catalog.gc(&options).unwrap();
    let evicted: Vec<&str> = plan.evicted.iter().map(|e| e.run.as_str()).collect();
    assert_eq!(evicted, [runs[2].id.as_str(), runs[3].id.as_str(), runs[0].id.as_str()], "{plan:#?}");
    assert_eq!((plan.files_before, plan.files_after), (6, 3));
    assert_eq!((plan.bytes_before, plan.bytes_after), (6 * size, 3 * size), "the protected three stay above the bound");
    assert_eq!(plan.by_model["make"].bytes, 3 * size);
    let reasons: Vec<(&str, usize)> = plan.protected.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(reasons, [("pinned", 1), ("scenario running", 1), ("tag paper", 1)]);
    assert!(output_file(&ws, &runs[2]).exists(), "a dry run deletes nothing");

    let report = catalog.gc(&consist::admin::GcOptions { dry_run: false, ..options }).unwrap();
    assert_eq!(report.evicted, plan.evicted, "the plan is what is done");
    for run in [&runs[2], &runs[3], &runs[0]] {
        assert!(!ws.run_dir().join("outputs").join(&run.id).exists(), "{} files freed", run.id);
        let record = catalog.run_record(&run.id).unwrap();
        assert_eq!(record.run.meta["evicted"]["files"], 1, "the record stays, marked");
    }
    for run in [&runs[1], &paper, &live] {
        assert!(output_file(&ws, run).exists());
    }
    let validation = catalog.validate(false).unwrap();
    assert!(validation.problems.is_empty(), "freed on purpose is not damage: {validation:?}");
    assert_eq!(validation.evicted, 3);
    let running = catalog.pin(&[scenario.id().to_owned()], true).unwrap_err().to_string();
    assert!(running.contains("still running"), "a running run's pin would be lost when it completes: {running}");
    let gone = catalog.pin(std::slice::from_ref(&runs[3].id), true).unwrap_err().to_string();
    assert!(gone.contains("freed by `db gc`"), "{gone}");
    // A file that reaches an evicted run's directory after the eviction (a pull, a fetch) is not
    // a leftover: the next gc leaves it.
    let late = ws.run_dir().join("outputs").join(&runs[3].id).join("v.bin");
    std::fs::create_dir_all(late.parent().unwrap()).unwrap();
    std::fs::write(&late, b"fetched later").unwrap();
    // (An age that frees nothing new: only an evicted run's leftovers would go.)
    let decade = std::time::Duration::from_secs(10 * 365 * 86_400);
    let again_gc = catalog.gc(&consist::admin::GcOptions { max_age: Some(decade), ..Default::default() }).unwrap();
    assert!(again_gc.evicted.is_empty(), "{again_gc:?}");
    assert!(late.exists(), "gc takes only what was there when it evicted the run");

    // Evicted: executes again, same result; kept: hits.
    let before = ran.get();
    let again = make(&tracker, 3, None, &ran);
    assert!(!again.is_cache_hit() && ran.get() == before + 1, "an evicted run's signature executes again");
    assert_eq!(again.signature, runs[2].signature);
    assert!(make(&tracker, 2, None, &ran).is_cache_hit() && make(&tracker, 5, None, &ran).is_cache_hit());
    let fresh = ws.tracker_with(consist::CacheMode::Reuse);
    assert!(!make(&fresh, 4, None, &ran).is_cache_hit(), "another tracker does not hit it either");
    fresh.flush().unwrap();
    drop(fresh);

    // A rebuild from the snapshots keeps what only the catalog holds: pins and eviction marks.
    tracker.flush().unwrap();
    catalog.rebuild(&ws.run_dir()).unwrap();
    assert_eq!(catalog.run_record(&runs[1].id).unwrap().run.meta["pinned"], true);
    assert_eq!(catalog.run_record(&runs[0].id).unwrap().run.meta["evicted"]["files"], 1);
    let reader = ws.tracker();
    let three = make(&reader, 3, None, &ran);
    assert_eq!(three.cache_source(), Some(again.id.as_str()), "served by the re-execution, not the evicted run");
    assert!(!make(&reader, 1, None, &ran).is_cache_hit(), "an evicted run still executes after a rebuild");
    drop(reader);
    scenario.finish().unwrap();
}

/// The copies a hit made of its source's outputs (`Hydration::OutputsAll`) belong to the same
/// cache entry: gc frees them with the source's own files, and counts them in its sizes.
#[test]
fn gc_frees_the_copies_hits_made_of_an_evicted_runs_outputs() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let ran = Counter::default();
    let step = |hydration: Hydration| {
        let body = |_: &mut consist::StepContext| {
            ran.hit();
            Ok(Value(vec![7u64; 1000]))
        };
        tracker.step("copied").code_version("1").hydration(hydration).outputs(["x"]).run(body).unwrap()
    };
    let first = step(Hydration::Metadata);
    let hit = step(Hydration::OutputsAll);
    let (original, copy) = (first.output("x").unwrap().path.clone(), hit.output("x").unwrap().path.clone());
    assert!(hit.cache_hit() && copy.starts_with(ws.run_dir().join("outputs").join(&hit.run.id)), "{}", copy.display());
    tracker.flush().unwrap();
    let size = std::fs::metadata(&original).unwrap().len();
    let catalog = tracker.catalog();
    let options = consist::admin::GcOptions { dry_run: true, ..gc_at_once() };
    let plan = catalog.gc(&options).unwrap();
    assert_eq!(plan.evicted.len(), 1, "{plan:#?}");
    assert_eq!(plan.evicted[0].run, first.run.id);
    assert_eq!((plan.evicted[0].files, plan.evicted[0].bytes), (2, 2 * size), "the file and its copy: {plan:#?}");
    assert_eq!((plan.files_before, plan.bytes_before), (2, 2 * size));
    let report = catalog.gc(&consist::admin::GcOptions { dry_run: false, ..options }).unwrap();
    assert!(!original.exists() && !copy.exists(), "both freed");
    assert_eq!((report.files_after, report.bytes_after), (0, 0));
    assert_eq!(catalog.run_record(&first.run.id).unwrap().run.meta["evicted"]["files"], 2);
    let again = step(Hydration::Metadata);
    assert!(!again.cache_hit() && ran.get() == 2, "the signature executes again");
    tracker.flush().unwrap();
}

/// Run step `use` (code `version`) on `tracker` reading `x` (a table of `u64`), calling
/// `during` with the path it reads `x` from while its body runs, before it loads it; returns
/// that path and the path of its output `y`.
fn consume(
    tracker: &Tracker,
    version: &str,
    x: &consist::Artifact,
    during: impl FnOnce(&std::path::Path),
) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut read = None;
    let used = tracker
        .step("use")
        .code_version(version)
        .input("x", x)
        .outputs(["y"])
        .run(|ctx| {
            let path = ctx.input_path("x")?.to_path_buf();
            during(&path);
            read = Some(path);
            Ok(Value(ctx.load::<Value<Vec<u64>>>("x")?.0.len()))
        })
        .unwrap();
    (read.unwrap(), used.output("y").unwrap().path.clone())
}

/// So do the copies a consumer in another run dir made of its inputs (`Hydration::InputsMissing`).
#[test]
fn gc_frees_the_copies_consumers_made_of_an_evicted_runs_outputs() {
    let ws = Workspace::new();
    let a = Tracker::builder(ws.path().join("a")).db_path(ws.db()).open().unwrap();
    let made = a.step("make").code_version("1").outputs(["x"]).run(|_| Ok(Value(vec![5u64; 1000]))).unwrap();
    let x = made.output("x").unwrap().clone();
    a.flush().unwrap();
    let b = Tracker::builder(ws.path().join("b")).db_path(ws.db()).hydration(Hydration::InputsMissing).open().unwrap();
    let (copy, y) = consume(&b, "1", &x, |_| {});
    assert!(copy.starts_with(ws.path().join("b").join("outputs").join(&made.run.id)), "{}", copy.display());
    b.flush().unwrap();
    let zero = Some(std::time::Duration::ZERO);
    let options = consist::admin::GcOptions {
        max_age: zero,
        min_age: zero,
        only: Some(vec![made.run.id.clone()]),
        ..Default::default()
    };
    let report = b.catalog().gc(&options).unwrap();
    assert_eq!(report.evicted.len(), 1, "{report:#?}");
    assert_eq!(report.evicted[0].files, 2, "the file and the consumer's copy: {report:#?}");
    assert!(!x.path.exists() && !copy.exists(), "both freed");
    assert!(y.exists(), "the consumer's own output stays");

    // A consumer still running keeps what it reads: its producer's file and its own copy; a
    // later gc frees them once it has finished.
    let made = a.step("make").code_version("2").outputs(["x"]).run(|_| Ok(Value(vec![6u64; 1000]))).unwrap();
    let x = made.output("x").unwrap().clone();
    a.flush().unwrap();
    let c = Tracker::builder(ws.path().join("c")).db_path(ws.db()).hydration(Hydration::InputsMissing).open().unwrap();
    let only = consist::admin::GcOptions { only: Some(vec![made.run.id.clone()]), ..options };
    let catalog = c.catalog();
    let (copy, _) = consume(&c, "2", &x, |path| {
        let report = catalog.gc(&only).unwrap();
        assert!(report.evicted.is_empty(), "{report:#?}");
        assert_eq!(report.protected.get("read by a running run"), Some(&1), "{report:#?}");
        assert!(x.path.exists() && path.exists(), "the producer's file and the running consumer's copy kept");
    });
    c.flush().unwrap();
    assert!(copy.exists());
    catalog.gc(&only).unwrap();
    assert!(!x.path.exists() && !copy.exists(), "freed once its consumer finished");

    // A consumer's copy of a hit's copy (`Hydration::OutputsAll`) belongs to the run the hit
    // reused, and goes with its files.
    let three =
        |h: Hydration| a.step("make").code_version("3").hydration(h).outputs(["x"]).run(|_| Ok(Value(vec![3u64; 10])));
    let source = three(Hydration::Metadata).unwrap();
    let hit = three(Hydration::OutputsAll).unwrap();
    let hit_x = hit.output("x").unwrap().clone();
    a.flush().unwrap();
    let (copy, _) = consume(&b, "3", &hit_x, |_| {});
    assert!(copy.starts_with(ws.path().join("b").join("outputs").join(&hit.run.id)), "{}", copy.display());
    b.flush().unwrap();
    let report = catalog.gc(&consist::admin::GcOptions { only: Some(vec![source.run.id.clone()]), ..only }).unwrap();
    assert_eq!(report.evicted.len(), 1, "{report:#?}");
    assert_eq!(report.evicted[0].files, 3, "the file, the hit's copy and the consumer's copy of it: {report:#?}");
    assert!(![&source.output("x").unwrap().path, &hit_x.path, &copy].iter().any(|p| p.exists()), "all three freed");
}

/// Step `make` in a project at `root` (its catalog and run dir inside it), by a tracker dropped
/// before this returns.
fn make_in_project(root: &std::path::Path) -> consist::RunResult<Value<Vec<u8>>> {
    let tracker = Tracker::builder(root.join("runs")).db_path(root.join("provenance.duckdb")).open().unwrap();
    tracker.step("make").code_version("1").outputs(["x"]).run(|_| Ok(Value(vec![1u8; 100]))).unwrap()
}

/// A project moved on this host (catalog and run dir together): its runs' files are where their
/// snapshots now are, so gc frees them as their own and marks the runs, as before the move; not
/// as copies fetched from elsewhere, which would leave the runs cache sources without files.
#[test]
fn gc_frees_a_moved_projects_files_as_its_own() {
    let ws = Workspace::new();
    let (old, new) = (ws.path().join("study"), ws.path().join("study-2026"));
    let made = make_in_project(&old);
    std::fs::rename(&old, &new).unwrap();
    assert!(make_in_project(&new).cache_hit(), "the moved project's files are found");
    let catalog = consist::Catalog::duckdb(new.join("provenance.duckdb"), std::time::Duration::from_secs(10));
    let report = catalog.gc(&gc_at_once()).unwrap();
    assert_eq!(report.evicted.len(), 1, "{report:#?}");
    assert!(!report.evicted[0].copies_only && report.evicted[0].files == 1, "{report:#?}");
    assert!(catalog.run_record(&made.run.id).unwrap().run.meta.contains_key("evicted"), "marked for every host");
    assert!(!new.join("runs/outputs").join(&made.run.id).join("x.bin").exists());
}

/// A project copied whole (`cp -a study study-copy`): its catalog names the original's run dir,
/// which exists. Maintenance in the copy touches nothing of the original; the copy's own files
/// are its own once a tracker of the copy has used its run dir.
#[test]
fn maintenance_in_a_copied_project_leaves_the_original_alone() {
    let ws = Workspace::new();
    let (orig, copy) = (ws.path().join("study"), ws.path().join("study-copy"));
    let made = make_in_project(&orig);
    let copied = std::process::Command::new("cp").arg("-a").arg(&orig).arg(&copy).status().unwrap();
    assert!(copied.success());
    let original = made.output("x").unwrap().path.clone();
    let snapshot = orig.join("runs/.consist/snapshots").join(format!("{}.json", made.run.id));
    assert!(original.starts_with(&orig) && original.is_file() && snapshot.is_file());

    let catalog = consist::Catalog::duckdb(copy.join("provenance.duckdb"), std::time::Duration::from_secs(10));
    catalog.gc(&gc_at_once()).unwrap();
    assert!(original.is_file(), "gc in the copy freed the original's file");
    let purge = consist::admin::PurgeOptions { delete_files: true, ..Default::default() };
    catalog.purge(std::slice::from_ref(&made.run.id), purge).unwrap();
    assert!(original.is_file() && snapshot.is_file(), "a purge in the copy deleted the original's files");

    // The copy's own: once a tracker of the copy has used its run dir, its files are its own.
    let remade = make_in_project(&copy);
    let own = remade.output("x").unwrap().path.clone();
    assert!(own.starts_with(&copy) && own.is_file(), "{}", own.display());
    let report = catalog.gc(&gc_at_once()).unwrap();
    assert!(!own.exists() && report.evicted.len() == 1 && !report.evicted[0].copies_only, "{report:#?}");
    assert!(original.is_file());
}

/// Pinning a scenario (its header run) keeps its steps' files.
#[test]
fn pinning_a_scenario_keeps_its_steps() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let scenario = tracker.scenario("baseline").start().unwrap();
    let step = scenario.step("make").code_version("1").outputs(["x"]).run(|_| Ok(Value(vec![3u8; 10]))).unwrap();
    let header = scenario.id().to_owned();
    scenario.finish().unwrap();
    tracker.flush().unwrap();
    let catalog = tracker.catalog();
    assert_eq!(catalog.pin(std::slice::from_ref(&header), true).unwrap(), 1);
    let report = catalog.gc(&gc_at_once()).unwrap();
    assert!(report.evicted.is_empty() && report.protected.get("pinned") == Some(&1), "{report:#?}");
    assert!(step.output("x").unwrap().path.is_file());
}

#[test]
fn gc_by_age_and_the_cli_with_pins() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let ran = Counter::default();
    let (old, pinned) = (make(&tracker, 1, None, &ran), make(&tracker, 2, Some("keep"), &ran));
    tracker.flush().unwrap();
    let run = |args: &[&str]| {
        let out = cli(&ws.db(), args);
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, text) = run(&["pin", "--tag", "keep"]);
    assert!(ok && text.contains("pinned 1 run(s)"), "{text}");
    let (ok, text) = run(&["db", "gc"]);
    assert!(!ok && text.contains("--max-size"), "{text}");
    let (ok, text) = run(&["db", "gc", "--max-size", "lots"]);
    assert!(!ok && text.contains("not a size such as 50GB"), "{text}");
    // Runs used within --min-age (one hour unless told) are kept: a workflow may be reading them.
    let (ok, text) = run(&["db", "gc", "--max-age", "0s", "--yes", "--json"]);
    assert!(ok, "{text}");
    let recent: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(recent["evicted"].as_array().unwrap().len(), 0, "{text}");
    assert_eq!(recent["protected"]["used within --min-age"], 2, "both runs, the pinned one too: {text}");
    let (ok, text) = run(&["db", "gc", "--max-age", "0s", "--min-age", "0s"]);
    assert!(!ok && text.contains("--yes"), "without a terminal, gc asks for --yes: {text}");
    let (ok, text) = run(&["db", "gc", "--max-age", "0s", "--min-age", "0s", "--yes", "--json"]);
    assert!(ok, "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["evicted"][0]["run"], old.id.as_str());
    assert_eq!(report["evicted"].as_array().unwrap().len(), 1);
    assert_eq!(report["protected"]["pinned"], 1);
    assert!(output_file(&ws, &pinned).exists());
    let (ok, text) = run(&["pin", &pinned.id, "--unpin"]);
    assert!(ok && text.contains("unpinned 1 run(s)"), "{text}");
    let (ok, text) = run(&["db", "gc", "--max-age", "0s", "--min-age", "0s", "--dry-run"]);
    assert!(ok && text.contains("would free") && text.contains("1 run(s)"), "{text}");
}

/// On PostgreSQL, a tracker that stays open through a gc elsewhere stops serving the evicted run
/// (the purge epoch moved) and executes it again; pinned runs still hit.
#[test]
fn gc_on_a_postgres_catalog_reaches_trackers_already_open() {
    let Some(server) = crate::support::pg::PgServer::start() else { return };
    let url = server.database("gc");
    let ws = Workspace::new();
    let ran = Counter::default();
    let open = Tracker::builder(ws.run_dir()).catalog(&url).open().unwrap();
    let (one, two) = (make(&open, 1, None, &ran), make(&open, 2, None, &ran));
    assert!(make(&open, 1, None, &ran).is_cache_hit(), "the open tracker now remembers run 1 as its source");
    open.flush().unwrap();

    let admin = Tracker::builder(ws.run_dir()).catalog(&url).open().unwrap();
    assert_eq!(admin.catalog().pin(std::slice::from_ref(&two.id), true).unwrap(), 1);
    let options = consist::admin::GcOptions { max_age: Some(std::time::Duration::ZERO), ..Default::default() };
    let report = admin.catalog().gc(&options).unwrap();
    assert_eq!(report.evicted.iter().map(|e| e.run.as_str()).collect::<Vec<_>>(), [one.id.as_str()]);
    assert_eq!(report.protected["pinned"], 1);

    // Within EPOCH_POLL the open tracker may still try its remembered source, find its files
    // gone and execute (with a warning); after it, the catalog no longer names that source.
    std::thread::sleep(consist::store::EPOCH_POLL + std::time::Duration::from_millis(100));
    let before = ran.get();
    assert!(!make(&open, 1, None, &ran).is_cache_hit(), "the open tracker executes the evicted run again");
    assert_eq!(ran.get(), before + 1);
    assert!(make(&open, 2, None, &ran).is_cache_hit(), "the pinned run still serves");
    open.flush().unwrap();
    drop((open, admin));
    crate::support::pg::forget_local_state(&url);
}
