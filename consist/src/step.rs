//! Declaring a step run: its identity (name, code, config), inputs and outputs.
//!
//! Two ways in, one machinery: `#[step]` functions produce a [`StepCall`] (run it with
//! [`Tracker::run`]); closures go through [`Tracker::step`] and a [`StepBuilder`]:
//!
//! ```no_run
//! use consist::{Tracker, Value};
//! # fn main() -> consist::Result<()> {
//! let tracker = Tracker::builder("./runs").open()?;
//! let result = tracker
//!     .step("square")
//!     .code_version("1")
//!     .config(&serde_json::json!({"value": 5}))
//!     .outputs(["squared"])
//!     .run(|_ctx| Ok(Value(5 * 5)))?;
//! assert_eq!(result.value()?.0, 25);
//! # Ok(()) }
//! ```

use serde::Serialize;

use crate::engine::RunResult;
use crate::engine::context::StepContext;
use crate::engine::execute::BodyKind;
use crate::engine::output::Outputs;
use crate::engine::spec::{Input, StepResult, StepSpec};
use crate::engine::{CacheMode, Hydration, Validation};
use crate::error::{Error, Result};
use crate::scenario::Scenario;
use crate::tracker::Tracker;

/// Options shared by [`StepBuilder`] and [`StepCall`] (tags, description, cache mode).
macro_rules! spec_options {
    () => {
        /// Add a tag (not part of the signature).
        pub fn tag(mut self, tag: &str) -> Self {
            self.spec.tags.push(tag.to_owned());
            self
        }

        /// A description (not part of the signature).
        pub fn description(mut self, text: &str) -> Self {
            self.spec.description = Some(text.to_owned());
            self
        }

        /// Override the tracker's cache mode for this run.
        pub fn cache_mode(mut self, mode: CacheMode) -> Self {
            self.spec.cache_mode = Some(mode);
            self
        }

        /// Override the tracker's validation of cache hits for this run.
        pub fn validation(mut self, validation: Validation) -> Self {
            self.spec.validation = Some(validation);
            self
        }

        /// Override the tracker's cache hydration for this run.
        pub fn hydration(mut self, hydration: Hydration) -> Self {
            self.spec.hydration = Some(hydration);
            self
        }

        /// Record these config fields (dotted paths, e.g. `"beta_time"` or `"zone.count"`) as
        /// facets: queryable with [`RunQuery::facet`](crate::RunQuery::facet), not part of the
        /// signature. A path that is not in the config is an error listing the ones that are.
        pub fn facet_from<I, K>(mut self, keys: I) -> Self
        where
            I: IntoIterator<Item = K>,
            K: Into<String>,
        {
            self.spec.facet_from.extend(keys.into_iter().map(Into::into));
            self
        }

        /// The iteration this run belongs to (recorded, not hashed).
        pub fn iteration(mut self, iteration: i32) -> Self {
            self.spec.place.iteration = Some(iteration);
            self
        }

        /// The model year this run belongs to (recorded, not hashed).
        pub fn year(mut self, year: i32) -> Self {
            self.spec.place.year = Some(year);
            self
        }

        /// A stage label (recorded, not hashed).
        pub fn stage(mut self, stage: &str) -> Self {
            self.spec.place.stage = Some(stage.to_owned());
            self
        }

        /// A phase label (recorded, not hashed).
        pub fn phase(mut self, phase: &str) -> Self {
            self.spec.place.phase = Some(phase.to_owned());
            self
        }
    };
}

/// Declares one closure step run; finish with [`run`](Self::run).
#[must_use = "a step does nothing until .run(..) is called"]
pub struct StepBuilder<'t> {
    tracker: &'t Tracker,
    spec: StepSpec,
    scenario: Option<&'t Scenario>,
    /// The first declaration error, reported by `run`/`trace` before anything is recorded.
    error: Option<Error>,
}

impl std::fmt::Debug for StepBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepBuilder").field("step", &self.spec.name).finish_non_exhaustive()
    }
}

impl<'t> StepBuilder<'t> {
    pub(crate) fn new(tracker: &'t Tracker, name: &str) -> StepBuilder<'t> {
        StepBuilder { tracker, spec: StepSpec::new(name), scenario: None, error: None }
    }

    pub(crate) fn in_scenario(scenario: &'t Scenario, name: &str) -> StepBuilder<'t> {
        let mut spec = StepSpec::new(name);
        spec.place.parent = Some(scenario.id().to_owned());
        spec.place.scenario = Some(scenario.name().to_owned());
        StepBuilder { tracker: scenario.tracker(), spec, scenario: Some(scenario), error: None }
    }

    /// Explicit code identity: change it whenever the step's code changes meaningfully.
    /// (`#[step]` derives it from the function's tokens instead.)
    pub fn code_version(mut self, version: &str) -> Self {
        self.spec.code_hash = Some(crate::signature::code_hash_for_version(version));
        self
    }

    /// Code identity from `#[helper]` functions: pass `my_helper::code_hash()`, so that editing
    /// the helper (not its comments or layout) invalidates this step.
    pub fn code_hash(mut self, hash: impl Into<String>) -> Self {
        self.spec.code_hash = Some(hash.into());
        self
    }

    /// The config hashed into the signature: any `Serialize` value, as canonical JSON (object keys
    /// sorted, no whitespace; NaN and infinities are refused).
    pub fn config<C: Serialize + ?Sized>(mut self, config: &C) -> Self {
        self.spec.set_config(config);
        self
    }

    /// Record `value` under `key` in the run (`meta.runtime`) but not in its signature: a
    /// setting that does not change results, such as a thread count. Changing it never
    /// invalidates the cache; `consist show`, `diff` and `explain` show it.
    pub fn runtime<T: Serialize + ?Sized>(mut self, key: &str, value: &T) -> Self {
        self.spec.add_runtime(key, value);
        self
    }

    /// Keep these config fields (dotted paths, `solver.threads`) out of the signature: they are
    /// recorded in the run's `meta.runtime` instead, so a run that differs only in them is a hit.
    /// A field the config does not have is an error naming the fields it has. Only for settings
    /// that cannot change results: a wrong entry here makes stale hits.
    pub fn ignore_config_keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.spec.ignored.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Declare an input under `key`: a file path or an artifact from an earlier result.
    pub fn input(mut self, key: &str, input: impl Into<Input>) -> Self {
        self.spec.add_input(key, input);
        self
    }

    /// Declare an input under `key` from the scenario's coupler: the latest artifact recorded
    /// under `coupler_key`. A missing key is an error listing the keys that exist.
    pub fn input_key(self, key: &str, coupler_key: &str) -> Self {
        self.coupled(key, coupler_key, true)
    }

    /// Like [`input_key`](Self::input_key), but skipped while the coupler has no `coupler_key`
    /// (e.g. the previous iteration's output, absent in iteration 0).
    pub fn optional_input_key(self, key: &str, coupler_key: &str) -> Self {
        self.coupled(key, coupler_key, false)
    }

    fn coupled(mut self, key: &str, coupler_key: &str, required: bool) -> Self {
        let Some(scenario) = self.scenario else {
            let reason =
                format!("input_key(`{key}`) reads a scenario's coupler; declare the step with scenario.step(..)");
            self.error.get_or_insert(self.spec.invalid(reason));
            return self;
        };
        match (scenario.get(coupler_key), required) {
            (Some(artifact), _) => self.spec.add_input(key, artifact),
            (None, true) => {
                if let Err(e) = scenario.require(coupler_key) {
                    self.error.get_or_insert(e);
                }
            }
            (None, false) => {}
        }
        self
    }

    /// The output keys, in the order of the returned value's parts.
    pub fn outputs<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec.outputs = keys.into_iter().map(Into::into).collect();
        self
    }

    spec_options!();

    /// Run the step: on a cache hit the body is skipped and `O` is loaded from the recorded
    /// outputs; otherwise the body runs and its outputs are recorded. A body that returns an error
    /// or panics is recorded as `failed` and reported as [`Error::StepFailed`].
    pub fn run<O, F>(self, body: F) -> Result<RunResult<O>>
    where
        O: Outputs + 'static,
        F: FnOnce(&mut StepContext<'_>) -> StepResult<O>,
    {
        self.finish(body, BodyKind::Step)
    }

    /// Run `body` as a trace: unlike [`run`](Self::run) it executes on a cache hit too, and
    /// [`StepContext::is_cached`] tells it so. Inline code guards its work with
    /// `if !ctx.is_cached() { ... }` and logs the declared outputs by hand
    /// ([`StepContext::log_frame`] and friends); on a hit the recorded outputs come back in the
    /// result (and through [`StepContext::cached_output`]), and logging is an error.
    ///
    /// ```no_run
    /// # fn main() -> consist::Result<()> {
    /// # let tracker = consist::Tracker::builder("./runs").open()?;
    /// let result = tracker.step("logsums").code_version("1").outputs(["logsums"]).trace(|t| {
    ///     if !t.is_cached() {
    ///         let mut df = polars::df!("logsum" => [0.5, 0.7])?;
    ///         t.log_frame("logsums", &mut df)?;
    ///     }
    ///     Ok(())
    /// })?;
    /// let logsums = result.output("logsums")?;
    /// # Ok(()) }
    /// ```
    pub fn trace<F>(self, body: F) -> Result<RunResult<()>>
    where
        F: FnOnce(&mut StepContext<'_>) -> StepResult<()>,
    {
        self.finish(body, BodyKind::Trace)
    }

    fn finish<O, F>(self, body: F, kind: BodyKind) -> Result<RunResult<O>>
    where
        O: Outputs + 'static,
        F: FnOnce(&mut StepContext<'_>) -> StepResult<O>,
    {
        let result = match self.error {
            Some(error) => Err(error),
            None => self.tracker.inner.run_spec(self.spec, body, kind),
        };
        match self.scenario {
            Some(scenario) => scenario.observe(result),
            None => result,
        }
    }
}

/// The boxed body of a [`StepCall`].
pub(crate) type StepBody<'a, S> = Box<dyn FnOnce(&mut StepContext<'_>) -> StepResult<S> + 'a>;

/// A prepared call of a `#[step]` function: run it with [`Tracker::run`].
///
/// `T` is the function's own return type; `S` is how it is stored (e.g. `Value<T>` for plain
/// values), which only generated code names.
#[must_use = "a step call does nothing until passed to Tracker::run"]
pub struct StepCall<'a, T, S> {
    pub(crate) spec: StepSpec,
    pub(crate) body: StepBody<'a, S>,
    pub(crate) unwrap: fn(S) -> T,
}

impl<T, S> std::fmt::Debug for StepCall<'_, T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepCall").field("step", &self.spec.name).finish_non_exhaustive()
    }
}

impl<'a, T, S> StepCall<'a, T, S> {
    /// An extra config value hashed beside the arguments (stored under the key `@extra`).
    pub fn extra_config<C: Serialize + ?Sized>(mut self, config: &C) -> Self {
        self.spec.add_config("@extra", config);
        self
    }

    spec_options!();
}
