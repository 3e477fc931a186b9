//! A full and a read-only filesystem, for real: a tiny tmpfs mounted for the test (root with
//! `CAP_SYS_ADMIN`, as on CI; elsewhere the test says it is skipped, and the `ulimit` test in
//! `reliability.rs` still covers a full disk). Errors name the path; nothing recorded is damaged.

use std::path::Path;
use std::process::Command;

use consist::{RunQuery, RunStatus, Tracker, Value};

use crate::support::Counter;

/// A tmpfs of `size` mounted on a temporary directory; unmounted when dropped.
struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    fn mount(size: &str) -> Option<TinyFs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            let why = out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_else(|e| e.to_string());
            eprintln!("\n*** SKIPPED: cannot mount a tmpfs here ({}) ***\n", why.trim());
            return None;
        }
        Some(TinyFs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, mode: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,{mode}")]).arg(self.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).output();
    }
}

fn tracker(root: &Path) -> consist::Result<Tracker> {
    Tracker::builder(root.join("runs")).db_path(root.join("provenance.duckdb")).open()
}

#[test]
fn a_full_filesystem_fails_the_step_naming_the_file_and_damages_nothing_recorded() {
    let Some(fs) = TinyFs::mount("1m") else { return };
    let ran = Counter::default();
    let small = |t: &Tracker| {
        t.step("small").code_version("1").outputs(["v"]).run(|_| {
            ran.hit();
            Ok(Value(vec![7u8; 1000]))
        })
    };
    // The database elsewhere: its background writes would race the step for the 1 MiB.
    let db = tempfile::tempdir().unwrap();
    let t = Tracker::builder(fs.path().join("runs")).db_path(db.path().join("provenance.duckdb")).open().unwrap();
    small(&t).unwrap();
    let err = t.step("big").code_version("1").outputs(["blob"]).run(|_| Ok(Value(vec![1u8; 2 << 20]))).unwrap_err();
    let text = format!("{err:#}");
    eprintln!("full: {text}");
    assert!(text.contains("blob") && text.contains("No space left"), "names the file and why: {text}");
    small(&t).unwrap();
    assert_eq!(ran.get(), 1, "the run recorded before is still a hit");
    t.flush().unwrap();
    let failed = t.find_runs(&RunQuery::default().status(RunStatus::Failed)).unwrap();
    assert_eq!(failed.len(), 1, "the failed step is recorded as failed");
}

#[test]
fn a_read_only_run_dir_is_an_error_naming_the_path_and_its_catalog_still_reads() {
    let Some(fs) = TinyFs::mount("64m") else { return };
    let t = tracker(fs.path()).unwrap();
    t.step("s").code_version("1").outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap();
    t.flush().unwrap();
    drop(t);
    fs.remount("ro");
    let out = crate::support::cli(&fs.path().join("provenance.duckdb"), &["runs", "--json"]);
    assert!(out.status.success(), "the CLI reads a catalog on a read-only filesystem");
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
    let t = tracker(fs.path()).unwrap();
    // A hit needs no new file to serve its value; its record cannot be written, and flush says so.
    assert_eq!(t.step("s").code_version("1").outputs(["v"]).run(|_| Ok(Value(2u8))).unwrap().value().unwrap().0, 1);
    let cold = t.step("s2").code_version("1").outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap_err();
    let text = format!("{cold:#}");
    assert!(text.contains("runs/.consist/snapshots/s2_") && text.contains("Read-only file system"), "{text}");
    let flushed = format!("{:#}", t.flush().unwrap_err());
    assert!(flushed.contains("Read-only file system") && flushed.contains("hits-"), "{flushed}");
    drop(t);
    fs.remount("rw");
}

/// A step that fails when its failure cannot be recorded either (its run dir turned read-only
/// meanwhile): the error returned is the step's own, the cause to fix; the recording's is a
/// warning.
#[test]
fn a_failure_that_cannot_be_recorded_still_returns_the_steps_own_error() {
    let Some(fs) = TinyFs::mount("64m") else { return };
    let db = tempfile::tempdir().unwrap();
    let t = Tracker::builder(fs.path().join("runs")).db_path(db.path().join("provenance.duckdb")).open().unwrap();
    let err = t
        .step("diverges")
        .code_version("1")
        .outputs(["v"])
        .run(|_| -> consist::StepResult<Value<u8>> {
            fs.remount("ro");
            Err("the model diverged at day 3".into())
        })
        .unwrap_err();
    fs.remount("rw");
    let text = format!("{err:#}");
    assert!(text.contains("the model diverged at day 3") && !text.contains("Read-only"), "{text}");
}

#[test]
fn a_catalog_made_read_only_mid_run_fails_no_run_and_a_rebuild_recovers_it() {
    let Some(fs) = TinyFs::mount("64m") else { return };
    let run_dir = tempfile::tempdir().unwrap();
    let db = fs.path().join("provenance.duckdb");
    let open = || Tracker::builder(run_dir.path()).db_path(&db).open().unwrap();
    let ran = Counter::default();
    let two = |t: &Tracker| {
        t.step("two").code_version("1").outputs(["v"]).run(|_| {
            ran.hit();
            Ok(Value(2u8))
        })
    };
    let t = open();
    t.step("one").code_version("1").outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap();
    t.flush().unwrap();
    // The database and its local state (queue, index) become read-only; the run dir does not.
    fs.remount("ro");
    let second = two(&t).expect("the run does not fail");
    assert_eq!(second.value().unwrap().0, 2);
    let flushed = format!("{:#}", t.flush().unwrap_err());
    assert!(flushed.contains(&db.display().to_string()) && flushed.contains("db rebuild --run-dir"), "{flushed}");
    drop(t);
    fs.remount("rw");
    // Its snapshot is the record: a rebuild brings it into the database, and it hits again.
    let rebuilt = crate::support::cli(&db, &["db", "rebuild", "--run-dir", run_dir.path().to_str().unwrap()]);
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    let t = open();
    let recorded = t.find_runs(&RunQuery::default()).unwrap();
    assert!(recorded.iter().any(|r| r.id == second.run.id && r.status == RunStatus::Completed), "{recorded:?}");
    assert_eq!(two(&t).unwrap().value().unwrap().0, 2);
    assert_eq!(ran.get(), 1, "a hit after the rebuild");
}
