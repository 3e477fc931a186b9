//! What built the code: every run records rustc, target, profile and the `Cargo.lock` hash;
//! recorded, not hashed, unless the tracker asks for it; `consist diff` shows a change.

use consist::{StepResult, Toolchain, Tracker, Value, step};

use crate::support::{Counter, Workspace};

#[step(outputs = ["y"])]
fn triple(x: i64) -> StepResult<i64> {
    Ok(x * 3)
}

fn recorded(run: &consist::Run) -> Toolchain {
    serde_json::from_value(run.meta["toolchain"].clone()).expect("meta.toolchain is a Toolchain")
}

#[test]
fn a_step_records_the_compiler_profile_target_and_lock_file_it_was_built_with() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let run = tracker.run(triple::step(2)).unwrap();
    let toolchain = recorded(&run.run);
    assert!(toolchain.rustc.starts_with("rustc 1."), "{toolchain:?}");
    let lock = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    assert_eq!(toolchain.cargo_lock.as_deref(), Some(blake3::hash(&lock).to_hex().as_str()));
    assert_eq!(toolchain.profile, if cfg!(debug_assertions) { "debug" } else { "release" });
    assert!(toolchain.target.starts_with(std::env::consts::ARCH), "{toolchain:?}");
    assert_eq!(toolchain, triple::toolchain());
    assert_eq!(toolchain, consist::toolchain!(), "the macro captures the same in this crate");

    // Builder-API steps get the tracker's: captured when given, else what the process knows.
    let plain = tracker.step("plain").code_version("1").outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap();
    assert_eq!(recorded(&plain.run).rustc, "unknown");
    let given = Tracker::builder(ws.run_dir()).db_path(ws.db()).toolchain(consist::toolchain!()).open().unwrap();
    let plain = given.step("plain").code_version("2").outputs(["v"]).run(|_| Ok(Value(1u8))).unwrap();
    assert_eq!(recorded(&plain.run), toolchain);
}

#[test]
fn a_toolchain_change_invalidates_only_when_the_tracker_hashes_it() {
    let ws = Workspace::new();
    let ran = Counter::default();
    let old = Toolchain::captured("rustc 1.80.0 (old)", "lock-a", true);
    let new = Toolchain::captured("rustc 1.91.0 (new)", "lock-a", true);
    let run = |toolchain: &Toolchain, hashed: bool| {
        let tracker = Tracker::builder(ws.run_dir())
            .db_path(ws.db())
            .toolchain(toolchain.clone())
            .toolchain_in_signature(hashed)
            .open()
            .unwrap();
        let result = tracker
            .step("s")
            .code_version("1")
            .outputs(["v"])
            .run(|_| {
                ran.hit();
                Ok(Value(1u8))
            })
            .unwrap();
        result.run
    };
    let first = run(&old, false);
    let second = run(&new, false);
    assert_eq!(ran.get(), 1, "recorded, not hashed: a compiler upgrade is still a hit");
    assert_eq!(recorded(&second), new, "the hit records the toolchain that asked");
    run(&old, true);
    run(&old, true);
    assert_eq!(ran.get(), 2, "hashed: a new identity once, then hits");
    let upgraded = run(&new, true);
    assert_eq!(ran.get(), 3, "hashed: the upgrade re-runs the step");
    let why = consist::MissExplanation::from_meta(&upgraded.meta).unwrap();
    assert_eq!(why.code_items_changed, ["toolchain rustc"], "the miss names what changed: {why:?}");

    // `consist diff` names what changed.
    drop(first);
    let runs = consist::Catalog::duckdb(ws.db(), std::time::Duration::from_secs(5));
    let _ = runs.sync();
    let ids: Vec<String> =
        runs.find_runs(&consist::RunQuery::default().model("s")).unwrap().into_iter().rev().map(|r| r.id).collect();
    let out = crate::support::cli(&ws.db(), &["diff", &ids[0], &ids[ids.len() - 1]]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("toolchain:") && text.contains("~ rustc: \"rustc 1.80.0 (old)\" -> \"rustc 1.91.0 (new)\""),
        "{text}"
    );
}

#[test]
fn consist_steps_compares_a_step_with_its_own_code_when_the_toolchain_is_hashed_too() {
    let ws = Workspace::new();
    let tracker = Tracker::builder(ws.run_dir())
        .db_path(ws.db())
        .toolchain(consist::toolchain!())
        .toolchain_in_signature(true)
        .open()
        .unwrap();
    let run = tracker.run(triple::step(4)).unwrap();
    assert_ne!(run.run.code_hash, triple::code_hash(), "the toolchain is mixed into the signature's code hash");
    tracker.flush().unwrap();
    let report = consist::admin::step_report(tracker.catalog()).unwrap();
    let triple = report.iter().find(|s| s.name == "triple").unwrap();
    assert_eq!(triple.changed, Some(false), "{triple:?}");
    assert!(triple.changed_items.is_empty(), "{triple:?}");
}
