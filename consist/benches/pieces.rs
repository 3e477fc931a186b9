//! The pieces of a step's bookkeeping, one criterion group each (issue 13's list):
//! signature, cache lookup at 1k / 10k / 100k recorded runs, recording a completed run with 3
//! outputs, `full` hashing (a 1 GiB file, 10k small files, a 1 GiB input seen again), lineage of
//! depth 100, a 1,000-step chain cold and warm, and `Store::write` of 1 to 1,000 new runs into a
//! DuckDB catalog of 5,000 (the write a tracker makes at its exit, open to checkpoint).
//!
//! Dependencies are built optimized in the dev profile; add consist's own code at -O2, as a
//! project depending on consist gets it (the default bench profile would rebuild DuckDB):
//! ```text
//! cargo bench -p consist --profile dev --bench pieces --config 'profile.dev.package.consist.opt-level=2'
//! ```
//! Files go under `TMPDIR` (default `/tmp`, the VM's ext4 disk here). With `CONSIST_BENCH_PG` set to
//! a `postgres://` URL, lineage is measured on that PostgreSQL catalog too.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use consist::testing::IndexEntry;
use consist::testing::{InputEntry, hash_config_value, input_hash, signature};
use consist::{Artifact, Catalog, Driver, RunQuery, RunRecord, Tracker, Value};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn signature_piece(c: &mut Criterion) {
    let config = serde_json::json!({"beta": 0.5, "n_zones": 120, "mode": "car", "seed": 42});
    let inputs: Vec<InputEntry> = ["skims", "zones", "trips"]
        .iter()
        .map(|k| InputEntry { key: (*k).into(), identity: format!("run:{}:{k}", "ab".repeat(32)) })
        .collect();
    c.bench_function("signature: small config, 3 inputs", |b| {
        b.iter(|| {
            let config_hash = hash_config_value(black_box(&config));
            let inputs_hash = input_hash(black_box(&inputs));
            black_box(signature("assignment", "code", &config_hash, &inputs_hash))
        });
    });
}

fn entry(i: usize, dir: &Path) -> IndexEntry {
    IndexEntry {
        signature: format!("{:064x}", i),
        run_id: format!("step_{i:08x}"),
        run_dir: dir.to_path_buf(),
        outputs: vec![Artifact {
            id: format!("00000000-0000-4000-8000-{i:012x}"),
            key: "out".into(),
            uri: format!("./outputs/step_{i:08x}/out.bin"),
            path: dir.join(format!("outputs/step_{i:08x}/out.bin")),
            driver: Driver::Bincode,
            hash: Some(format!("{i:064x}")),
            run_id: Some(format!("step_{i:08x}")),
            producer_signature: Some(format!("{i:064x}")),
            meta: serde_json::Map::new(),
            created_at: chrono::Utc::now(),
        }],
        confirmed: false,
        purge_epoch: None,
        inputs: Default::default(),
    }
}

fn lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("provenance.duckdb");
    let writer = Catalog::duckdb(&db, Duration::from_secs(5));
    let mut group = c.benchmark_group("cache lookup");
    let mut recorded = 0;
    for size in [1_000usize, 10_000, 100_000] {
        for i in recorded..size {
            consist::testing::index(&writer, entry(i, dir.path())).expect("index entry");
        }
        recorded = size;
        // A new process: nothing remembered, the entry file is read.
        group.bench_with_input(BenchmarkId::new("first in a process", size), &size, |b, &size| {
            let mut i = 0;
            b.iter_batched(
                || Catalog::duckdb(&db, Duration::from_secs(5)),
                |catalog| {
                    i = (i + 7919) % size;
                    black_box(consist::testing::cached(&catalog, &format!("{i:064x}")).expect("lookup"))
                },
                criterion::BatchSize::SmallInput,
            );
        });
        group.bench_with_input(BenchmarkId::new("again in a process", size), &size, |b, &size| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % 1000.min(size);
                black_box(consist::testing::cached(&writer, &format!("{i:064x}")).expect("lookup"))
            });
        });
    }
    group.finish();
}

fn record(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tracker = Tracker::builder(dir.path().join("runs")).open().expect("tracker");
    let mut n = 0u64;
    c.bench_function("record: executed step, 3 value outputs (durable)", |b| {
        b.iter(|| {
            n += 1;
            let r = tracker
                .step("record")
                .code_version("1")
                .config(&n)
                .outputs(["a", "b", "c"])
                .run(|_| Ok((Value(n), Value(n * 2), Value(n * 3))))
                .expect("step");
            black_box(r)
        });
    });
}

fn hashing(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("big.bin");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&big).expect("big file"));
        let chunk: Vec<u8> = (0..(1u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        for _ in 0..1024 {
            file.write_all(&chunk).expect("write");
        }
    }
    let small_dir = dir.path().join("small");
    std::fs::create_dir_all(&small_dir).expect("dir");
    let small: Vec<_> = (0..10_000)
        .map(|i| {
            let p = small_dir.join(format!("{i}.csv"));
            std::fs::write(&p, format!("id,value\n{i},{}\n", i * 3).repeat(64)).expect("small file");
            p
        })
        .collect();
    let mut group = c.benchmark_group("full hashing");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(1 << 30));
    group.bench_function("1 GiB file (mmap, all cores)", |b| {
        b.iter(|| black_box(consist::hash_file(&big).expect("hash")));
    });
    group.throughput(Throughput::Elements(small.len() as u64));
    group.bench_function("10k small files", |b| {
        b.iter(|| {
            for p in &small {
                black_box(consist::hash_file(p).expect("hash"));
            }
        });
    });
    group.finish();
    // The same 1 GiB input on the next step: size and mtime unchanged, so not hashed again.
    let tracker = Tracker::builder(dir.path().join("runs")).open().expect("tracker");
    let mut n = 0u64;
    let mut step = || {
        n += 1;
        tracker.step("reads_big").code_version("1").config(&n).input("big", &big).outputs(["v"]).run(|_| Ok(Value(1u8)))
    };
    let first = Instant::now();
    step().expect("first read hashes it");
    eprintln!("first step reading the 1 GiB input (hashes it): {:.1} ms", first.elapsed().as_secs_f64() * 1e3);
    c.bench_function("step whose 1 GiB input was hashed before (stat only)", |b| b.iter(|| black_box(step())));
}

fn lineage_and_chain(c: &mut Criterion) {
    let chain = |tracker: &Tracker, steps: u64| -> Artifact {
        let mut prev: Option<Artifact> = None;
        for i in 0..steps {
            let mut step = tracker.step("link").code_version("1").outputs(["v"]);
            if let Some(p) = &prev {
                step = step.input("prev", p);
            }
            let r = step.run(move |_| Ok(Value(i))).expect("step");
            prev = Some(r.output("v").expect("output").clone());
        }
        prev.expect("at least one step")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let tracker = Tracker::builder(dir.path().join("runs")).open().expect("tracker");
    let last = chain(&tracker, 100);
    c.bench_function("lineage of depth 100", |b| {
        b.iter(|| black_box(tracker.artifact_lineage(&last.id, 100).expect("lineage")));
    });
    // The same on PostgreSQL when `CONSIST_BENCH_PG` names a server (`postgres://...`, a database
    // of its own: the chain is written into it), e.g. one `.ci/pg-cluster.sh` starts.
    if let Ok(url) = std::env::var("CONSIST_BENCH_PG") {
        let pg_dir = tempfile::tempdir().expect("temp dir");
        let tracker = Tracker::builder(pg_dir.path().join("runs")).catalog(&url).open().expect("tracker");
        let last = chain(&tracker, 100);
        tracker.flush().expect("the chain in PostgreSQL");
        c.bench_function("lineage of depth 100 (PostgreSQL)", |b| {
            b.iter(|| black_box(tracker.artifact_lineage(&last.id, 100).expect("lineage")));
        });
    }

    let mut group = c.benchmark_group("1,000-step chain");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("cold (fresh directory, tracker dropped: all recorded)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("temp dir");
                let start = Instant::now();
                let tracker = Tracker::builder(dir.path().join("runs")).open().expect("tracker");
                black_box(chain(&tracker, 1000));
                drop(tracker);
                total += start.elapsed();
            }
            total
        });
    });
    let warm_dir = tempfile::tempdir().expect("temp dir");
    chain(&Tracker::builder(warm_dir.path().join("runs")).open().expect("tracker"), 1000);
    group.bench_function("warm (new tracker over the same directory, all hits, recorded)", |b| {
        b.iter(|| {
            let tracker = Tracker::builder(warm_dir.path().join("runs")).open().expect("tracker");
            black_box(chain(&tracker, 1000));
        });
    });
    group.finish();
}

/// `Store::write` of a batch of new runs into a DuckDB catalog of 5,000 runs: attaching the file,
/// reading what it holds of the batch, appending, committing and the detach's checkpoint. The
/// batch is copies of the catalog's own records under new run and output ids, so every row is new.
fn store_write(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let runs = dir.path().join("runs");
    {
        let tracker = Tracker::builder(&runs).open().expect("tracker");
        for i in 0..5_000u64 {
            tracker.step("seed").code_version("1").config(&i).outputs(["v"]).run(move |_| Ok(Value(i))).expect("step");
        }
    }
    let catalog = Catalog::duckdb(runs.join("provenance.duckdb"), Duration::from_secs(30));
    let store = catalog.store();
    let ids: Vec<String> = store
        .find_runs(&RunQuery { limit: Some(1_000), ..RunQuery::default() })
        .expect("runs")
        .into_iter()
        .map(|run| run.id)
        .collect();
    let seeds = store.run_records(&ids).expect("records");
    let mut copies = 0u64;
    let mut fresh = |n: usize| -> Vec<RunRecord> {
        copies += 1;
        seeds[..n]
            .iter()
            .map(|seed| {
                let mut record = seed.clone();
                let run_id = format!("{}_copy{copies}", record.run.id);
                record.run.id.clone_from(&run_id);
                for output in &mut record.outputs {
                    output.id = format!("{}-c{copies}", output.id);
                    output.run_id = Some(run_id.clone());
                }
                record
            })
            .collect()
    };
    let mut group = c.benchmark_group("Store::write into 5,000 runs (DuckDB)");
    group.sample_size(10);
    for n in [1usize, 10, 100, 1_000] {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || fresh(n),
                |batch| store.write(&batch).expect("write"),
                criterion::BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = signature_piece, lookup, record, hashing, lineage_and_chain, store_write
}
criterion_main!(benches);
