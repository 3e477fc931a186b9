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

/// One frame per year under one key.
#[consist::step(outputs = ["by_year"])]
fn by_year(years: Vec<i32>) -> StepResult<consist::FrameSet> {
    WROTE.with(Counter::hit);
    let mut set = consist::FrameSet::new();
    for year in years {
        let frame = consist::polars::df!("zone" => [1i64, 2, 3], "trips" => [year as f64, 2.0 * year as f64, 0.5])?;
        set.insert(year.to_string(), frame);
    }
    Ok(set)
}

/// Reads the set as one frame.
#[consist::step(outputs = ["rows"])]
fn rows_of(by_year: &Path) -> StepResult<usize> {
    Ok(consist::FrameSet::read(by_year)?.concat("year")?.height())
}

#[test]
fn an_output_set_holds_one_frame_per_member_and_loads_as_one() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let chain = |tracker: &Tracker| {
        let set = tracker.run(by_year::step(vec![2020, 2025, 2030])).unwrap();
        let rows = tracker.run(rows_of::step(set.output("by_year").unwrap())).unwrap();
        (set, rows)
    };
    let (set, rows) = chain(&tracker);
    assert_eq!(*rows.value().unwrap(), 9);
    let artifact = set.output("by_year").unwrap().clone();
    assert_eq!((artifact.meta["frame_set"].as_u64(), artifact.meta["rows"].as_u64()), (Some(3), Some(9)));
    let frames = set.value().unwrap();
    assert_eq!(frames.names().collect::<Vec<_>>(), ["2020", "2025", "2030"]);
    let all = frames.concat("year").unwrap();
    assert_eq!(all.column("year").unwrap().str().unwrap().get(8), Some("2030"));
    let files: Vec<String> =
        std::fs::read_dir(&artifact.path).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(files.len(), 4, "three members and the manifest: {files:?}");

    let (hit, rows_hit) = chain(&tracker);
    assert!(hit.cache_hit() && rows_hit.cache_hit());
    assert_eq!(hit.value().unwrap(), frames, "a hit gives the set back, member by member");
    let before = WROTE.with(Counter::get);

    // One member rewritten: the set is not a hit, and a reader of the damaged copy is told.
    let member = artifact.path.join("2025.parquet");
    let mut other = consist::polars::df!("zone" => [9i64], "trips" => [0.0]).unwrap();
    consist::polars::prelude::ParquetWriter::new(std::fs::File::create(&member).unwrap()).finish(&mut other).unwrap();
    let err = consist::FrameSet::read(&artifact.path).unwrap_err().to_string();
    assert!(err.contains("2025.parquet") && err.contains("bytes changed"), "{err}");
    let (again, _) = chain(&tracker);
    assert!(!again.cache_hit(), "a changed member is never a hit");
    assert_eq!(WROTE.with(Counter::get), before + 1);
}

/// A directory output goes to a remote as its listing and its files; a remote gc that keeps its
/// run keeps all of them (the listing names the files); another host's hit downloads the tree.
#[test]
fn a_directory_output_travels_through_a_remote_and_remote_gc_keeps_its_files() {
    let ws = Workspace::new();
    let db = ws.path().join("provenance.duckdb");
    let bucket = ws.path().join("bucket");
    let remote = format!("file://{}", bucket.display());
    let first = Tracker::builder(ws.path().join("a")).db_path(&db).remote(&remote).open().unwrap();
    let made = first.run(write_store::step(7)).unwrap();
    first.flush().unwrap();
    let objects = || walk(&bucket).len();
    assert_eq!(objects(), 3, "the listing and two files");

    let catalog = consist::Catalog::duckdb(&db, std::time::Duration::from_secs(5));
    let kept = consist::Remote::open(&remote, false)
        .unwrap()
        .gc(&catalog, &consist::admin::KeepRuns::All, std::time::Duration::ZERO, false)
        .unwrap();
    assert_eq!((kept.kept, kept.removed), (3, 0), "{kept:?}");
    std::fs::remove_dir_all(ws.path().join("a")).unwrap();

    let before = WROTE.with(Counter::get);
    let second = Tracker::builder(ws.path().join("b")).db_path(&db).remote(&remote).open().unwrap();
    let hit = second.run(write_store::step(7)).unwrap();
    assert!(hit.cache_hit(), "served from the remote");
    assert_eq!(WROTE.with(Counter::get), before);
    let dir = hit.value().unwrap().0.clone();
    assert!(dir.starts_with(ws.path().join("b")), "downloaded into this host's run dir: {dir:?}");
    assert_eq!(std::fs::read_to_string(dir.join("sub/b.txt")).unwrap(), "14");
    assert_eq!(hit.output("store").unwrap().hash, made.output("store").unwrap().hash);

    // `remote pull` brings the tree to a third host, which then hits without the remote.
    let remote_handle = consist::Remote::open(&remote, true).unwrap();
    let items = catalog.pullable(&remote_handle, &consist::admin::ExportScope::All, &ws.path().join("c")).unwrap();
    assert_eq!(items.len(), 2, "the tree's two files: {items:?}");
    let pulled = remote_handle.pull(&items, &|_| {});
    assert_eq!(pulled.moved, 2, "{pulled:?}");
    let offline = Tracker::builder(ws.path().join("c")).db_path(&db).open().unwrap();
    assert!(offline.run(write_store::step(7)).unwrap().cache_hit(), "the pulled tree serves the hit");
    assert_eq!(WROTE.with(Counter::get), before);
}

/// A corrupt file of a tree in the bucket: the step executes again once, its object is replaced
/// (not the tree's listing, which is whole), and the next host hits.
#[test]
fn a_corrupt_file_of_a_tree_in_the_bucket_is_replaced_by_the_next_upload() {
    let ws = Workspace::new();
    let db = ws.path().join("provenance.duckdb");
    let bucket = ws.path().join("bucket");
    let remote = format!("file://{}", bucket.display());
    let open = |host: &str| Tracker::builder(ws.path().join(host)).db_path(&db).remote(&remote).open().unwrap();
    let made = open("a").run(write_store::step(8)).unwrap();
    let listing = made.output("store").unwrap().hash.clone().unwrap();
    std::fs::remove_dir_all(ws.path().join("a")).unwrap();
    let member = blake3::hash(b"16").to_hex().to_string(); // sub/b.txt
    let object = bucket.join("blake3").join(&member[..2]).join(&member);
    assert!(object.is_file(), "{}", object.display());
    std::fs::write(&object, b"61").unwrap();
    let before = WROTE.with(Counter::get);
    assert!(!open("b").run(write_store::step(8)).unwrap().cache_hit(), "the tree cannot be fetched whole");
    assert_eq!(WROTE.with(Counter::get), before + 1);
    assert_eq!(std::fs::read(&object).unwrap(), b"16", "the corrupt object was replaced");
    assert!(bucket.join("blake3").join(&listing[..2]).join(&listing).is_file(), "the listing stays");
    std::fs::remove_dir_all(ws.path().join("b")).unwrap();
    assert!(open("c").run(write_store::step(8)).unwrap().cache_hit(), "the next host hits");
}

/// `db purge --delete-files` deletes a purged run's directory output (it was left behind, and
/// named nowhere, so nothing would ever free it).
#[test]
fn a_purge_deletes_a_directory_output_with_its_run() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let made = tracker.run(write_store::step(9)).unwrap();
    tracker.flush().unwrap();
    let dir = made.output("store").unwrap().path.clone();
    assert!(dir.join("sub/b.txt").is_file());
    let purge = consist::admin::PurgeOptions { delete_files: true, ..Default::default() };
    let report = tracker.catalog().purge(std::slice::from_ref(&made.run.id), purge).unwrap();
    assert!(!dir.exists() && report.files_deleted == [dir.clone()], "{report:#?}");
}

/// Materializing never deletes a directory it did not make; the same tree twice is fine.
#[test]
fn materializing_over_a_users_directory_is_refused_and_leaves_it_alone() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let store = tracker.run(write_store::step(3)).unwrap();
    let artifact = store.output("store").unwrap().clone();
    let into = ws.path().join("export");
    assert_eq!(tracker.materialize(std::slice::from_ref(&artifact), &into).unwrap(), [into.join("store")]);
    assert!(tracker.materialize(std::slice::from_ref(&artifact), &into).is_ok(), "the same tree again is kept");
    // A user's own directory where the copy would go.
    let mine = ws.path().join("mine");
    std::fs::create_dir_all(mine.join("store")).unwrap();
    std::fs::write(mine.join("store/notes.txt"), "precious").unwrap();
    let err = tracker.materialize(std::slice::from_ref(&artifact), &mine).unwrap_err().to_string();
    assert!(err.contains("holding other files") && err.contains("remove that directory first"), "{err}");
    assert_eq!(std::fs::read_to_string(mine.join("store/notes.txt")).unwrap(), "precious");
    let stray: Vec<_> = std::fs::read_dir(&mine).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(stray.len(), 1, "no temporary copy left: {stray:?}");
}
