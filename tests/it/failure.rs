//! Failed steps and bad input: recorded honestly, never reused, reported with a fix.

use consist::{Error, RunQuery, RunStatus, Tracker, Value};

use crate::support::{Counter, Workspace};

fn flaky(tracker: &Tracker, fail: bool, panic: bool, runs: &Counter) -> consist::Result<consist::RunResult<Value<u8>>> {
    tracker.step("flaky").code_version("1").outputs(["x"]).run(|_| {
        runs.hit();
        if panic {
            panic!("boom in the model");
        }
        if fail {
            return Err("solver diverged".into());
        }
        Ok(Value(1))
    })
}

#[test]
fn failed_run_is_recorded_and_never_reused() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let runs = Counter::default();
    let err = flaky(&tracker, true, false, &runs).unwrap_err();
    assert!(matches!(&err, Error::StepFailed { message, .. } if message == "solver diverged"), "{err}");
    // same signature again: must execute (a failure is not a cache entry), and now succeeds
    let ok = flaky(&tracker, false, false, &runs).unwrap();
    assert!(!ok.cache_hit());
    assert_eq!(runs.get(), 2);

    let failed = tracker.find_runs(&RunQuery { status: Some(RunStatus::Failed), ..Default::default() }).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].meta["error"].as_str().unwrap(), err.to_string());
}

#[test]
fn panicking_step_is_recorded_as_failed() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let runs = Counter::default();
    let err = flaky(&tracker, false, true, &runs).unwrap_err().to_string();
    assert!(err.contains("panicked at tests/it/failure.rs:") && err.contains(": boom in the model"), "{err}");
    assert!(!flaky(&tracker, false, false, &runs).unwrap().cache_hit());
    tracker.flush().unwrap();
    assert_eq!(ws.scalar::<i64>("SELECT count(*) FROM run WHERE status = 'failed'"), 1);
}

#[test]
fn missing_input_file_names_the_key_and_path() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let err = ws
        .tracker()
        .step("clean")
        .code_version("1")
        .input("raw", ws.path().join("nope.csv"))
        .run(|_| {
            runs.hit();
            Ok(())
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("`raw`") && err.contains("nope.csv") && err.contains("does not exist"), "{err}");
    assert_eq!(runs.get(), 0);
}

#[test]
fn unusable_run_dir_is_a_clear_error() {
    let ws = Workspace::new();
    let file = ws.write("not-a-dir", "x");
    let err = Tracker::builder(file.join("runs")).open().expect_err("must fail").to_string();
    assert!(err.contains("not-a-dir") && err.contains("writable directory"), "{err}");
}

#[test]
fn a_file_that_is_not_duckdb_is_refused_and_left_untouched() {
    let ws = Workspace::new();
    let bogus = ws.write("notes.duckdb", "these are my notes, not a database\n");
    let err = Tracker::builder(ws.run_dir()).db_path(&bogus).open().expect_err("must fail");
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains("notes.duckdb"), "{err}");
    assert_eq!(std::fs::read_to_string(&bogus).unwrap(), "these are my notes, not a database\n");
}

#[test]
fn nan_config_is_rejected_before_running() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let err = ws
        .tracker()
        .step("model")
        .code_version("1")
        .config(&serde_json::json!({"a": 1}))
        .config(&vec![1.0, f64::NAN])
        .run(|_| {
            runs.hit();
            Ok(())
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("$.1") && err.contains("NaN"), "{err}");
    assert_eq!(runs.get(), 0);
}

#[test]
fn declared_but_missing_output_fails_the_run() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let err = tracker
        .step("partial")
        .code_version("1")
        .outputs(["a", "b"])
        .run(|ctx| {
            ctx.log_value("a", &1u8)?;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(&err, Error::OutputMissing { key, produced, .. } if key == "b" && produced == "a"), "{err}");
    let failed = tracker.find_runs(&RunQuery { status: Some(RunStatus::Failed), ..Default::default() }).unwrap();
    assert_eq!(failed.len(), 1, "the run is recorded as failed");
}

#[test]
fn output_arity_and_duplicates_are_checked_before_running() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let runs = Counter::default();
    let arity = tracker
        .step("two")
        .code_version("1")
        .outputs(["only_one"])
        .run(|_| {
            runs.hit();
            Ok((Value(1u8), Value(2u8)))
        })
        .unwrap_err();
    assert!(matches!(arity, Error::OutputArity { expected: 2, declared: 1, .. }), "{arity}");
    let dup = tracker
        .step("dup")
        .code_version("1")
        .outputs(["x", "x"])
        .run(|_| {
            runs.hit();
            Ok((Value(1u8), Value(2u8)))
        })
        .unwrap_err()
        .to_string();
    assert!(dup.contains("`x` is listed twice"), "{dup}");
    let unversioned = tracker.step("nov").run(|_| Ok(())).unwrap_err().to_string();
    assert!(unversioned.contains(".code_version"), "{unversioned}");
    assert_eq!(runs.get(), 0);
}

#[test]
fn unknown_input_key_lists_the_known_ones() {
    let ws = Workspace::new();
    let raw = ws.write("raw.csv", "a\n");
    let err = ws
        .tracker()
        .step("reader")
        .code_version("1")
        .input("raw", &raw)
        .run(|ctx| {
            ctx.input("typo")?;
            Ok(())
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("no input `typo`; known inputs: [raw]"), "{err}");
}

/// A step with one float argument, for config errors.
#[consist::step(outputs = ["rate"])]
fn recovery_rate(gamma: f64) -> f64 {
    gamma * 2.0
}

#[test]
fn a_nan_step_argument_names_its_field() {
    let ws = Workspace::new();
    let err = ws.tracker().run(recovery_rate::step(f64::NAN)).unwrap_err().to_string();
    assert!(err.contains("at `$.gamma`"), "{err}");
}

#[derive(Debug)]
struct Diverged {
    day: i32,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "solver diverged on day {}", self.day)
    }
}

impl std::error::Error for Diverged {}

#[test]
fn a_failed_step_names_its_scenario_and_iteration_and_keeps_the_error() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let sc = tracker.scenario("beta=0.3").start().unwrap();
    let err = sc
        .step("day")
        .code_version("1")
        .iteration(3)
        .run(|_| -> consist::StepResult<()> { Err(Box::new(Diverged { day: 3 })) })
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("(scenario `beta=0.3`, iteration 3): solver diverged on day 3"), "{text}");
    let source = std::error::Error::source(&err).expect("the body's error is kept");
    assert_eq!(source.downcast_ref::<Diverged>().map(|d| d.day), Some(3));
    // `main() -> Result<()>` prints the Debug form: the message and its causes, not a struct dump.
    let debug = format!("{err:?}");
    assert!(debug.starts_with(&text) && debug.contains("caused by: solver diverged on day 3"), "{debug}");
}

#[test]
fn scenario_names_may_hold_any_printable_text() {
    let ws = Workspace::new();
    let runs = Counter::default();
    let run = |tracker: &Tracker, name: &str| {
        let sc = tracker.scenario(name).start().unwrap();
        let r = sc
            .step("infect")
            .code_version("1")
            .outputs(["n"])
            .run(|_| {
                runs.hit();
                Ok(Value(7u8))
            })
            .unwrap();
        let header = sc.finish().unwrap();
        (header, r)
    };
    for name in ["beta=0.3", "day 3 / SIR", "../../escape"] {
        let (header, first) = run(&ws.tracker(), name);
        assert_eq!(header.model_name, name, "the name is recorded as given");
        for id in [&header.id, &first.run.id] {
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)), "file-safe id: {id}");
        }
        let (_, again) = run(&ws.tracker(), name);
        assert!(again.cache_hit(), "{name}: a re-run hits");
    }
    assert_eq!(runs.get(), 1, "same step, config and inputs in every scenario: one execution");
    let snapshots = std::fs::read_dir(ws.run_dir().join(".consist/snapshots")).unwrap().count();
    assert!(snapshots >= 12, "every run has a snapshot inside the run dir: {snapshots}");
    assert!(!ws.path().join("escape").exists() && !ws.run_dir().join("escape").exists());

    for bad in ["", "line\nbreak"] {
        let err = ws.tracker().scenario(bad).start().unwrap_err().to_string();
        assert!(err.starts_with("scenario name"), "{err}");
    }
}

#[test]
fn a_database_in_a_missing_directory_is_refused_before_anything_is_created() {
    let ws = Workspace::new();
    let run_dir = ws.path().join("runs");
    let err = Tracker::builder(&run_dir).db_path(ws.path().join("no/such/dir/provenance.duckdb")).open().unwrap_err();
    assert!(matches!(err, Error::DatabaseDir { .. }), "{err}");
    assert!(err.to_string().contains("create the directory"), "{err}");
    assert!(!run_dir.exists(), "no run directory left behind");
}

/// `consist-test-worker as-a-user <run_dir> <mistake>` with `env` set (and RUST_BACKTRACE,
/// CONSIST_LOG and RUST_LOG unset unless given): (stdout, stderr).
fn as_a_user(mistake: &str, env: &[(&str, &str)]) -> (String, String) {
    let ws = Workspace::new();
    let mut cmd = std::process::Command::new(crate::process::worker());
    cmd.arg("as-a-user").arg(ws.run_dir()).arg(mistake);
    for var in ["RUST_BACKTRACE", "CONSIST_LOG", "RUST_LOG", "CONSIST_DB"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    let (stdout, stderr) = (text(out.stdout), text(out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn a_misspelt_scenario_key_is_named_on_stderr_without_a_subscriber_unless_silenced() {
    let (stdout, stderr) = as_a_user("typo", &[]);
    assert!(stdout.contains("got 0"), "{stdout}");
    assert!(stderr.contains(r#"scenario.get("stat") found nothing; did you mean "state"?"#), "{stderr}");
    let (_, quiet) = as_a_user("typo", &[("CONSIST_LOG", "off")]);
    assert!(!quiet.contains("did you mean"), "{quiet}");
}

#[test]
fn a_panicking_step_is_reported_once_in_its_error_with_where_it_panicked() {
    let (stdout, stderr) = as_a_user("panic", &[]);
    assert!(stdout.contains("step `explode` failed in run `explode_"), "{stdout}");
    assert!(stdout.contains("panicked at tests/worker/main.rs:"), "{stdout}");
    assert!(stdout.contains("the model diverged"), "{stdout}");
    assert!(!stderr.contains("panicked"), "Rust's own panic report is not printed too:\n{stderr}");
    // Asked for backtraces, the user gets Rust's report as well.
    let (_, stderr) = as_a_user("panic", &[("RUST_BACKTRACE", "1")]);
    assert!(stderr.contains("the model diverged") && stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn question_mark_turns_polars_and_step_errors_into_consist_errors() {
    use consist::polars::prelude::DataFrame;
    fn polars_in_user_code() -> consist::Result<usize> {
        Ok(DataFrame::empty().column("population")?.len())
    }
    fn a_step_called_directly() -> consist::Result<u8> {
        let result: consist::StepResult<u8> = Err("the solver did not converge".into());
        Ok(result?)
    }
    let polars = polars_in_user_code().unwrap_err();
    assert!(matches!(polars, Error::Polars(_)) && polars.to_string().contains("population"), "{polars}");
    let step = a_step_called_directly().unwrap_err();
    assert!(matches!(step, Error::Other(_)), "{step:?}");
    assert_eq!(step.to_string(), "the solver did not converge");
}

#[test]
fn the_catalog_is_given_as_a_path_or_a_string() {
    let ws = Workspace::new();
    let by_path = Tracker::builder(ws.run_dir()).catalog(ws.db().as_path()).open().unwrap();
    assert_eq!(by_path.db_path(), ws.db().as_path());
    drop(by_path);
    let by_buf = Tracker::builder(ws.run_dir()).catalog(ws.db()).open().unwrap();
    let by_text = Tracker::builder(ws.run_dir()).catalog(ws.db().to_str().unwrap()).open().unwrap();
    assert_eq!(by_buf.db_path(), by_text.db_path());
}

/// Hooks see runs start, complete (hits included) and fail; one that fails or panics changes
/// nothing recorded and not the step's result.
#[test]
fn hooks_see_every_run_and_a_failing_or_panicking_hook_changes_nothing() {
    use std::sync::{Arc, Mutex};
    let ws = Workspace::new();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = |moment: &'static str| {
        let seen = seen.clone();
        move |record: &consist::RunRecord| -> consist::StepResult<()> {
            let hit = if record.run.is_cache_hit() { " (hit)" } else { "" };
            seen.lock().unwrap().push(format!("{moment} {} {}{hit}", record.run.model_name, record.run.status));
            Ok(())
        }
    };
    let tracker = Tracker::builder(ws.run_dir())
        .db_path(ws.db())
        .on_run_start(log("start"))
        .on_run_complete(log("complete"))
        .on_run_failed(log("failed"))
        .on_run_complete(|_| Err("the notification server is down".into()))
        .on_run_failed(|_| panic!("a hook bug"))
        .open()
        .unwrap();
    let step = |fail: bool| {
        tracker.step("s").code_version("1").config(&fail).outputs(["v"]).run(move |_| {
            if fail {
                return Err("diverged".into());
            }
            Ok(Value(3u8))
        })
    };
    assert_eq!(*step(false).unwrap().value().unwrap(), Value(3));
    assert!(step(false).unwrap().cache_hit());
    let failed = step(true).unwrap_err();
    assert!(failed.to_string().contains("diverged"), "the step's own error, not the hook's: {failed}");
    tracker.flush().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["start s running", "complete s completed", "complete s completed (hit)", "start s running", "failed s failed"]
    );
    let runs = tracker.find_runs(&RunQuery::default()).unwrap();
    let statuses: Vec<RunStatus> = runs.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == RunStatus::Completed).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == RunStatus::Failed).count(), 1, "{statuses:?}");
}
