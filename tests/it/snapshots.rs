//! The CLI's human output, snapshotted with insta against a database built by the iterative
//! example. Ids, hashes, times, durations and paths vary between runs and are redacted, and table
//! padding and borders are squeezed (column widths follow those values); the rest must match.
//! After an intended change: `INSTA_UPDATE=always cargo test --test it snapshots`, then review
//! the diff of `tests/it/snapshots/`.

use std::path::Path;
use std::process::Command;

use crate::examples::example;
use crate::process::worker;
use crate::support::{Workspace, cli};

/// stdout of a command that must succeed.
fn stdout(db: &Path, args: &[&str]) -> String {
    let out = cli(db, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The id of the run of `model` in `iteration` of the newest scenario.
fn run_id(db: &Path, model: &str, iteration: &str) -> String {
    let runs: serde_json::Value =
        serde_json::from_str(&stdout(db, &["runs", "--json", "--model", model, "--iteration", iteration])).unwrap();
    runs[0]["id"].as_str().unwrap().to_owned()
}

#[test]
fn human_output_matches_the_snapshots() {
    let ws = Workspace::new();
    example("iterative_workflow", ws.path(), &["--iterations", "2", "--extended", "3"]);
    let db = ws.path().join("runs/travel_demand/provenance.duckdb");
    let root = regex::escape(&ws.path().to_string_lossy());
    let filters: Vec<(&str, &str)> = vec![
        (root.as_str(), "[ws]"),
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]"),
        (r"\b([a-z][a-z0-9_]*?)_[0-9a-f]{16}\b", "${1}_[id]"),
        (r"\b[0-9a-f]{12,64}\b", "[hash]"),
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?", "[time]"),
        (r"\b\d+(\.\d+)? (ms|s)\b", "[duration]"),
        (r#""pid": \d+"#, r#""pid": [pid]"#),
        (r#""host": "[^"]*""#, r#""host": "[host]""#),
        (r#""rustc": "[^"]*""#, r#""rustc": "[rustc]""#),
        (r#""target": "[^"]*""#, r#""target": "[target]""#),
        (r"\d+ -> \d+ bytes", "[size] -> [size] bytes"),
        // Column widths follow the redacted values: squeeze cell padding (cells are left-aligned,
        // so padding always precedes a separator) and replace whole border lines.
        (r" {2,}┆", " ┆"),
        (r"(?m) {2,}│$", " │"),
        (r"(?m)^[┌└╞][─═┬┴╪┐┘╡]+$", "[rule]"),
    ];
    let mode_choice = run_id(&db, "mode_choice", "2");
    let earlier = run_id(&db, "mode_choice", "1");
    let baseline = stdout(&db, &["runs", "--json", "--model", "travel_demand_demo"]);
    let baseline: serde_json::Value = serde_json::from_str(&baseline).unwrap();
    let baseline = baseline[0]["id"].as_str().unwrap().to_owned();
    let missing = cli(&db, &["show", "nope"]);
    let ambiguous = cli(&db, &["show", "mode_choice_"]);
    let errors = format!(
        "$ consist show nope\nexit {:?}\n{}\n$ consist show mode_choice_\nexit {:?}\n{}",
        missing.status.code(),
        String::from_utf8_lossy(&missing.stderr),
        ambiguous.status.code(),
        String::from_utf8_lossy(&ambiguous.stderr),
    );

    insta::with_settings!({ filters => filters, omit_expression => true }, {
        insta::assert_snapshot!("runs", stdout(&db, &["runs", "--limit", "5"]));
        insta::assert_snapshot!("scenarios", stdout(&db, &["scenarios"]));
        insta::assert_snapshot!("summary", stdout(&db, &["summary"]));
        insta::assert_snapshot!("show", stdout(&db, &["show", &mode_choice]));
        insta::assert_snapshot!("artifacts", stdout(&db, &["artifacts", &mode_choice]));
        insta::assert_snapshot!("explain", stdout(&db, &["explain", &mode_choice]));
        insta::assert_snapshot!("diff", stdout(&db, &["diff", &earlier, &mode_choice]));
        insta::assert_snapshot!("lineage", stdout(&db, &["lineage", "mode_shares", "--depth", "2"]));
        insta::assert_snapshot!("validate", stdout(&db, &["validate"]));
        insta::assert_snapshot!("db_inspect", stdout(&db, &["db", "inspect"]));
        insta::assert_snapshot!("db_purge_dry_run", stdout(&db, &["db", "purge", &baseline, "--dry-run", "--delete-files"]));
        insta::assert_snapshot!("errors", errors);
    });
}

/// `command` run under a pseudo-terminal (util-linux `script`), with `env` set; its output.
fn on_a_terminal(command: &str, env: &[(&str, &str)]) -> Option<String> {
    let out = Command::new("script").args(["-qec", command, "/dev/null"]).envs(env.iter().copied()).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    let ws = Workspace::new();
    example("quickstart", ws.path(), &[]);
    let db = ws.path().join("provenance.duckdb");
    let piped = stdout(&db, &["runs"]);
    assert!(piped.contains("completed") && !piped.contains('\u{1b}'), "no escape codes in a pipe: {piped:?}");
    let command = format!("{} cli runs --db-path {}", worker(), db.display());
    let Some(tty) = on_a_terminal(&command, &[]) else {
        eprintln!("util-linux `script` is not installed: the terminal half of this test cannot run here");
        return;
    };
    assert!(tty.contains("\u{1b}[38;5;10m completed"), "status in green on a terminal: {tty:?}");
    let no_color = on_a_terminal(&command, &[("NO_COLOR", "1")]).unwrap();
    assert!(no_color.contains("completed") && !no_color.contains('\u{1b}'), "NO_COLOR wins: {no_color:?}");
}

#[test]
fn a_reader_that_stops_early_ends_the_cli_quietly() {
    use std::io::Read;
    let ws = Workspace::new();
    example("quickstart", ws.path(), &[]);
    let db = ws.path().join("provenance.duckdb");
    // Megabytes of table, far more than a pipe buffers; like `head -c 100`, we stop reading.
    let mut child = Command::new(worker())
        .args(["cli", "query", "SELECT range AS n FROM range(200000)", "--db-path"])
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "no panic on the closed pipe: {stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "ended by SIGPIPE, as `seq 1e9 | head` does: {status:?}");
}
