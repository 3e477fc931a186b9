//! Quickstart (the Python seed `quickstart.md`): one cached function.
//!
//! Run it twice from the repository root:
//! ```text
//! cargo run --example quickstart     # prints "Executing with value=5", cache hit: false
//! cargo run --example quickstart     # no "Executing": a cache hit, same typed value
//! cargo run -p consist -- runs --db-path ./provenance.duckdb --limit 5
//! ```
//! Unlike the Python seed, the value is not passed twice (once as `config`, once as
//! `runtime_kwargs`): the closure reads the very config that is hashed, so they cannot disagree.

use consist::{Tracker, Value};
use serde::{Deserialize, Serialize};

/// The config: hashed into the run's signature.
#[derive(Serialize)]
struct Params {
    value: i64,
}

/// The step's typed output, stored with the value codec and returned typed on a cache hit.
#[derive(Debug, Serialize, Deserialize)]
struct Squared {
    squared: i64,
}

fn process_data(value: i64) -> Squared {
    // Printed only when the function really executes, not on a cache hit.
    println!("Executing with value={value}");
    Squared { squared: value.pow(2) }
}

fn main() -> consist::Result<()> {
    // The catalog: ./provenance.duckdb, or what CONSIST_DB names (a DuckDB path or a postgres:// URL).
    let catalog = std::env::var("CONSIST_DB").unwrap_or_else(|_| "./provenance.duckdb".into());
    let tracker = Tracker::builder("./runs").catalog(&catalog).open()?;
    let params = Params { value: 5 };

    let result = tracker
        .step("square")
        .code_version("1") // bump when process_data changes (#[step] derives this from the code)
        .config(&params)
        .outputs(["squared"])
        .run(|_ctx| Ok(Value(process_data(params.value))))?;

    let squared = &result.value()?.0;
    println!(
        "{} {} cache hit: {}",
        result.run.id,
        serde_json::to_string(squared).expect("plain struct"),
        result.cache_hit()
    );
    Ok(())
}
