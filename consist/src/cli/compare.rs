//! `consist diff` and `consist explain`: what differs between runs, and why a run was (not) a hit.

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use serde::Serialize;
use serde_json::Value as Json;

use super::error::Result;
use super::{Cli, print_json};
use crate::catalog::Catalog;
use crate::explain::MissExplanation;
use crate::facet::flatten;
use crate::run::RunRecord;

/// Options of `consist diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// First run (id or unique prefix).
    pub run_a: String,
    /// Second run (id or unique prefix).
    pub run_b: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Keys present in only one side or with different values: `[a, b]` (`null` where absent).
#[derive(Debug, Default, Serialize)]
struct Changes {
    added: BTreeMap<String, Json>,
    removed: BTreeMap<String, Json>,
    changed: BTreeMap<String, [Json; 2]>,
}

impl Changes {
    fn between(a: &BTreeMap<String, Json>, b: &BTreeMap<String, Json>) -> Changes {
        let mut c = Changes::default();
        for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
            match (a.get(key), b.get(key)) {
                (Some(x), None) => drop(c.removed.insert(key.clone(), x.clone())),
                (None, Some(y)) => drop(c.added.insert(key.clone(), y.clone())),
                (Some(x), Some(y)) if x != y => drop(c.changed.insert(key.clone(), [x.clone(), y.clone()])),
                _ => {}
            }
        }
        c
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    fn print(&self, what: &str) {
        if self.is_empty() {
            println!("{what}: same");
            return;
        }
        println!("{what}:");
        for (k, v) in &self.removed {
            println!("  - {k} = {v}");
        }
        for (k, v) in &self.added {
            println!("  + {k} = {v}");
        }
        for (k, [x, y]) in &self.changed {
            println!("  ~ {k}: {x} -> {y}");
        }
    }
}

/// The output of `consist diff --json`.
#[derive(Debug, Serialize)]
struct Diff {
    run_a: String,
    run_b: String,
    model_a: String,
    model_b: String,
    same_signature: bool,
    code_changed: bool,
    config: Changes,
    /// Inputs by artifact key; values are identities (producer signature or content hash).
    inputs: Changes,
    /// What compiled each run: rustc, target, profile, `Cargo.lock` hash (`meta.toolchain`).
    toolchain: Changes,
}

/// Input identities of a run by artifact key.
fn input_identities(record: &RunRecord) -> BTreeMap<String, Json> {
    record.inputs.iter().map(|a| (a.key.clone(), a.input_identity().map_or(Json::Null, Json::String))).collect()
}

fn diff_records(a: &RunRecord, b: &RunRecord) -> Diff {
    Diff {
        run_a: a.run.id.clone(),
        run_b: b.run.id.clone(),
        model_a: a.run.model_name.clone(),
        model_b: b.run.model_name.clone(),
        same_signature: a.run.signature == b.run.signature,
        code_changed: a.run.code_hash != b.run.code_hash,
        config: Changes::between(&flatten(&a.config), &flatten(&b.config)),
        inputs: Changes::between(&input_identities(a), &input_identities(b)),
        toolchain: Changes::between(&toolchain_of(a), &toolchain_of(b)),
    }
}

fn print_diff(d: &Diff) {
    println!("{} ({}) -> {} ({})", d.run_a, d.model_a, d.run_b, d.model_b);
    println!(
        "signature: {}",
        if d.same_signature { "same (one would be a cache hit of the other)" } else { "different" }
    );
    println!("code: {}", if d.code_changed { "changed" } else { "same" });
    d.config.print("config");
    d.inputs.print("inputs");
    d.toolchain.print("toolchain");
}

/// A run's recorded toolchain by field (empty for runs recorded before toolchains were).
fn toolchain_of(record: &RunRecord) -> BTreeMap<String, Json> {
    match record.run.meta.get("toolchain") {
        Some(Json::Object(fields)) => fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    }
}

fn record(catalog: &Catalog, id: &str) -> Result<RunRecord> {
    let run = catalog.resolve_run(id)?;
    Ok(catalog.run_record(&run.id)?)
}

pub(super) fn diff(cli: &Cli, args: &DiffArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let d = diff_records(&record(&catalog, &args.run_a)?, &record(&catalog, &args.run_b)?);
    if args.json {
        print_json(&d);
    } else {
        print_diff(&d);
    }
    Ok(())
}

/// Options of `consist explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Run id, or a unique prefix of one.
    pub run: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The output of `consist explain --json`.
#[derive(Debug, Serialize)]
struct Explanation {
    run: String,
    cache_hit: bool,
    /// For a hit: the run whose outputs were reused.
    cache_source: Option<String>,
    /// For a miss: why, as recorded when it ran.
    miss: Option<MissExplanation>,
    /// For a miss compared with an earlier run: the full difference to it.
    diff: Option<Diff>,
}

pub(super) fn explain(cli: &Cli, args: &ExplainArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let rec = record(&catalog, &args.run)?;
    let miss = MissExplanation::from_meta(&rec.run.meta);
    let diff = match miss.as_ref().and_then(|m| m.compared_with.as_deref()) {
        Some(other) => catalog.run_record(other).ok().map(|old| diff_records(&old, &rec)),
        None => None,
    };
    let e = Explanation {
        run: rec.run.id.clone(),
        cache_hit: rec.run.is_cache_hit(),
        cache_source: rec.run.cache_source().map(str::to_owned),
        miss,
        diff,
    };
    if args.json {
        print_json(&e);
        return Ok(());
    }
    match (&e.cache_source, &e.miss) {
        (Some(source), _) => {
            println!("{} was a cache hit: same signature as run {source}, whose outputs it reused", e.run)
        }
        (None, Some(miss)) => println!("{} executed: {}", e.run, miss.summary),
        (None, None) => {
            println!("{} executed; no explanation was recorded (a scenario header, or an older run)", e.run)
        }
    }
    if let Some(d) = &e.diff {
        println!();
        print_diff(d);
    }
    Ok(())
}
