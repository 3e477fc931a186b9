//! Guarantees under hostile input, tampering, damage and concurrency (RELIABILITY.md lists them):
//! keys and URIs that would leave the run directory, modified and corrupt outputs, deep and huge
//! configs, queries that reach outside the catalog, damaged snapshots, concurrent twins and many
//! writers with the CLI polling.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use consist::polars::prelude::*;
use consist::{Catalog, CatalogLocation, Error, Value};

use crate::process::{stdout_of, worker};
use crate::support::{Counter, Workspace, cli};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    found
}

#[test]
fn keys_and_uris_that_would_leave_the_run_dir_are_refused_before_anything_is_written() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let outside = ws.path().join("outside");
    let absolute = format!("{}/abs", outside.display());
    for key in ["../../../esc", absolute.as_str(), "a/b", "..", "nul\0byte", ""] {
        let declared = tracker.step("declared").code_version("1").outputs([key]).run(|_| Ok(Value(1u8))).unwrap_err();
        assert!(matches!(declared, Error::UnsafePath { kind: "output key", .. }), "{key:?}: {declared}");
        let logged = tracker
            .step("logged")
            .code_version("1")
            .config(&key)
            .run(|ctx| {
                ctx.log_value(key, &1u8)?;
                Ok(())
            })
            .unwrap_err()
            .to_string();
        assert!(logged.contains("output key") && logged.contains("is refused"), "{key:?}: {logged}");
    }
    let input = ws.write("in.csv", "a\n1\n");
    let err = tracker.step("inputs").code_version("1").input("../in", &input).run(|_| Ok(())).unwrap_err();
    assert!(matches!(err, Error::UnsafePath { kind: "input key", .. }), "{err}");
    for uri in ["./../../etc/passwd", "./a/../../b", "relative/path"] {
        assert!(matches!(tracker.resolve_uri(uri), Err(Error::UnsafePath { .. })), "{uri}");
    }
    drop(tracker);
    let escaped: Vec<PathBuf> =
        files_under(ws.path()).into_iter().filter(|p| !p.starts_with(ws.run_dir()) && p.ends_with("esc.bin")).collect();
    assert!(escaped.is_empty() && !outside.exists(), "nothing written outside the run dir: {escaped:?}");
}

fn frame(rows: i64) -> DataFrame {
    df!("id" => (0..rows).collect::<Vec<_>>(), "value" => (0..rows).map(|i| i as f64 * 0.5).collect::<Vec<_>>())
        .unwrap()
}

#[test]
fn a_modified_output_is_caught_by_its_hash_on_a_lazy_hit_and_on_load() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let square = |tracker: &consist::Tracker| {
        tracker
            .step("square")
            .code_version("1")
            .config(&7)
            .outputs(["squared"])
            .run(|_| {
                runs.hit();
                Ok(Value(49u32))
            })
            .unwrap()
    };
    let tracker = ws.tracker();
    let first = square(&tracker);
    let artifact = first.output("squared").unwrap().clone();
    // Same size, other bytes: only a hash tells.
    let mut bytes = std::fs::read(&artifact.path).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&artifact.path, &bytes).unwrap();

    let err = tracker.load::<Value<u32>>(&artifact).unwrap_err().to_string();
    let recorded = artifact.hash.clone().unwrap();
    for part in [artifact.path.to_string_lossy().as_ref(), first.run.id.as_str(), recorded.as_str()] {
        assert!(err.contains(part), "the error names {part}: {err}");
    }
    // The default (lazy) validation sees the changed stat, hashes again, and executes again.
    let again = square(&tracker);
    assert!(!again.cache_hit(), "a modified output is never served");
    assert_eq!((again.value().unwrap().0, runs.get()), (49, 2));
    // A fresh tracker (another process) hits the regenerated output.
    drop(tracker);
    assert!(square(&ws.tracker()).cache_hit());
    assert_eq!(runs.get(), 2);
}

/// A small deterministic generator (no dependency): xorshift.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn corrupt_parquet_is_an_error_or_a_rerun_never_a_panic() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let runs = Counter::default();
    let make = |tracker: &consist::Tracker| {
        tracker
            .step("table")
            .code_version("1")
            .outputs(["table"])
            .run(|_| {
                runs.hit();
                Ok(frame(200))
            })
            .unwrap()
    };
    let path = make(&tracker).output("table").unwrap().path.clone();
    let good = std::fs::read(&path).unwrap();
    let scratch = ws.path().join("corrupt.parquet");
    let (mut state, mut errors, mut read) = (0x9e3779b97f4a7c15_u64, 0, 0);
    for round in 0..400 {
        let mut bytes = good.clone();
        if round % 4 == 0 {
            bytes.truncate((next(&mut state) as usize) % bytes.len());
        } else {
            for _ in 0..=(round % 3) {
                let at = (next(&mut state) as usize) % bytes.len();
                bytes[at] = next(&mut state) as u8;
            }
        }
        std::fs::write(&scratch, &bytes).unwrap();
        // Must return, whatever the damage: Ok with some rows, or an error naming the file.
        match consist::read_parquet("table", &scratch) {
            Ok(_) => read += 1,
            Err(e) => {
                assert!(e.to_string().contains("corrupt.parquet"), "{e}");
                errors += 1;
            }
        }
    }
    assert_eq!(errors + read, 400);
    assert!(errors > 100, "most corruptions are caught ({errors} errors, {read} read)");
    eprintln!("400 corrupted copies of a Parquet output: {errors} errors naming the file, {read} read, no panic");
    // A corrupted cached output, stat changed: the step executes again and the chain is right.
    let mut bytes = good.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    drop(tracker);
    let again = make(&ws.tracker());
    assert!(!again.cache_hit());
    assert_eq!((again.value().unwrap().height(), runs.get()), (200, 2));
}

#[test]
fn deep_huge_and_non_finite_configs_are_clear_errors_not_crashes() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    // Built by moving (the json! macro would serialize each level again, recursively).
    let mut deep = serde_json::Value::from(1);
    for _ in 0..10_000 {
        deep = serde_json::Value::Object(serde_json::Map::from_iter([("next".to_owned(), deep)]));
    }
    let err = tracker.step("deep").code_version("1").config(&deep).run(|_| Ok(())).unwrap_err();
    assert!(matches!(err, Error::Config { .. }) && err.to_string().contains("more than 64 levels"), "{err}");
    std::mem::forget(deep); // dropping 10,000 nested values recurses; the test is about the config
    let huge = "x".repeat(10 << 20);
    let err = tracker.step("huge").code_version("1").config(&huge).run(|_| Ok(())).unwrap_err().to_string();
    assert!(err.contains("10.0 MiB") && err.contains("input file"), "{err}");
    let err = tracker.step("inf").code_version("1").config(&[1.0, f64::INFINITY]).run(|_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("$.1"), "{err}");
    // 60 levels are fine, and read back from the snapshot into the database.
    let mut fine = serde_json::Value::from(1);
    for _ in 0..60 {
        fine = serde_json::Value::Array(vec![fine]);
    }
    tracker.step("fine").code_version("1").config(&fine).run(|_| Ok(())).unwrap();
    tracker.flush().unwrap();
    drop(tracker);
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run WHERE model_name = 'fine'"), 1);
}

#[test]
fn queries_read_the_catalog_only_unless_the_user_allows_more() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    tracker.step("zones").code_version("1").outputs(["zones"]).run(|_| Ok(frame(5))).unwrap();
    drop(tracker);
    let db = ws.db();
    let ok = cli(&db, &["query", "--json", "SELECT count(*) AS n FROM zones"]);
    assert!(ok.status.success(), "an artifact view is readable: {}", String::from_utf8_lossy(&ok.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(rows["rows"], serde_json::json!([[5]]));
    let leak = ws.path().join("leak.csv");
    let other = ws.path().join("other.duckdb");
    let secret = ws.write("secret.csv", "a\n1\n");
    let refused = [
        format!("SELECT * FROM read_csv('{}')", secret.display()),
        "SELECT * FROM read_text('/etc/hostname')".to_owned(),
        "SELECT * FROM glob('/etc/*')".to_owned(),
        format!("COPY run TO '{}'", leak.display()),
        format!("ATTACH '{}' AS o", other.display()),
        "INSTALL httpfs".to_owned(),
        "LOAD httpfs".to_owned(),
        "SET threads = 1".to_owned(),
        "SET enable_external_access = true".to_owned(),
        "PRAGMA enable_profiling".to_owned(),
        "DELETE FROM run".to_owned(),
    ];
    for sql in &refused {
        let out = cli(&db, &["query", sql]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sql} must be refused: {stderr}");
        assert!(
            stderr.contains("read-only") || stderr.contains("reaches outside") || stderr.contains("failed"),
            "{stderr}"
        );
    }
    assert!(!leak.exists() && !other.exists(), "nothing was written outside the catalog");
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run"), 1, "the catalog is intact");
    let sql = format!("SELECT count(*) AS n FROM read_csv('{}')", secret.display());
    let allowed = cli(&db, &["query", "--allow-external", "--json", &sql]);
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
}

fn snapshot_of(ws: &Workspace, run_id: &str) -> PathBuf {
    consist::testing::snapshots_dir(&ws.run_dir()).join(format!("{run_id}.json"))
}

/// One completed run recorded by a tracker that is gone: the run and its snapshot file.
fn one_recorded_run(ws: &Workspace) -> (consist::Run, PathBuf) {
    let tracker = ws.tracker();
    let run = tracker.step("s").code_version("1").outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap().run;
    drop(tracker);
    let path = snapshot_of(ws, &run.id);
    (run, path)
}

#[test]
fn rebuild_reports_damaged_snapshots_keeps_their_rows_and_restores_the_index() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let square = |tracker: &consist::Tracker, v: i64| {
        tracker
            .step("square")
            .code_version("1")
            .config(&v)
            .outputs(["squared"])
            .run(|_| {
                runs.hit();
                Ok(Value(v * v))
            })
            .unwrap()
    };
    let tracker = ws.tracker();
    let ids: Vec<String> = (1..=3).map(|v| square(&tracker, v).run.id).collect();
    drop(tracker);
    let damaged = snapshot_of(&ws, &ids[1]);
    let text = std::fs::read(&damaged).unwrap();
    std::fs::write(&damaged, &text[..text.len() / 2]).unwrap();

    let location = CatalogLocation::DuckDb(ws.db());
    let catalog = Catalog::open(&location, Duration::from_secs(10)).unwrap();
    let report = catalog.rebuild(&ws.run_dir()).unwrap();
    assert_eq!(report.restored, 3, "the damaged run keeps its database rows");
    assert_eq!(report.kept, vec![ids[1].clone()]);
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(
        (report.damaged[0].file.as_path(), report.damaged[0].run_id.as_deref()),
        (damaged.as_path(), Some(&*ids[1]))
    );
    assert!(report.lost.is_empty());
    drop(catalog);

    // Lose the database and the signature index too: the CLI says what it could not restore.
    std::fs::remove_file(ws.db()).unwrap();
    let _ = std::fs::remove_file(ws.db().with_extension("duckdb.wal"));
    std::fs::remove_dir_all(ws.path().join("provenance.duckdb.consist")).unwrap();
    let out = cli(&ws.db(), &["db", "rebuild", "--run-dir", ws.run_dir().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a run that could not be restored fails the command: {stderr}");
    assert!(
        stderr.contains(&*damaged.to_string_lossy()) && stderr.contains(&ids[1]) && stderr.contains("NOT restored"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-indexed 2"), "{}", String::from_utf8_lossy(&out.stdout));
    // The two readable runs are cache hits again; the lost one executes.
    let tracker = ws.tracker();
    let hits: Vec<bool> = (1..=3).map(|v| square(&tracker, v).cache_hit()).collect();
    assert_eq!(hits, [true, false, true]);
    assert_eq!(runs.get(), 4);
}

#[test]
fn a_pending_snapshot_that_cannot_be_read_is_reported_once_by_inspect() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    tracker.step("first").code_version("1").run(|_| Ok(())).unwrap();
    tracker.flush().unwrap();
    let run = tracker.step("s").code_version("1").outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap().run;
    // Keep the run pending: the writer has not synced it (no flush), then damage its snapshot.
    std::mem::forget(tracker);
    let path = snapshot_of(&ws, &run.id);
    std::fs::write(&path, b"{\"format\": \"consist-run-v1\", \"run\": {\"id\": ").unwrap();
    let inspect = cli(&ws.db(), &["db", "inspect", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout_of(inspect)).unwrap();
    let damaged = report["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1, "{report}");
    assert_eq!(damaged[0]["run_id"], run.id.as_str());
    let again: serde_json::Value =
        serde_json::from_str(&stdout_of(cli(&ws.db(), &["db", "inspect", "--json"]))).unwrap();
    assert_eq!(again["damaged"], report["damaged"], "still reported, not re-queued");
}

/// Run `steps` in `processes` worker processes at once (logging at debug level); returns their
/// stdout lines and their stderr.
fn sweep(
    ws: &Workspace,
    processes: usize,
    values: impl Fn(usize) -> Vec<String>,
    sleep_ms: u64,
) -> (Vec<String>, String) {
    let children: Vec<_> = (0..processes)
        .map(|p| {
            Command::new(worker())
                .arg("steps")
                .arg(ws.run_dir())
                .arg(ws.db())
                .args(values(p))
                .env("CONSIST_TEST_SLEEP_MS", sleep_ms.to_string())
                .env("CONSIST_LOG", "consist=debug")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut lines, mut stderr) = (Vec::new(), String::new());
    for child in children {
        let out = child.wait_with_output().unwrap();
        stderr.push_str(&String::from_utf8_lossy(&out.stderr));
        lines.extend(stdout_of(out).lines().map(str::to_owned));
    }
    (lines, stderr)
}

#[test]
fn concurrent_twins_wait_for_one_execution_instead_of_repeating_it() {
    let ws = Workspace::new();
    drop(ws.tracker());
    let values: Vec<String> = (1..=6).map(|v| v.to_string()).collect();
    let (lines, _) = sweep(&ws, 4, |_| values.clone(), 300);
    let executed = lines.iter().filter(|l| l.starts_with("executed ")).count();
    let hits = lines.iter().filter(|l| l.starts_with("hit ")).count();
    assert_eq!((executed, hits), (6, 18), "each of 6 signatures executes once across 4 processes: {lines:#?}");
    assert!(!ws.path().join("provenance.duckdb.consist/claims").read_dir().unwrap().any(|_| true), "claims released");
}

#[test]
fn processes_starting_on_a_new_catalog_never_see_it_without_its_header() {
    // DuckDB creates a file, then locks it, then writes its header: a process opening the path
    // in between took the lock on an empty file and failed "not a valid DuckDB database" (a
    // sweep starting on a new catalog). Watch the path from outside while six processes start.
    for trial in 0..5 {
        let ws = Workspace::new();
        let db = ws.db();
        let mut children: Vec<_> = (0..6)
            .map(|_| {
                Command::new(worker())
                    .args(["steps".as_ref(), ws.run_dir().as_os_str(), db.as_os_str(), "1".as_ref()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut headerless = 0;
        while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
            if let Ok(file) = std::fs::File::open(&db) {
                let mut header = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(file, 12), &mut header).unwrap();
                headerless += usize::from(header.get(8..12) != Some(b"DUCK".as_slice()));
            }
        }
        for child in children {
            stdout_of(child.wait_with_output().unwrap());
        }
        assert_eq!(headerless, 0, "trial {trial}: the catalog file was seen without DuckDB's header");
        let sidecar = ws.path().join("provenance.duckdb.consist");
        let leftovers: Vec<_> = std::fs::read_dir(&sidecar)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok().filter(|n| n.starts_with("new-")))
            .collect();
        assert!(leftovers.is_empty(), "files made to create the catalog are removed: {leftovers:?}");
    }
}

#[test]
fn the_catalog_file_holds_every_run_once_concurrent_processes_exit_unless_they_defer_hits() {
    // The quickstart as a user runs it (no flush: the tracker's drop at exit), in one directory.
    let ws = Workspace::new();
    let db = ws.path().join("provenance.duckdb");
    let quickstarts = |n: usize, defer: bool| {
        let children: Vec<_> = (0..n)
            .map(|_| {
                let mut command = crate::examples::example_command("quickstart", ws.path(), &[]);
                if defer {
                    command.env(consist::DEFER_HITS_ENV, "1");
                }
                command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    };
    let runs = || ws.scalar::<i64>("SELECT count(*) FROM run");
    quickstarts(1, false);
    quickstarts(1, false);
    assert_eq!(runs(), 2, "plain SQL sees the hit-only process's run");
    quickstarts(8, false);
    assert_eq!(runs(), 10, "and every one of 8 concurrent processes' runs");
    // Processes that defer their hits (an explicit option) leave them in the queue. (One after
    // the other: a process may write a batch early when it sees another's entry mid-write.)
    quickstarts(1, true);
    quickstarts(1, true);
    assert_eq!(runs(), 10);
    assert_eq!(consist::Catalog::duckdb(&db, std::time::Duration::from_secs(5)).pending_count(), 2);
}

/// `processes` writers of 50 steps each while the CLI lists runs in a loop: every run is in the
/// database once afterwards, and no CLI call fails or waits past its lock timeout.
fn writers_with_a_polling_cli(processes: usize) {
    let ws = Workspace::new();
    // The database exists before the CLI starts polling (a missing one is an error of its own).
    let tracker = ws.tracker();
    tracker.step("setup").code_version("1").run(|_| Ok(())).unwrap();
    tracker.flush().unwrap();
    drop(tracker);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let db = ws.db();
    let poller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut calls = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                let out = Command::new(worker())
                    .args(["cli", "--wait", "10", "runs", "--json", "--limit", "5", "--db-path"])
                    .arg(&db)
                    .env("CONSIST_LOG", "consist=debug")
                    .output()
                    .unwrap();
                calls.push((
                    started.elapsed(),
                    out.status.success(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                ));
            }
            calls
        })
    };
    let started = Instant::now();
    let (lines, stderr) = sweep(&ws, processes, |p| (0..50).map(|i| (p * 1000 + i).to_string()).collect(), 0);
    let waits = stderr.lines().filter(|l| l.contains("database opened after waiting")).count();
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let calls = poller.join().unwrap();
    assert_eq!(lines.iter().filter(|l| l.starts_with("executed ")).count(), processes * 50);
    let failed: Vec<_> = calls.iter().filter(|c| !c.1).collect();
    assert!(failed.is_empty(), "every CLI call succeeds: {failed:#?}");
    let slowest = calls.iter().map(|c| c.0).max().unwrap_or_default();
    assert!(slowest < Duration::from_secs(12), "no CLI call waits past its 10 s timeout: {slowest:?}");
    let (rows, distinct): (i64, i64) = ws
        .sql()
        .query_row("SELECT count(*), count(DISTINCT id) FROM run WHERE model_name = 'square'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((rows, distinct), ((processes * 50) as i64, (processes * 50) as i64), "each run in the database once");
    let cli_waits = calls.iter().filter(|c| c.2.contains("database opened after waiting")).count();
    eprintln!(
        "{processes} writers x 50 steps: {:.1} s; writers waited for the file {waits} time(s); {} CLI calls, \
         {cli_waits} of them waited, slowest {:.0} ms",
        elapsed.as_secs_f64(),
        calls.len(),
        slowest.as_secs_f64() * 1000.0
    );
}

#[test]
fn four_writers_and_the_cli_record_every_run_once() {
    writers_with_a_polling_cli(4);
}

#[test]
fn eight_writers_and_the_cli_record_every_run_once() {
    writers_with_a_polling_cli(8);
}

#[test]
fn a_snapshot_of_an_unknown_future_format_is_refused_by_name_and_its_rows_kept() {
    let ws = Workspace::new();
    let (run, path) = one_recorded_run(&ws);
    let text = std::fs::read_to_string(&path).unwrap().replace("consist-snapshot-v1", "consist-snapshot-v9");
    std::fs::write(&path, text).unwrap();
    let catalog = Catalog::open(&CatalogLocation::DuckDb(ws.db()), Duration::from_secs(10)).unwrap();
    let report = catalog.rebuild(&ws.run_dir()).unwrap();
    assert_eq!(report.kept, vec![run.id.clone()]);
    assert!(report.damaged[0].reason.contains("`consist-snapshot-v9`"), "{:?}", report.damaged);
}

fn big(ws: &Workspace, bytes: usize, file_size_limit_blocks: Option<u32>) -> std::process::Output {
    let mut cmd = match file_size_limit_blocks {
        // SIGXFSZ ignored (inherited through exec), so a write past the limit fails with EFBIG.
        Some(blocks) => {
            let mut sh = Command::new("sh");
            sh.arg("-c").arg(format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\"")).arg(worker());
            sh
        }
        None => Command::new(worker()),
    };
    cmd.arg("big").arg(ws.run_dir()).arg(ws.db()).arg(bytes.to_string()).output().unwrap()
}

#[test]
fn a_full_disk_fails_the_step_with_the_path_and_damages_nothing_recorded() {
    let ws = Workspace::new();
    let small = stdout_of(big(&ws, 1000, None));
    assert!(small.starts_with("executed "), "{small}");
    // Files limited to ~100 KB: a 1 MiB output cannot be written.
    let full = big(&ws, 1 << 20, Some(200));
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert!(!full.status.success(), "{stderr}");
    assert!(stderr.contains("blob.bin") && stderr.contains("File too large"), "names the file and why: {stderr}");
    // What was recorded before is intact: a hit; the failed run is recorded as failed.
    let again = stdout_of(big(&ws, 1000, None));
    assert!(again.starts_with("hit "), "{again}");
    let failed = cli(&ws.db(), &["runs", "--json", "--status", "failed"]);
    let failed: serde_json::Value = serde_json::from_str(&stdout_of(failed)).unwrap();
    assert_eq!(failed.as_array().map(Vec::len), Some(1), "{failed}");
    assert!(failed[0]["meta"]["error"].as_str().unwrap().contains("File too large"), "{failed}");
}

#[test]
fn a_late_io_failure_is_recorded_and_the_rerun_resumes_after_the_last_good_step() {
    let ws = Workspace::new();
    let counts = [Counter::default(), Counter::default(), Counter::default()];
    let needed = ws.path().join("needed.txt");
    let chain = |tracker: &consist::Tracker| -> consist::Result<i64> {
        let one = tracker.step("one").code_version("1").outputs(["a"]).run(|_| {
            counts[0].hit();
            Ok(Value(1i64))
        })?;
        let two = tracker.step("two").code_version("1").input("a", one.output("a")?).outputs(["b"]).run(|ctx| {
            counts[1].hit();
            let a: Value<i64> = ctx.load("a")?;
            let extra: i64 = std::fs::read_to_string(&needed)?.trim().parse()?;
            Ok(Value(a.0 + extra))
        })?;
        let three = tracker.step("three").code_version("1").input("b", two.output("b")?).outputs(["c"]).run(|ctx| {
            counts[2].hit();
            let b: Value<i64> = ctx.load("b")?;
            Ok(Value(b.0 * 10))
        })?;
        Ok(three.value().unwrap().0)
    };
    let tracker = ws.tracker();
    let err = chain(&tracker).unwrap_err();
    assert!(matches!(&err, Error::StepFailed { step, .. } if step == "two"), "{err}");
    let failed = tracker.find_runs(&consist::RunQuery::default().status(consist::RunStatus::Failed)).unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].meta["error"].as_str().unwrap().contains("No such file"), "{:?}", failed[0].meta);
    std::fs::write(&needed, "4").unwrap();
    assert_eq!(chain(&tracker).unwrap(), 50);
    let ran: Vec<u32> = counts.iter().map(Counter::get).collect();
    assert_eq!(ran, [1, 2, 1], "step one hit, two executed again, three ran once");
    // The failed run is never a cache source.
    let sources = tracker.find_runs(&consist::RunQuery::default()).unwrap();
    assert!(sources.iter().all(|r| r.meta.get("cache_source").and_then(|s| s.as_str()) != Some(&*failed[0].id)));
}

/// A fuzz harness (proptest-driven, bounded): a real run's snapshot and signature-index entry,
/// truncated and with bytes overwritten, are read without a panic, and a step over a damaged
/// index entry still returns the right value (a hit only if the entry still checks out).
#[test]
fn fuzz_damaged_snapshots_and_index_entries_never_panic_nor_serve_a_wrong_value() {
    use proptest::prelude::*;
    let ws = Workspace::new();
    let square = |tracker: &consist::Tracker| {
        tracker.step("square").code_version("1").config(&7).outputs(["squared"]).run(|_| Ok(Value(49u32)))
    };
    let run = square(&ws.tracker()).unwrap().run;
    let snapshot = snapshot_of(&ws, &run.id);
    let index_dir = ws.path().join("provenance.duckdb.consist/index");
    let index = std::fs::read_dir(&index_dir).unwrap().flatten().next().unwrap().path();
    let (good_snapshot, good_index) = (std::fs::read(&snapshot).unwrap(), std::fs::read(&index).unwrap());
    let damage = |good: &[u8], cut: usize, flips: &[(usize, u8)]| {
        let mut bytes = good.to_vec();
        for (at, byte) in flips {
            let at = at % bytes.len();
            bytes[at] = *byte;
        }
        bytes.truncate(bytes.len() - cut % (bytes.len() / 4).max(1));
        bytes
    };
    let config = ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let cases = (0usize..4096, proptest::collection::vec((0usize..100_000, any::<u8>()), 0..4), any::<bool>());
    runner
        .run(&cases, |(cut, flips, in_index)| {
            if in_index {
                std::fs::write(&index, damage(&good_index, cut, &flips)).unwrap();
                let result = square(&ws.tracker_with(consist::CacheMode::Readonly)).unwrap();
                prop_assert_eq!(result.value().unwrap().0, 49);
                std::fs::write(&index, &good_index).unwrap();
            } else {
                std::fs::write(&snapshot, damage(&good_snapshot, cut, &flips)).unwrap();
                let _ = consist::testing::read_all(&snapshot);
                std::fs::write(&snapshot, &good_snapshot).unwrap();
            }
            Ok(())
        })
        .unwrap();
}

/// Every table's row count, and every run's (id, status, signature, config hash).
type Contents = (Vec<(String, i64)>, Vec<(String, String, String, String)>);

fn catalog_contents(db: &Path) -> Contents {
    let conn = duckdb::Connection::open(db).unwrap();
    let counts = consist::testing::TABLES
        .iter()
        .map(|t| (t.to_string(), conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0)).unwrap()))
        .collect();
    let mut stmt = conn.prepare("SELECT id, status, signature, config_hash FROM run ORDER BY id").unwrap();
    let runs = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (counts, runs)
}

#[test]
fn a_lost_database_is_rebuilt_whole_from_snapshots_and_hits_again() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--iterations", "3", "--extended", "4"];
    assert!(crate::examples::example_command("iterative_workflow", dir.path(), &args).status().unwrap().success());
    let db = dir.path().join("runs/travel_demand/provenance.duckdb");
    let before = catalog_contents(&db);
    assert!(before.0.iter().all(|(_, n)| *n > 0), "every table has rows to lose: {:?}", before.0);
    std::fs::remove_file(&db).unwrap();
    let _ = std::fs::remove_file(db.with_extension("duckdb.wal"));
    let out = cli(&db, &["db", "rebuild"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(catalog_contents(&db), before, "same rows in every table, same runs and signatures");
    let mut keep = args.to_vec();
    keep.push("--keep");
    let again = crate::examples::example("iterative_workflow", dir.path(), &keep);
    assert_eq!(again.matches(" steps were cache hits, 0 executed").count(), 2, "{again}");
}

#[test]
fn a_damaged_snapshot_whose_run_has_another_copy_is_not_reported_lost() {
    let ws = Workspace::new();
    let (run, path) = one_recorded_run(&ws);
    let merged = ws.path().join("provenance.duckdb.consist/merged");
    std::fs::create_dir_all(&merged).unwrap();
    std::fs::copy(&path, merged.join(format!("{}.json", run.id))).unwrap();
    std::fs::write(&path, b"{\"format\": ").unwrap();
    std::fs::remove_file(ws.db()).unwrap();
    let catalog = Catalog::open(&CatalogLocation::DuckDb(ws.db()), Duration::from_secs(10)).unwrap();
    let report = catalog.rebuild(&ws.run_dir()).unwrap();
    assert_eq!((report.restored, report.damaged.len()), (1, 1), "reported as damaged, restored from the copy");
    assert!(report.kept.is_empty() && report.lost.is_empty(), "{report:?}");
}

#[test]
fn a_cli_call_that_finds_the_database_locked_too_long_names_its_wait_option() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    tracker.step("s").code_version("1").run(|_| Ok(())).unwrap();
    tracker.flush().unwrap();
    drop(tracker);
    let holder = ws.sql(); // this process holds the file open read-write
    let started = Instant::now();
    let out = Command::new(worker()).args(["cli", "--wait", "1", "runs", "--db-path"]).arg(ws.db()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("stayed locked") && stderr.contains("--wait SECONDS") && stderr.contains("(now 1)"),
        "{stderr}"
    );
    assert!(!stderr.contains("lock_timeout"), "the library option is not what a CLI user can change: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "it gave up after its wait");
    drop(holder);
}
