//! The examples, run as a new user runs them: their output, their cache behaviour, their files.

use std::path::Path;
use std::process::Command;

use crate::process::{stdout_of, worker};
use crate::support::{Workspace, built_binary};

/// The example `name`, to be run in `dir` with `args`.
pub fn example_command(name: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(built_binary(&format!("examples/{name}")));
    cmd.args(args).current_dir(dir);
    cmd
}

/// Run the example `name` in `dir`; it must succeed. Returns its stdout.
pub fn example(name: &str, dir: &Path, args: &[&str]) -> String {
    stdout_of(example_command(name, dir, args).output().unwrap())
}

fn quickstart(dir: &Path) -> String {
    example("quickstart", dir, &[])
}

#[test]
fn quickstart_example_executes_once_then_hits() {
    let ws = Workspace::new();
    let first = quickstart(ws.path());
    assert!(first.contains("Executing with value=5"), "{first}");
    assert!(first.contains(r#"{"squared":25} cache hit: false"#), "{first}");
    let second = quickstart(ws.path());
    assert!(!second.contains("Executing"), "{second}");
    assert!(second.contains(r#"{"squared":25} cache hit: true"#), "{second}");
    assert!(ws.path().join("provenance.duckdb").exists());
    let cli = Command::new(worker())
        .args(["cli", "runs", "--limit", "5", "--db-path"])
        .arg(ws.path().join("provenance.duckdb"))
        .output()
        .unwrap();
    let table = stdout_of(cli);
    assert_eq!(table.matches("square_").count(), 2, "{table}");
}

fn first_workflow(dir: &Path, args: &[&str]) -> String {
    example("first_workflow", dir, args)
}

#[test]
fn first_workflow_example_caches_and_invalidates_downstream() {
    let ws = Workspace::new();
    let executions = |out: &str| out.matches("(executing ").count();
    let first = first_workflow(ws.path(), &[]);
    assert_eq!(executions(&first), 2, "{first}");
    assert!(first.contains(r#"Result: {"mean": 35.0, "count": 4}"#), "{first}");
    assert!(ws.path().join("data/raw.csv").exists(), "the example creates its input");

    let second = first_workflow(ws.path(), &[]);
    assert_eq!(executions(&second), 0, "an unchanged run executes nothing: {second}");
    assert!(second.contains("Clean: completed (cache hit)") && second.contains("Summarize: completed (cache hit)"));
    assert!(second.contains(r#"Result: {"mean": 35.0, "count": 4}"#), "{second}");

    let changed = first_workflow(ws.path(), &["--threshold", "25"]);
    assert_eq!(executions(&changed), 2, "a config change re-runs the step and everything downstream: {changed}");
    assert!(changed.contains(r#"Result: {"mean": 40.0, "count": 3}"#), "{changed}");
    assert!(changed.contains("input cleaned <- clean_data_"), "lineage names the producing run: {changed}");
}

fn iterative(dir: &Path, args: &[&str]) -> String {
    example("iterative_workflow", dir, args)
}

#[test]
fn iterative_workflow_extends_incrementally_and_answers_queries() {
    let ws = Workspace::new();
    let out = iterative(ws.path(), &["--iterations", "4", "--extended", "6"]);
    assert!(out.contains("iterations 0-3: 24 steps were cache hits, 0 executed"), "{out}");
    assert!(out.contains("iterations 4-5: 0 steps were cache hits, 12 executed"), "{out}");
    let shares = out.lines().filter(|l| l.starts_with("│ ") && l.contains(" ┆ 0.")).count();
    assert_eq!(shares, 4, "one mode-share row per baseline iteration: {out}");
    let summary = ws.path().join("runs/travel_demand/outputs");
    let files: Vec<String> =
        walk(&summary).into_iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    for name in
        ["mode_shares.png", "iteration_totals.png", "mode_shares.csv", "iteration_summaries.csv", "pmt_totals.csv"]
    {
        assert!(files.iter().any(|f| f == name), "{name} written: {files:?}");
    }
    assert!(out.contains("materialized into runs/travel_demand/outputs/travel_demand_demo_extended_"), "{out}");
    assert!(out.contains("└── traffic_simulation run=traffic_simulation_"), "lineage printed: {out}");
    assert!(out.contains("12 runs in all"), "4 iterations x 3 steps read zones: {out}");

    // With logging on, every hit and miss is reported, misses with their reason.
    let logged = example_command("iterative_workflow", ws.path(), &["--iterations", "2", "--extended", "3"])
        .env("CONSIST_LOG", "consist=debug")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&logged.stderr);
    assert!(log.contains("cache hit step=init"), "{log}");
    assert!(log.contains("cache miss step=logsums") && log.contains("reason=inputs changed: skims"), "{log}");

    // A second run with --keep reuses everything, including the summaries.
    iterative(ws.path(), &["--iterations", "4", "--extended", "6"]);
    let again = iterative(ws.path(), &["--iterations", "4", "--extended", "6", "--keep"]);
    assert!(again.contains("iterations 4-5: 12 steps were cache hits, 0 executed"), "{again}");

    // A deleted plot (a hand-logged output) makes its step execute again instead of returning a
    // path that is gone (it used to abort the example while copying the missing file).
    let plots: Vec<_> = walk(&summary).into_iter().filter(|p| p.ends_with("summary/mode_shares.png")).collect();
    assert!(!plots.is_empty());
    for plot in &plots {
        std::fs::remove_file(plot).unwrap();
    }
    let repaired = iterative(ws.path(), &["--iterations", "4", "--extended", "6", "--keep"]);
    assert!(repaired.contains("summaries (reads every iteration's trips): executed"), "{repaired}");
    assert!(walk(&summary).iter().any(|p| p.ends_with("summary/mode_shares.png")), "the plot is back");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
