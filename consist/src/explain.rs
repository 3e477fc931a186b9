//! Explaining cache misses: what differs from the closest earlier execution of the same step.
//!
//! Every executed run leaves a footprint (code identity, canonical config, input identities) in
//! a small per-step history file beside the database (`<db>.consist/history/<step>.json`, the
//! newest [`HISTORY_LEN`]). A miss compares itself with those footprints, picks the closest, and
//! records the differences in the run's `meta.cache_miss`. The history is advisory: it is read
//! and written only on misses, and a lost update (two processes racing) only makes an
//! explanation less precise, never a cache decision wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::facet::flatten;
use crate::snapshot::write_atomic;

/// Footprints kept per step.
pub const HISTORY_LEN: usize = 32;

/// What identified one executed run: enough to say what changed since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Footprint {
    pub(crate) run_id: String,
    pub(crate) signature: String,
    pub(crate) code_hash: String,
    pub(crate) config: Json,
    /// Declared input key -> identity (content hash or producer signature).
    pub(crate) inputs: BTreeMap<String, String>,
}

/// Why a step executed instead of reusing a cached run (stored as `meta.cache_miss`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MissExplanation {
    /// One line for humans, e.g. `config changed: beta_time; inputs changed: skims`.
    pub summary: String,
    /// The earlier run compared with (the closest execution of the same step), if any.
    pub compared_with: Option<String>,
    /// The code identity differs from that run's.
    pub code_changed: bool,
    /// Config fields (dotted paths) added, removed or changed.
    pub config_changed: Vec<String>,
    /// Declared input keys whose identity differs, or that were added or removed.
    pub inputs_changed: Vec<String>,
}

impl MissExplanation {
    /// A miss that no comparison explains better (`summary` says why).
    pub(crate) fn because(summary: impl Into<String>) -> MissExplanation {
        MissExplanation { summary: summary.into(), ..MissExplanation::default() }
    }

    /// Compare `now` with the closest footprint in `history` (fewest differences, newest first).
    pub(crate) fn compare(step: &str, now: &Footprint, history: &[Footprint]) -> MissExplanation {
        let flat_now = flatten(&now.config);
        let best = history
            .iter()
            .rev()
            .map(|old| diff(&flat_now, now, old))
            .min_by_key(|e| usize::from(e.code_changed) + e.config_changed.len() + e.inputs_changed.len());
        let Some(mut explanation) = best else {
            return MissExplanation::because(format!("no earlier execution of `{step}` is recorded"));
        };
        let mut parts = Vec::new();
        if explanation.code_changed {
            parts.push("code changed".to_owned());
        }
        if !explanation.config_changed.is_empty() {
            parts.push(format!("config changed: {}", explanation.config_changed.join(", ")));
        }
        if !explanation.inputs_changed.is_empty() {
            parts.push(format!("inputs changed: {}", explanation.inputs_changed.join(", ")));
        }
        let source = explanation.compared_with.as_deref().unwrap_or_default();
        explanation.summary = if parts.is_empty() {
            format!("same signature as run `{source}`, but it is no longer a usable cache entry")
        } else {
            format!("{} (compared with run `{source}`)", parts.join("; "))
        };
        explanation
    }

    /// Read an explanation back from a run's `meta.cache_miss`.
    pub fn from_meta(meta: &serde_json::Map<String, Json>) -> Option<MissExplanation> {
        meta.get("cache_miss").and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

fn diff(flat_now: &BTreeMap<String, Json>, now: &Footprint, old: &Footprint) -> MissExplanation {
    let flat_old = flatten(&old.config);
    MissExplanation {
        summary: String::new(),
        compared_with: Some(old.run_id.clone()),
        code_changed: now.code_hash != old.code_hash,
        config_changed: changed_keys(flat_now, &flat_old),
        inputs_changed: changed_keys(&now.inputs, &old.inputs),
    }
}

/// Keys present in only one map, or mapped to different values, in order.
fn changed_keys<V: PartialEq>(a: &BTreeMap<String, V>, b: &BTreeMap<String, V>) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
}

/// The per-step footprint files of one catalog.
pub(crate) struct History {
    dir: PathBuf,
}

impl History {
    pub(crate) fn new(catalog: &Path) -> History {
        History { dir: catalog.join("history") }
    }

    fn path(&self, step: &str) -> PathBuf {
        self.dir.join(format!("{step}.json"))
    }

    /// The recorded footprints of `step`, oldest first (empty if none or unreadable).
    pub(crate) fn read(&self, step: &str) -> Vec<Footprint> {
        std::fs::read(self.path(step)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Drop the footprints of purged runs (so no explanation compares with a run that is gone).
    pub(crate) fn forget(&self, step: &str, run_ids: &std::collections::HashSet<&str>) -> std::io::Result<()> {
        let mut all = self.read(step);
        let before = all.len();
        all.retain(|f| !run_ids.contains(f.run_id.as_str()));
        if all.len() == before {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&all).map_err(std::io::Error::other)?;
        write_atomic(&self.path(step), &bytes, false)
    }

    /// Append a footprint, keeping the newest [`HISTORY_LEN`].
    pub(crate) fn record(&self, step: &str, footprint: Footprint) -> std::io::Result<()> {
        let mut all = self.read(step);
        all.retain(|f| f.signature != footprint.signature);
        all.push(footprint);
        let excess = all.len().saturating_sub(HISTORY_LEN);
        all.drain(..excess);
        let bytes = serde_json::to_vec(&all).map_err(std::io::Error::other)?;
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&self.path(step), &bytes, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn footprint(id: &str, code: &str, config: Json, inputs: &[(&str, &str)]) -> Footprint {
        Footprint {
            run_id: id.into(),
            signature: format!("sig-{id}"),
            code_hash: code.into(),
            config,
            inputs: inputs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        }
    }

    #[test]
    fn picks_the_closest_run_and_names_what_changed() {
        let history = vec![
            footprint("a", "c1", json!({"beta": 1, "n": 2}), &[("skims", "x")]),
            footprint("b", "c1", json!({"beta": 1, "n": 3}), &[("skims", "y")]),
        ];
        let now = footprint("new", "c1", json!({"beta": 2, "n": 3}), &[("skims", "y")]);
        let e = MissExplanation::compare("step", &now, &history);
        assert_eq!(e.compared_with.as_deref(), Some("b"));
        assert_eq!(e.config_changed, ["beta"]);
        assert!(e.inputs_changed.is_empty() && !e.code_changed);
        assert!(e.summary.starts_with("config changed: beta"), "{}", e.summary);
    }

    #[test]
    fn reports_code_inputs_and_absence() {
        let history = vec![footprint("a", "c1", json!({}), &[("skims", "x")])];
        let now = footprint("new", "c2", json!({}), &[("skims", "x"), ("trips", "t")]);
        let e = MissExplanation::compare("step", &now, &history);
        assert!(e.code_changed);
        assert_eq!(e.inputs_changed, ["trips"]);
        let none = MissExplanation::compare("step", &now, &[]);
        assert_eq!(none.compared_with, None);
        assert!(none.summary.contains("no earlier execution"), "{}", none.summary);
    }

    #[test]
    fn history_keeps_the_newest_entries() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::new(dir.path());
        for i in 0..(HISTORY_LEN + 3) {
            history.record("s", footprint(&i.to_string(), "c", json!({"i": i}), &[])).unwrap();
        }
        let all = history.read("s");
        assert_eq!(all.len(), HISTORY_LEN);
        assert_eq!(all.last().unwrap().run_id, (HISTORY_LEN + 2).to_string());
    }
}
