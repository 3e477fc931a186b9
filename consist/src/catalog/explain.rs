//! Explaining cache misses: what differs from the earlier execution this run replaces.
//!
//! Every executed run leaves a footprint (code identity and the items it covers, canonical
//! config, input identities, where it sat in the workflow) beside the database:
//! `<db>.consist/history/<step>/<place>.json`, one small file per *place* (scenario name,
//! iteration, year, stage, phase), one footprint appended per line, of which the newest
//! [`PLACE_LEN`] distinct executions count (a process keeps the files it used parsed); a
//! step keeps at most [`MAX_PLACES`] places (the least recently written go first). A miss picks
//! its baseline by this rule, and records the differences in the run's `meta.cache_miss`:
//!
//! 1. the executions at the same place, if there are any; otherwise those of the
//!    [`SCAN_PLACES`] most recently written places of the step;
//! 2. among them, the fewest differences (code, each config field, each input);
//! 3. on a tie, one recorded by an earlier process (a previous version of this run, not a
//!    sibling that this process just produced with the same change);
//! 4. then the newest.
//!
//! So after editing `gamma` for one scenario of a sweep, each of its steps is compared with the
//! same step of that scenario before the edit ("config changed: gamma"), and a code edit is named
//! for every miss it causes. The history is advisory: it is read and written only on misses, and
//! a lost update (two processes racing) only makes an explanation less precise, never a cache
//! decision wrong.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::facet::flatten;
use crate::files::atomic::write_atomic;

/// Distinct executions kept per place.
pub const PLACE_LEN: usize = 128;

/// Places kept per step.
pub const MAX_PLACES: usize = 2048;

/// Places read when a miss has no execution at its own place.
pub const SCAN_PLACES: usize = 64;

/// Where a run sat in the workflow: what makes two executions "the same run, another version".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Place {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scenario: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iteration: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) year: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) phase: Option<String>,
}

impl Place {
    /// ` (scenario `beta=0.3`, iteration 3)` for messages; empty when the run sat nowhere.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.scenario {
            parts.push(format!("scenario `{s}`"));
        }
        if let Some(i) = self.iteration {
            parts.push(format!("iteration {i}"));
        }
        if let Some(y) = self.year {
            parts.push(format!("year {y}"));
        }
        if let Some(s) = &self.stage {
            parts.push(format!("stage `{s}`"));
        }
        if let Some(p) = &self.phase {
            parts.push(format!("phase `{p}`"));
        }
        if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
    }

    /// A file-name-safe key: blake3 of the place's JSON, 16 hex digits.
    fn key(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        blake3::hash(json.as_bytes()).to_hex()[..16].to_owned()
    }
}

/// What identified one executed run: enough to say what changed since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Footprint {
    pub(crate) run_id: String,
    pub(crate) signature: String,
    pub(crate) code_hash: String,
    /// What the code identity covered (label -> token hash), for `#[step]`s.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) code_items: BTreeMap<String, String>,
    pub(crate) config: Json,
    /// Declared input key -> identity (content hash or producer signature).
    pub(crate) inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) place: Place,
    /// The tracker session (one per process and tracker) that recorded it.
    #[serde(default)]
    pub(crate) session: String,
}

/// Why a step executed instead of reusing a cached run (stored as `meta.cache_miss`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MissExplanation {
    /// One line for humans, e.g. `code changed: const SCALE; config changed: beta_time`.
    pub summary: String,
    /// The earlier run compared with (see the module docs for how it is chosen), if any.
    pub compared_with: Option<String>,
    /// The code identity differs from that run's.
    pub code_changed: bool,
    /// The covered code items (`const SCALE`, `fn helper`) that were added, removed or edited
    /// since that run, when both runs recorded their items.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_items_changed: Vec<String>,
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

    /// Compare `now` with its baseline among `candidates` (the rule in the module docs).
    pub(crate) fn compare(step: &str, now: &Footprint, candidates: &[Footprint]) -> MissExplanation {
        let flat_now = flat_texts(&now.config);
        let best = candidates
            .iter()
            .enumerate()
            .map(|(i, old)| (i, diff(&flat_now, now, old)))
            .min_by_key(|(i, e)| {
                let old = &candidates[*i];
                // Each changed code item counts, as each changed config field does: an edit of one
                // helper is closer than an edit of three.
                let code = if e.code_changed { e.code_items_changed.len().max(1) } else { 0 };
                let differences = code + e.config_changed.len() + e.inputs_changed.len();
                (old.place != now.place, differences, old.session == now.session, std::cmp::Reverse(*i))
            })
            .map(|(_, e)| e);
        let Some(mut explanation) = best else {
            return MissExplanation::because(format!("no earlier execution of `{step}` is recorded"));
        };
        let mut parts = Vec::new();
        match (explanation.code_changed, explanation.code_items_changed.is_empty()) {
            (false, _) => {}
            (true, true) => parts.push("code changed".to_owned()),
            (true, false) => parts.push(format!("code changed: {}", explanation.code_items_changed.join(", "))),
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

/// Whether a code item is the tracker's (a hashed toolchain's field, the cache epoch), not the
/// step's own code.
pub(crate) fn is_tracker_item(label: &str) -> bool {
    label.starts_with("toolchain ") || label == crate::signature::CACHE_EPOCH_ITEM
}

/// The code items a run recorded in `meta.code_items` (label -> token hash), if any.
pub(crate) fn recorded_code_items(meta: &serde_json::Map<String, Json>) -> Option<BTreeMap<String, String>> {
    meta.get("code_items").and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The dotted fields of a config with their canonical JSON text: what the signature hashes, so
/// `-0.0` and `0.0` (equal as numbers, different in the signature) count as a change.
fn flat_texts(config: &Json) -> BTreeMap<String, String> {
    flatten(config).into_iter().map(|(k, v)| (k, crate::canonical::text(&v))).collect()
}

fn diff(flat_now: &BTreeMap<String, String>, now: &Footprint, old: &Footprint) -> MissExplanation {
    let flat_old = flat_texts(&old.config);
    let code_changed = now.code_hash != old.code_hash;
    let both_itemized = !now.code_items.is_empty() && !old.code_items.is_empty();
    // A step without items of its own (the builder API) still has the tracker's: its cache epoch
    // and a hashed toolchain are named when they changed.
    let tracker_items = |items: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        items.iter().filter(|(label, _)| is_tracker_item(label)).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    MissExplanation {
        summary: String::new(),
        compared_with: Some(old.run_id.clone()),
        code_changed,
        code_items_changed: match (code_changed, both_itemized) {
            (true, true) => changed_keys(&now.code_items, &old.code_items),
            (true, false) => changed_keys(&tracker_items(&now.code_items), &tracker_items(&old.code_items)),
            (false, _) => Vec::new(),
        },
        config_changed: changed_keys(flat_now, &flat_old),
        inputs_changed: changed_keys(&now.inputs, &old.inputs),
    }
}

/// Keys present in only one map, or mapped to different values, in order.
pub(crate) fn changed_keys<V: PartialEq>(a: &BTreeMap<String, V>, b: &BTreeMap<String, V>) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
}

fn remove(path: &Path) -> std::io::Result<()> {
    crate::files::atomic::remove_if_present(path, "removing miss history").map_err(std::io::Error::other)
}

/// The per-step, per-place footprint files of one catalog.
pub(crate) struct History {
    dir: PathBuf,
    /// Place files this process has read or written, with the (size, mtime) they had then: a
    /// miss reads its place from here unless another process changed the file since.
    cache: Mutex<HashMap<PathBuf, Cached>>,
}

/// A parsed place file.
#[derive(Clone, Default)]
struct Cached {
    stamp: Option<(u64, std::time::SystemTime)>,
    /// The newest [`PLACE_LEN`] distinct executions, oldest first.
    footprints: Arc<Vec<Footprint>>,
    /// Lines in the file (appends since the last rewrite included); `usize::MAX` for a file in
    /// the earlier one-JSON-array format, which the next write replaces.
    lines: usize,
}

fn stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// The newest [`PLACE_LEN`] distinct signatures of `all` (oldest first), a later line replacing
/// an earlier one with the same signature.
fn newest_distinct(all: Vec<Footprint>) -> Vec<Footprint> {
    let mut seen = HashSet::new();
    let mut kept: Vec<Footprint> =
        all.into_iter().rev().filter(|f| seen.insert(f.signature.clone())).take(PLACE_LEN).collect();
    kept.reverse();
    kept
}

impl History {
    pub(crate) fn new(catalog: &Path) -> History {
        History { dir: catalog.join("history"), cache: Mutex::new(HashMap::new()) }
    }

    /// Forget every recorded footprint (the local state was made for another catalog).
    pub(crate) fn clear(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn step_dir(&self, step: &str) -> PathBuf {
        self.dir.join(crate::names::slug(step))
    }

    /// A place file: one footprint per line, appended on each execution.
    fn read_file(&self, path: &Path) -> Cached {
        let Some(now) = stamp(path) else { return Cached::default() };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cached) = cache.get(path)
            && cached.stamp == Some(now)
        {
            return cached.clone();
        }
        let bytes = std::fs::read(path).unwrap_or_default();
        let (all, lines) = if bytes.first() == Some(&b'[') {
            (serde_json::from_slice(&bytes).unwrap_or_default(), usize::MAX)
        } else {
            let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
            (lines.iter().filter_map(|l| serde_json::from_slice(l).ok()).collect(), lines.len())
        };
        let cached = Cached { stamp: Some(now), footprints: Arc::new(newest_distinct(all)), lines };
        cache.insert(path.to_path_buf(), cached.clone());
        cached
    }

    fn remember(&self, path: &Path, footprints: Vec<Footprint>, lines: usize) {
        let cached = Cached { stamp: stamp(path), footprints: Arc::new(footprints), lines };
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_path_buf(), cached);
    }

    /// Place files of `step`, most recently written first.
    fn place_files(&self, step: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.step_dir(step)) else { return Vec::new() };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        files.into_iter().map(|(_, p)| p).collect()
    }

    /// The footprints a miss at `place` is compared with: those at the same place, else those
    /// of the most recently written places (oldest first within each file).
    pub(crate) fn candidates(&self, step: &str, place: &Place) -> Arc<Vec<Footprint>> {
        let same = self.read_file(&self.step_dir(step).join(format!("{}.json", place.key()))).footprints;
        if !same.is_empty() {
            return same;
        }
        let mut files = self.place_files(step);
        files.truncate(SCAN_PLACES);
        Arc::new(files.iter().rev().flat_map(|p| self.read_file(p).footprints.to_vec()).collect())
    }

    /// Drop the footprints of purged runs (so no explanation compares with a run that is gone).
    pub(crate) fn forget(&self, step: &str, run_ids: &std::collections::HashSet<&str>) -> std::io::Result<()> {
        for path in self.place_files(step) {
            let mut all = self.read_file(&path).footprints.to_vec();
            let before = all.len();
            all.retain(|f| !run_ids.contains(f.run_id.as_str()));
            if all.len() == before {
                continue;
            }
            if all.is_empty() {
                remove(&path)?;
            } else {
                self.write_file(&path, all)?;
            }
        }
        Ok(())
    }

    /// Replace a place file with `footprints`, one per line (atomically; history needs no fsync).
    fn write_file(&self, path: &Path, footprints: Vec<Footprint>) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for f in &footprints {
            serde_json::to_writer(&mut bytes, f).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
        }
        write_atomic(path, &bytes, false)?;
        let lines = footprints.len();
        self.remember(path, footprints, lines);
        Ok(())
    }

    /// Add a footprint at its place: appended as one line; the file is rewritten with the newest
    /// [`PLACE_LEN`] distinct signatures once it holds twice that many lines. A step keeps at most
    /// [`MAX_PLACES`] places.
    pub(crate) fn record(&self, step: &str, footprint: Footprint) -> std::io::Result<()> {
        let dir = self.step_dir(step);
        let path = dir.join(format!("{}.json", footprint.place.key()));
        let Cached { footprints, lines, .. } = self.read_file(&path);
        let new_place = lines == 0;
        let mut all = footprints.to_vec();
        all.push(footprint);
        let all = newest_distinct(all);
        std::fs::create_dir_all(&dir)?;
        if lines.saturating_add(1) > 2 * PLACE_LEN {
            self.write_file(&path, all)?;
        } else {
            let mut line = serde_json::to_vec(all.last().expect("just pushed")).map_err(std::io::Error::other)?;
            line.push(b'\n');
            // One write of one line with O_APPEND: concurrent writers never interleave within it.
            std::fs::OpenOptions::new().create(true).append(true).open(&path)?.write_all(&line)?;
            self.remember(&path, all, lines + 1);
        }
        if new_place {
            for old in self.place_files(step).into_iter().skip(MAX_PLACES) {
                remove(&old)?;
            }
        }
        Ok(())
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
            code_items: BTreeMap::new(),
            config,
            inputs: inputs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            place: Place::default(),
            session: "old".into(),
        }
    }

    fn at(mut f: Footprint, scenario: &str, iteration: i32, session: &str) -> Footprint {
        f.place = Place { scenario: Some(scenario.into()), iteration: Some(iteration), ..Place::default() };
        f.session = session.into();
        f
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
    fn a_change_of_sign_of_zero_is_named() {
        let history = vec![footprint("a", "c1", json!({"x": 0.0}), &[])];
        let now = footprint("new", "c1", json!({"x": -0.0}), &[]);
        let e = MissExplanation::compare("step", &now, &history);
        assert_eq!(e.config_changed, ["x"], "{}", e.summary);
    }

    #[test]
    fn each_changed_code_item_counts_as_a_difference() {
        let items =
            |v: &str| -> BTreeMap<String, String> { ["fn a", "fn b", "fn c"].map(|l| (l.into(), v.into())).into() };
        // `far` ran other code (three items differ), `near` the same code with two other fields.
        let mut far = footprint("far", "c1", json!({"n": 2, "m": 2}), &[]);
        far.code_items = items("1");
        let mut near = footprint("near", "c2", json!({"n": 1, "m": 1}), &[]);
        near.code_items = items("2");
        let mut now = footprint("new", "c2", json!({"n": 2, "m": 2}), &[]);
        now.code_items = items("2");
        let e = MissExplanation::compare("step", &now, &[far, near]);
        assert_eq!(e.compared_with.as_deref(), Some("near"), "{}", e.summary);
        assert_eq!(e.config_changed, ["m", "n"]);
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
    fn names_the_code_items_that_changed() {
        let mut old = footprint("a", "c1", json!({}), &[]);
        old.code_items = [("fn sir".into(), "1".into()), ("const SCALE".into(), "2".into())].into();
        let mut now = footprint("new", "c2", json!({}), &[]);
        now.code_items = [("fn sir".into(), "1".into()), ("const SCALE".into(), "3".into())].into();
        let e = MissExplanation::compare("sir", &now, &[old]);
        assert_eq!(e.code_items_changed, ["const SCALE"]);
        assert!(e.summary.starts_with("code changed: const SCALE (compared with run `a`)"), "{}", e.summary);
    }

    #[test]
    fn same_place_beats_fewer_differences_and_earlier_processes_beat_siblings() {
        // Scenario s2 ran with gamma 0.1; now gamma is 0.2 in s2. Another scenario's run has
        // fewer differences but is at another place; this process's own day 0 ties with the
        // earlier day 3 and loses to it.
        let history = vec![
            at(footprint("s1-d3", "c", json!({"day": 3, "gamma": 0.2}), &[("state", "p")]), "s1", 3, "old"),
            at(footprint("s2-d3", "c", json!({"day": 3, "gamma": 0.1}), &[("state", "x")]), "s2", 3, "old"),
            at(footprint("s2-d0-new", "c", json!({"day": 0, "gamma": 0.2}), &[("state", "y")]), "s2", 3, "now"),
        ];
        let now = at(footprint("new", "c", json!({"day": 3, "gamma": 0.2}), &[("state", "z")]), "s2", 3, "now");
        let e = MissExplanation::compare("day", &now, &history);
        assert_eq!(e.compared_with.as_deref(), Some("s2-d3"), "{}", e.summary);
        assert_eq!(e.config_changed, ["gamma"]);
    }

    #[test]
    fn history_keeps_one_file_per_place_and_bounds_each() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::new(dir.path());
        for i in 0..(PLACE_LEN + 3) {
            history.record("s", at(footprint(&i.to_string(), "c", json!({"i": i}), &[]), "a", 1, "x")).unwrap();
        }
        history.record("s", at(footprint("other", "c", json!({}), &[]), "b", 1, "x")).unwrap();
        let place = at(footprint("q", "c", json!({}), &[]), "a", 1, "x").place;
        let same = history.candidates("s", &place);
        assert_eq!(same.len(), PLACE_LEN);
        assert_eq!(same.last().unwrap().run_id, (PLACE_LEN + 2).to_string());
        let elsewhere = at(footprint("q", "c", json!({}), &[]), "c", 9, "x").place;
        assert_eq!(history.candidates("s", &elsewhere).len(), PLACE_LEN + 1, "a new place reads the others");
        let purged: std::collections::HashSet<&str> = ["other"].into();
        history.forget("s", &purged).unwrap();
        assert_eq!(history.place_files("s").len(), 1, "an emptied place file is removed");
    }
}
