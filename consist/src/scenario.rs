//! Scenarios: a header run that groups child runs, and the coupler that passes artifacts between
//! them by key.
//!
//! ```no_run
//! # use consist::{Tracker, Value};
//! # fn main() -> consist::Result<()> {
//! let tracker = Tracker::builder("./runs").open()?;
//! let scenario = tracker.scenario("baseline").config(&serde_json::json!({"iterations": 10})).start()?;
//! for i in 0..10 {
//!     let previous = scenario.get("state"); // None in iteration 0
//!     let mut step = scenario.step("advance").code_version("1").iteration(i).outputs(["state"]);
//!     if let Some(p) = &previous {
//!         step = step.input("state", p);
//!     }
//!     step.run(|ctx| {
//!         let x = match ctx.input("state") {
//!             Ok(_) => ctx.load::<Value<i64>>("state")?.0,
//!             Err(_) => 0,
//!         };
//!         Ok(Value(x + 1))
//!     })?;
//! }
//! let header = scenario.finish()?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::artifact::Artifact;
use crate::engine::RunResult;
use crate::engine::output::Outputs;
use crate::error::{Error, Result};
use crate::names::unknown_key;
use crate::run::{Run, RunRecord, RunStatus};
use crate::step::{StepBuilder, StepCall};
use crate::tracker::Tracker;

/// Options of a scenario; finish with [`start`](Self::start).
#[must_use = "call .start() to begin the scenario"]
pub struct ScenarioBuilder<'t> {
    tracker: &'t Tracker,
    name: String,
    config: Result<Json>,
    tags: Vec<String>,
    facet_from: Vec<String>,
    description: Option<String>,
}

impl std::fmt::Debug for ScenarioBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioBuilder").field("name", &self.name).field("tags", &self.tags).finish_non_exhaustive()
    }
}

impl<'t> ScenarioBuilder<'t> {
    /// The scenario's config (recorded and hashed into its header run; steps hash their own).
    pub fn config<C: Serialize + ?Sized>(mut self, config: &C) -> Self {
        self.config = crate::signature::config_hash(&self.name, config).map(|c| c.value);
        self
    }

    /// Add a tag.
    pub fn tag(mut self, tag: &str) -> Self {
        self.tags.push(tag.to_owned());
        self
    }

    /// Record these fields of the scenario config (dotted paths) as queryable facets of the
    /// header run, e.g. `["n_iterations"]`.
    pub fn facet_from<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.facet_from.extend(keys.into_iter().map(Into::into));
        self
    }

    /// A description.
    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.to_owned());
        self
    }

    /// Record the header run (status `running`) and return the scenario.
    pub fn start(self) -> Result<Scenario> {
        crate::names::check_name("scenario", &self.name)?;
        let config = self.config?;
        let facets = crate::facet::extract(&config, &self.facet_from)?;
        let config_hash = crate::signature::hash_config_value(&config);
        let input_hash = crate::signature::input_hash(&[]);
        let signature = crate::signature::signature(&self.name, "", &config_hash, &input_hash);
        let mut meta = Map::new();
        meta.insert("kind".into(), Json::String("scenario".into()));
        let run = Run {
            description: self.description,
            tags: self.tags,
            config_hash,
            input_hash,
            signature,
            ..Run::starting(&self.name, meta, Utc::now())
        };
        let header = RunRecord::starting(run, config, facets, self.tracker.run_dir().to_path_buf(), Vec::new());
        self.tracker.inner.persist(&header)?;
        Ok(Scenario {
            tracker: self.tracker.clone(),
            id: header.run.id.clone(),
            name: header.run.model_name.clone(),
            header: Mutex::new(Some(header)),
            coupler: Mutex::new(BTreeMap::new()),
        })
    }
}

/// A running scenario: child runs get its id as `parent_run_id`, and their outputs become
/// available by key through the coupler. End it with [`finish`](Self::finish); a scenario that is
/// dropped without `finish` (an early `?` return) is recorded as `failed`.
pub struct Scenario {
    tracker: Tracker,
    id: String,
    name: String,
    /// The header record; `None` once finished.
    header: Mutex<Option<RunRecord>>,
    coupler: Mutex<BTreeMap<String, Artifact>>,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let coupler_keys: Vec<String> = self.coupler.lock().map(|c| c.keys().cloned().collect()).unwrap_or_default();
        f.debug_struct("Scenario")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("coupler_keys", &coupler_keys)
            .finish()
    }
}

impl<'t> ScenarioBuilder<'t> {
    /// A builder for a scenario named `name` (its header run id is `<name>_<16 hex>`, with the name made file-safe).
    pub(crate) fn new(tracker: &'t Tracker, name: &str) -> Self {
        ScenarioBuilder {
            tracker,
            name: name.to_owned(),
            config: Ok(Json::Null),
            tags: Vec::new(),
            facet_from: Vec::new(),
            description: None,
        }
    }
}

impl Scenario {
    /// Id of the header run (the `parent_run_id` of every child).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The scenario's name, as given to [`Tracker::scenario`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run a `#[step]` call as a child of this scenario; its outputs join the coupler.
    pub fn run<T: 'static, S: Outputs + 'static>(&self, mut call: StepCall<'_, T, S>) -> Result<RunResult<T>> {
        call.spec.place.parent = Some(self.id.clone());
        call.spec.place.scenario = Some(self.name.clone());
        let result = self.tracker.run(call);
        self.observe(result)
    }

    /// Call `f` with this scenario once per value, on all cores, results in the order of
    /// `values` (see [`Tracker::map`]): each call's runs are children of this scenario. Pass
    /// outputs between a call's steps explicitly (`r.output(..)`): the coupler is shared, so a
    /// key that several calls write holds whichever finished last.
    pub fn map<V, R, E, F>(&self, values: impl IntoIterator<Item = V>, f: F) -> std::result::Result<Vec<R>, E>
    where
        V: Send,
        R: Send,
        E: Send,
        F: Fn(&Scenario, V) -> std::result::Result<R, E> + Sync,
    {
        crate::tracker::map_on_all_cores(self, values, f)
    }

    /// Declare a closure step as a child of this scenario (see [`Tracker::step`]).
    pub fn step(&self, name: &str) -> StepBuilder<'_> {
        StepBuilder::in_scenario(self, name)
    }

    pub(crate) fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Add a finished child's outputs to the coupler, or note the failure in the header.
    pub(crate) fn observe<T>(&self, result: Result<RunResult<T>>) -> Result<RunResult<T>> {
        match &result {
            Ok(r) => {
                let mut coupler = self.coupler.lock().unwrap_or_else(|e| e.into_inner());
                for (key, artifact) in &r.outputs {
                    coupler.insert(key.clone(), artifact.clone());
                }
            }
            Err(e) => {
                let mut header = self.header.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(h) = header.as_mut() {
                    h.run.meta.insert("error".into(), Json::String(e.to_string()));
                    if let Error::StepFailed { step, run_id, .. } = e {
                        h.run.meta.insert("failed_step".into(), Json::String(step.clone()));
                        h.run.meta.insert("failed_run".into(), Json::String(run_id.clone()));
                    }
                }
            }
        }
        result
    }

    /// The latest artifact recorded under `key` in this scenario, if any: for optional inputs
    /// such as the previous iteration's state. A misspelt key also gives `None`, so a key that
    /// must exist belongs in [`Scenario::require`]. When nothing is found but a key of this
    /// scenario, or an output a registered `#[step]` declares, is one or two letters away, a
    /// warning names it (`did you mean`).
    pub fn get(&self, key: &str) -> Option<Artifact> {
        let coupler = self.coupler.lock().unwrap_or_else(|e| e.into_inner());
        let found = coupler.get(key).cloned();
        if found.is_none() {
            let declared = crate::registry::registered_steps().into_iter().flat_map(|s| s.outputs.iter().copied());
            let known: Vec<&str> = coupler.keys().map(String::as_str).chain(declared).collect();
            if let Some(near) = crate::names::nearest(key, known) {
                crate::logging::warning!(scenario = %self.name, "scenario.get(\"{key}\") found nothing; did you mean \"{near}\"?");
            }
        }
        found
    }

    /// The latest artifact recorded under `key`; an error lists the keys that exist.
    pub fn require(&self, key: &str) -> Result<Artifact> {
        let coupler = self.coupler.lock().unwrap_or_else(|e| e.into_inner());
        coupler.get(key).cloned().ok_or_else(|| unknown_key("coupler key", key, coupler.keys()))
    }

    /// Keys available in the coupler.
    pub fn keys(&self) -> Vec<String> {
        self.coupler.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// End the scenario: `completed`, or `failed` if a child step failed. Its header run is
    /// durable when this returns, and reaches the database with the tracker's next write (at the
    /// latest when the tracker is flushed or dropped), like every run: a sweep of many scenarios
    /// pays no database write per scenario.
    pub fn finish(self) -> Result<Run> {
        self.close(None)
    }

    fn close(&self, reason: Option<&str>) -> Result<Run> {
        let mut header = self.header.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut record) = header.take() else {
            return Err(Error::InvalidStep {
                step: self.id.clone(),
                reason: "the scenario was already finished".into(),
            });
        };
        if let Some(reason) = reason {
            record.run.meta.entry("error").or_insert_with(|| Json::String(reason.to_owned()));
        }
        record.run.end(if record.run.meta.contains_key("error") { RunStatus::Failed } else { RunStatus::Completed });
        self.tracker.inner.persist(&record)?;
        Ok(record.run)
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let open = self.header.lock().map(|h| h.is_some()).unwrap_or(false);
        if open && let Err(e) = self.close(Some("the scenario ended without finish() (an early return?)")) {
            crate::logging::warning!(scenario = %self.id, error = %e, "could not record the end of the scenario");
        }
    }
}
