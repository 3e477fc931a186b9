//! Several processes sharing one catalog: cross-process hits, concurrent writers, the CLI during a run.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use crate::support::Workspace;

pub fn worker() -> &'static str {
    env!("CARGO_BIN_EXE_consist-test-worker")
}

fn step(ws: &Workspace, value: i64, sleep_ms: u64) -> Command {
    let mut cmd = Command::new(worker());
    cmd.arg("step").arg(ws.run_dir()).arg(ws.db()).arg(value.to_string()).arg(sleep_ms.to_string());
    cmd
}

pub fn stdout_of(out: Output) -> String {
    assert!(out.status.success(), "worker failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn last_line(out: Output) -> String {
    stdout_of(out).lines().last().unwrap_or_default().to_owned()
}

#[test]
fn a_second_process_gets_a_cache_hit() {
    let ws = Workspace::new();
    let first = last_line(step(&ws, 7, 0).output().unwrap());
    assert!(first.starts_with("executed ") && first.ends_with(" 49"), "{first}");
    let second = last_line(step(&ws, 7, 0).output().unwrap());
    assert!(second.starts_with("hit ") && second.ends_with(" 49"), "{second}");
}

#[test]
fn two_processes_writing_at_once_are_both_recorded() {
    let ws = Workspace::new();
    // Create the database first so both workers contend for the same existing file.
    drop(ws.tracker());
    let a = step(&ws, 2, 200).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let b = step(&ws, 3, 200).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (last_line(a.wait_with_output().unwrap()), last_line(b.wait_with_output().unwrap()));
    assert!(a.starts_with("executed ") && b.starts_with("executed "), "{a} / {b}");
    let ids: Vec<String> = [&a, &b].iter().map(|l| l.split(' ').nth(1).unwrap().to_owned()).collect();
    let conn = ws.sql();
    for id in ids {
        let status: String = conn.query_row("SELECT status FROM run WHERE id = ?", [&id], |r| r.get(0)).unwrap();
        assert_eq!(status, "completed", "{id}");
    }
}

#[test]
fn the_cli_reads_while_a_step_runs_in_another_process() {
    let ws = Workspace::new();
    // The database exists (`db inspect` reads it) before the step starts.
    assert!(last_line(step(&ws, 10, 0).output().unwrap()).starts_with("executed "));
    let mut child = step(&ws, 11, 3000).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines.next().unwrap().unwrap();
    let run_id = started.strip_prefix("started ").expect("worker announces the step").to_owned();

    let cli = Command::new(worker()).args(["cli", "runs", "--json", "--db-path"]).arg(ws.db()).output().unwrap();
    let runs: serde_json::Value = serde_json::from_str(&stdout_of(cli)).unwrap();
    let listed = runs.as_array().unwrap().iter().find(|r| r["id"] == run_id.as_str()).expect("running run is listed");
    assert_eq!(listed["status"], "running");
    // Its claim names it while it runs: alive, not a zombie (whatever its host and process id).
    let inspect =
        Command::new(worker()).args(["cli", "db", "inspect", "--json", "--db-path"]).arg(ws.db()).output().unwrap();
    let inspect: serde_json::Value = serde_json::from_str(&stdout_of(inspect)).unwrap();
    assert_eq!(inspect["zombies"], serde_json::json!([]), "a live run is not a zombie");

    assert!(child.wait().unwrap().success());
    let after = Command::new(worker()).args(["cli", "runs", "--json", "--db-path"]).arg(ws.db()).output().unwrap();
    let runs: serde_json::Value = serde_json::from_str(&stdout_of(after)).unwrap();
    assert!(runs.as_array().unwrap().iter().all(|r| r["status"] == "completed"), "{runs}");
}

#[test]
fn cli_reports_a_missing_database_with_exit_status_1() {
    let ws = Workspace::new();
    let out =
        Command::new(worker()).args(["cli", "runs", "--db-path"]).arg(ws.path().join("none.duckdb")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none.duckdb") && err.contains("--db-path"), "{err}");
    let bad = Command::new(worker()).args(["cli", "runs", "--status", "weird"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "a bad value is a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("running, completed, failed"));
    let usage = Command::new(worker()).args(["cli", "runs", "--no-such-flag"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn a_step_killed_mid_run_is_never_a_cache_hit() {
    let ws = Workspace::new();
    drop(ws.tracker());
    let mut child = step(&ws, 13, 30_000).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines.next().unwrap().unwrap();
    let killed_id = started.strip_prefix("started ").expect("worker announces the step").to_owned();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let again = last_line(step(&ws, 13, 0).output().unwrap());
    assert!(again.starts_with("executed ") && again.ends_with(" 169"), "must execute again: {again}");
    let cli = Command::new(worker()).args(["cli", "runs", "--json", "--db-path"]).arg(ws.db()).output().unwrap();
    let runs: serde_json::Value = serde_json::from_str(&stdout_of(cli)).unwrap();
    let killed = runs.as_array().unwrap().iter().find(|r| r["id"] == killed_id.as_str()).expect("killed run recorded");
    assert_eq!(killed["status"], "running", "the killed run stays visible as an unfinished run");
    let inspect =
        Command::new(worker()).args(["cli", "db", "inspect", "--json", "--db-path"]).arg(ws.db()).output().unwrap();
    let inspect: serde_json::Value = serde_json::from_str(&stdout_of(inspect)).unwrap();
    assert_eq!(inspect["zombies"], serde_json::json!([killed_id]), "its process is gone, so it is reported");
    // The documented command marks it failed, saying why; it is no longer a zombie.
    let marked = stdout_of(
        Command::new(worker()).args(["cli", "db", "fail-zombies", "--db-path"]).arg(ws.db()).output().unwrap(),
    );
    assert!(marked.contains("marked 1 zombie run(s) failed") && marked.contains(&killed_id), "{marked}");
    let cli = Command::new(worker()).args(["cli", "runs", "--json", "--db-path"]).arg(ws.db()).output().unwrap();
    let runs: serde_json::Value = serde_json::from_str(&stdout_of(cli)).unwrap();
    let killed = runs.as_array().unwrap().iter().find(|r| r["id"] == killed_id.as_str()).unwrap();
    assert_eq!(killed["status"], "failed");
    assert!(killed["meta"]["error"].as_str().unwrap().contains("fail-zombies"), "{killed}");
    let inspect =
        Command::new(worker()).args(["cli", "db", "inspect", "--json", "--db-path"]).arg(ws.db()).output().unwrap();
    let inspect: serde_json::Value = serde_json::from_str(&stdout_of(inspect)).unwrap();
    assert_eq!(inspect["zombies"], serde_json::json!([]));
}

#[test]
fn consist_db_names_the_catalog_when_the_code_does_not() {
    let ws = Workspace::new();
    let db = ws.path().join("shared").join("catalog.duckdb");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let square = |env: &std::ffi::OsStr| {
        Command::new(worker()).args(["step"]).arg(ws.run_dir()).args(["-", "4", "0"]).env("CONSIST_DB", env).output()
    };
    assert!(last_line(square(db.as_os_str()).unwrap()).starts_with("executed "));
    assert!(last_line(square(db.as_os_str()).unwrap()).starts_with("hit "));
    assert!(db.exists() && !ws.run_dir().join("provenance.duckdb").exists(), "the catalog is where CONSIST_DB says");
    // The CLI reads the same variable.
    let cli = Command::new(worker()).args(["cli", "runs", "--json"]).env("CONSIST_DB", &db).output().unwrap();
    let runs: serde_json::Value = serde_json::from_str(&stdout_of(cli)).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2);
    // A location that cannot be used is refused by name, its password hidden.
    let refused = square("postgres://me:pw@host/db".as_ref()).unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("postgres://me:***@host/db"), "{stderr}");
    assert!(!stderr.contains(":pw@"), "{stderr}");
}
