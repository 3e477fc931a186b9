//! Directories as artifacts: a tree's identity, a cache hit that checks every file, a consumer
//! that gets the directory, and raw directory inputs.

use std::path::Path;

use consist::prelude::*;
use consist::{Dir, Validation};

use crate::support::{Counter, Workspace};

thread_local! {
    static WROTE: Counter = Counter::default();
}

/// Writes a small "store": two files, one in a subdirectory.
#[consist::step(outputs = ["store"])]
fn write_store(n: u64, ctx: &mut StepContext<'_>) -> StepResult<Dir> {
    WROTE.with(Counter::hit);
    let dir = ctx.output_dir()?.join("store");
    std::fs::create_dir_all(dir.join("sub"))?;
    std::fs::write(dir.join("a.txt"), n.to_string())?;
    std::fs::write(dir.join("sub/b.txt"), (n * 2).to_string())?;
    Ok(Dir(dir))
}

/// Sums the numbers in every file of a directory.
#[consist::step(outputs = ["total"])]
fn total_of(store: &Path) -> StepResult<u64> {
    let mut total = 0;
    for entry in walk(store) {
        total += std::fs::read_to_string(entry)?.trim().parse::<u64>()?;
    }
    Ok(total)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn a_directory_output_is_hashed_as_a_tree_checked_file_by_file_and_handed_to_consumers() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let chain = |tracker: &Tracker| {
        let store = tracker.run(write_store::step(5)).unwrap();
        let total = tracker.run(total_of::step(store.output("store").unwrap())).unwrap();
        (store, total)
    };
    let (store, total) = chain(&tracker);
    assert_eq!(*total.value().unwrap(), 15);
    let artifact = store.output("store").unwrap();
    assert_eq!(artifact.driver, consist::Driver::Directory);
    assert_eq!((artifact.meta["files"].as_u64(), artifact.meta["bytes"].as_u64()), (Some(2), Some(3)));
    let dir = store.value().unwrap().0.clone();
    assert!(dir.join("sub/b.txt").is_file(), "the step gets its directory back: {dir:?}");
    let (again, total_again) = chain(&tracker);
    assert!(again.cache_hit() && total_again.cache_hit());
    assert_eq!(again.value().unwrap(), store.value().unwrap());
    assert_eq!(WROTE.with(Counter::get), 1);

    // One file changed inside the directory: the hit is refused and the producer executes again
    // (its output is the same tree, so the consumer, linked to its signature, still hits).
    std::fs::write(dir.join("sub/b.txt"), "11").unwrap();
    let (changed, total_after) = chain(&tracker);
    assert!(!changed.cache_hit(), "a file changed inside a directory artifact is never a hit");
    assert_eq!(WROTE.with(Counter::get), 2);
    assert_eq!(*total_after.value().unwrap(), 15, "a fresh directory, not the damaged one");

    // Eager validation reads every file of the tree again: an intact tree still hits.
    let eager = Tracker::builder(ws.run_dir()).db_path(ws.db()).validation(Validation::Eager).open().unwrap();
    let (eager_hit, _) = chain(&eager);
    assert!(eager_hit.cache_hit());
}

#[test]
fn a_raw_directory_input_changes_the_signature_when_any_file_in_it_does() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let data = ws.path().join("data");
    std::fs::create_dir_all(data.join("nested")).unwrap();
    std::fs::write(data.join("x.txt"), "1").unwrap();
    std::fs::write(data.join("nested/y.txt"), "2").unwrap();
    let read = |tracker: &Tracker| tracker.run(total_of::step(data.as_path())).unwrap();
    let first = read(&tracker);
    assert_eq!(*first.value().unwrap(), 3);
    assert!(read(&tracker).cache_hit());
    // Rewritten with the same bytes: same identity, a hit.
    std::fs::write(data.join("nested/y.txt"), "2").unwrap();
    assert!(read(&tracker).cache_hit(), "same bytes, same tree");
    // One nested file's bytes, a new file, a removed file: each a miss.
    std::fs::write(data.join("nested/y.txt"), "3").unwrap();
    assert!(!read(&tracker).cache_hit());
    std::fs::write(data.join("nested/z.txt"), "0").unwrap();
    assert!(!read(&tracker).cache_hit());
    std::fs::remove_file(data.join("x.txt")).unwrap();
    let last = read(&tracker);
    assert!(!last.cache_hit());
    assert_eq!(*last.value().unwrap(), 3);
}

#[cfg(unix)]
#[test]
fn a_directory_with_a_symlink_or_a_file_is_refused_by_name() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let linked = tracker
        .step("linked")
        .code_version("1")
        .outputs(["tree"])
        .run(|ctx| {
            let dir = ctx.output_dir()?.join("tree");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("real.txt"), "x")?;
            std::os::unix::fs::symlink(dir.join("real.txt"), dir.join("alias.txt"))?;
            ctx.log_dir("tree", &dir)?;
            Ok(())
        })
        .unwrap_err()
        .to_string();
    assert!(linked.contains("alias.txt is a symlink") && linked.contains("regular files only"), "{linked}");
    let file = ws.write("plain.txt", "x");
    let not_dir = tracker
        .step("not_dir")
        .code_version("1")
        .outputs(["tree"])
        .run(|ctx| Ok(ctx.log_dir("tree", &file).map(drop)?))
        .unwrap_err()
        .to_string();
    assert!(not_dir.contains("not a directory") && not_dir.contains("log_file"), "{not_dir}");
}
