//! Bookkeeping cost per step, excluding the step's own work (its body is trivial here).
//!
//! Run with the dev profile, whose dependencies are already built optimized (the default bench
//! profile would rebuild DuckDB and polars from scratch):
//! ```text
//! cargo bench -p consist --profile dev --bench bookkeeping
//! ```
//! - `hit`: the per-step hot path of a hit: signature, index lookup, a `stat` of the output, the
//!   record handed to the tracker's writer thread (which writes it in a later batch).
//! - `miss`: an executed step: running and completed snapshots (the latter fsynced), the value
//!   output file (fsynced), queue and index entries. DuckDB batches run on the writer thread.
//! - `sync`: the DuckDB mirror: one batch of 256 queued runs written in one transaction (what
//!   the tracker does every 256 runs, at `flush()` and on drop); divide by 256 per run.

use std::hint::black_box;
use std::time::Duration;

use consist::{Tracker, Value};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn cold(tracker: &Tracker, n: u64) {
    let r = tracker
        .step("cold")
        .code_version("1")
        .config(&serde_json::json!({"value": n}))
        .outputs(["v"])
        .run(|_| Ok(Value(n)))
        .expect("step");
    black_box(r);
}

fn bookkeeping(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tracker = Tracker::builder(dir.path().join("runs")).flush_every(usize::MAX).open().expect("tracker");
    let raw = dir.path().join("raw.bin");
    std::fs::write(&raw, vec![7u8; 8 << 20]).expect("input file");

    let warm = || {
        tracker
            .step("warm")
            .code_version("1")
            .config(&serde_json::json!({"value": 5, "label": "warm"}))
            .input("raw", &raw)
            .outputs(["v"])
            .run(|_| Ok(Value(25u64)))
            .expect("step")
    };
    warm();
    c.bench_function("hit: cached step, 8 MiB file input, value output", |b| b.iter(|| black_box(warm())));

    let mut n = 0u64;
    c.bench_function("miss: executed step, value output", |b| {
        b.iter(|| {
            n += 1;
            cold(&tracker, n);
        });
    });
    tracker.flush().expect("flush");

    c.bench_function("sync: one DuckDB batch of 256 runs (divide by 256 per run)", |b| {
        b.iter_batched(
            || {
                for _ in 0..256 {
                    n += 1;
                    cold(&tracker, n);
                }
            },
            |()| tracker.flush().expect("flush"),
            BatchSize::PerIteration,
        );
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = bookkeeping
}
criterion_main!(benches);
