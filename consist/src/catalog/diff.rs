//! What differs between two recorded runs (`consist diff`), and why a run was or was not a cache
//! hit (`consist explain`): the models the CLI prints and a UI can show.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value as Json;

use crate::catalog::Catalog;
use crate::catalog::explain::MissExplanation;
use crate::error::Result;
use crate::facet::flatten;
use crate::run::RunRecord;

/// Keys present in only one side or with different values.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Changes {
    /// Keys only the second side has, with their values.
    pub added: BTreeMap<String, Json>,
    /// Keys only the first side has, with their values.
    pub removed: BTreeMap<String, Json>,
    /// Keys both have with different values: `[first, second]`.
    pub changed: BTreeMap<String, [Json; 2]>,
}

impl Changes {
    /// The changes from `a` to `b`.
    pub fn between(a: &BTreeMap<String, Json>, b: &BTreeMap<String, Json>) -> Changes {
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

    /// Whether both sides are the same.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// What differs between two runs (the shape of `consist diff --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDiff {
    /// The first run's id.
    pub run_a: String,
    /// The second run's id.
    pub run_b: String,
    /// The first run's model.
    pub model_a: String,
    /// The second run's model.
    pub model_b: String,
    /// Whether one would be a cache hit of the other.
    pub same_signature: bool,
    /// Whether their code identities differ.
    pub code_changed: bool,
    /// The canonical configs, flattened to dotted keys.
    pub config: Changes,
    /// Inputs by the key the step reads each under (`states[1]` of a list input); values are
    /// identities (producer signature or content hash).
    pub inputs: Changes,
    /// What compiled each run: rustc, target, profile, `Cargo.lock` hash (`meta.toolchain`).
    pub toolchain: Changes,
    /// Values recorded outside the signature (`meta.runtime`: `#[consist(runtime)]` parameters,
    /// `StepBuilder::runtime`, ignored config keys): they differ without making a miss.
    pub runtime: Changes,
}

impl RunDiff {
    /// What differs from run `a` to run `b`.
    pub fn between(a: &RunRecord, b: &RunRecord) -> RunDiff {
        RunDiff {
            run_a: a.run.id.clone(),
            run_b: b.run.id.clone(),
            model_a: a.run.model_name.clone(),
            model_b: b.run.model_name.clone(),
            same_signature: a.run.signature == b.run.signature,
            code_changed: a.run.code_hash != b.run.code_hash,
            config: Changes::between(&flatten(&a.config), &flatten(&b.config)),
            inputs: Changes::between(&input_identities(a), &input_identities(b)),
            toolchain: Changes::between(&toolchain_of(a), &toolchain_of(b)),
            runtime: Changes::between(&runtime_of(a), &runtime_of(b)),
        }
    }
}

/// Input identities of a run by the key the step reads each under (`meta.inputs`: `states[1]`
/// of a list input), else, for a record without them, by the artifact's own key.
fn input_identities(record: &RunRecord) -> BTreeMap<String, Json> {
    let by_key = record.inputs_by_key().unwrap_or_else(|| record.inputs.iter().map(|a| (a.key.as_str(), a)).collect());
    by_key.into_iter().map(|(key, a)| (key.to_owned(), a.input_identity().map_or(Json::Null, Json::String))).collect()
}

/// A run's recorded toolchain by field (empty for runs recorded before toolchains were).
fn toolchain_of(record: &RunRecord) -> BTreeMap<String, Json> {
    meta_object(record, "toolchain")
}

/// A run's values recorded outside its signature, by key.
fn runtime_of(record: &RunRecord) -> BTreeMap<String, Json> {
    meta_object(record, "runtime")
}

fn meta_object(record: &RunRecord, key: &str) -> BTreeMap<String, Json> {
    match record.run.meta.get(key) {
        Some(Json::Object(fields)) => fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    }
}

/// Why a run was or was not a cache hit (the shape of `consist explain --json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunExplanation {
    /// The run's id.
    pub run: String,
    /// Whether it reused an earlier run's outputs.
    pub cache_hit: bool,
    /// For a hit: the run whose outputs were reused.
    pub cache_source: Option<String>,
    /// For a miss: why, as recorded when it ran.
    pub miss: Option<MissExplanation>,
    /// The full difference to the run it was compared with: for a hit, the run it reused (only
    /// values outside the signature can differ); for a miss, its baseline.
    pub diff: Option<RunDiff>,
}

impl Catalog {
    /// The record of the run `id` names (an id or a unique prefix of one).
    pub fn resolve_record(&self, id: &str) -> Result<RunRecord> {
        let run = self.resolve_run(id)?;
        self.run_record(&run.id)
    }

    /// What differs from run `a` to run `b` (ids or unique prefixes).
    pub fn diff_runs(&self, a: &str, b: &str) -> Result<RunDiff> {
        Ok(RunDiff::between(&self.resolve_record(a)?, &self.resolve_record(b)?))
    }

    /// Why run `id` (an id or unique prefix) was or was not a cache hit; for a miss compared
    /// with an earlier run still recorded, the full difference to that run.
    pub fn explain_run(&self, id: &str) -> Result<RunExplanation> {
        Ok(self.explain_record(&self.resolve_record(id)?))
    }

    /// [`Catalog::explain_run`] of a record already read.
    pub fn explain_record(&self, record: &RunRecord) -> RunExplanation {
        let miss = MissExplanation::from_meta(&record.run.meta);
        let baseline = record.run.cache_source().or_else(|| miss.as_ref().and_then(|m| m.compared_with.as_deref()));
        let diff = baseline.and_then(|other| self.run_record(other).ok()).map(|old| RunDiff::between(&old, record));
        RunExplanation {
            run: record.run.id.clone(),
            cache_hit: record.run.is_cache_hit(),
            cache_source: record.run.cache_source().map(str::to_owned),
            miss,
            diff,
        }
    }
}
