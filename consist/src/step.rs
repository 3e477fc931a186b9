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
//! assert_eq!(result.value.0, 25);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::artifact::Artifact;
use crate::context::StepContext;
use crate::error::{Error, Result};
use crate::execute::BodyKind;
use crate::output::Outputs;
use crate::run::Run;
use crate::scenario::Scenario;
use crate::tracker::{CacheMode, Hydration, Tracker, Validation};

/// Any error a step body may return; `?` converts io, polars, consist and most other errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a step body returns.
pub type StepResult<T> = std::result::Result<T, BoxError>;

/// An input of a step: a raw file (hashed) or an artifact of an earlier run (Merkle link).
#[derive(Debug, Clone)]
pub enum Input {
    /// A file on disk, identified by its content (or size and mtime under `fast` hashing).
    File(PathBuf),
    /// An artifact recorded by an earlier run; contributes its producer's signature.
    Artifact(Artifact),
}

impl From<&Path> for Input {
    fn from(p: &Path) -> Input {
        Input::File(p.to_path_buf())
    }
}

impl From<PathBuf> for Input {
    fn from(p: PathBuf) -> Input {
        Input::File(p)
    }
}

impl From<&PathBuf> for Input {
    fn from(p: &PathBuf) -> Input {
        Input::File(p.clone())
    }
}

impl From<&str> for Input {
    fn from(p: &str) -> Input {
        Input::File(PathBuf::from(p))
    }
}

impl From<Artifact> for Input {
    fn from(a: Artifact) -> Input {
        Input::Artifact(a)
    }
}

impl From<&Artifact> for Input {
    fn from(a: &Artifact) -> Input {
        Input::Artifact(a.clone())
    }
}

/// An input that may be absent: any `Option` of what converts into an [`Input`], e.g.
/// `scenario.get("state")` (the latest artifact under a coupler key, if any), `Option<&Artifact>`
/// or `Option<PathBuf>`. A `#[step]` parameter typed `Option<&DataFrame>` (or `Option<&Path>`,
/// `Option<Artifact>`...) takes one; pass `None::<Artifact>` for an explicit absence. Absence is
/// part of the signature: the same step with and without the input are different runs.
#[derive(Debug, Clone)]
pub struct MaybeInput(pub Option<Input>);

impl<T: Into<Input>> From<Option<T>> for MaybeInput {
    fn from(input: Option<T>) -> MaybeInput {
        MaybeInput(input.map(Into::into))
    }
}

/// The key under which element `index` of the list input `name` is declared: `name[index]`.
pub(crate) fn list_key(name: &str, index: usize) -> String {
    format!("{name}[{index}]")
}

/// The outcome of running a step: its typed value, its run record and its output artifacts.
#[derive(Debug, Clone)]
pub struct RunResult<O> {
    /// The step's return value (loaded from the cache on a hit).
    pub value: O,
    /// The run recorded for this call (a new run, also on a hit).
    pub run: Run,
    /// Output artifacts by key.
    pub outputs: BTreeMap<String, Artifact>,
}

impl<O> RunResult<O> {
    /// Whether the body was skipped and recorded outputs were reused.
    pub fn cache_hit(&self) -> bool {
        self.run.is_cache_hit()
    }

    /// The output artifact recorded under `key`.
    pub fn output(&self, key: &str) -> Result<&Artifact> {
        self.outputs.get(key).ok_or_else(|| crate::names::unknown_key("output", key, self.outputs.keys()))
    }

    /// Convert the value, keeping the run and outputs.
    pub fn map<T>(self, f: impl FnOnce(O) -> T) -> RunResult<T> {
        RunResult { value: f(self.value), run: self.run, outputs: self.outputs }
    }
}

/// Everything that identifies and declares one step run, apart from its body.
#[derive(Debug)]
pub struct StepSpec {
    pub(crate) name: String,
    pub(crate) code_hash: Option<String>,
    /// What the code identity covers (label -> token hash), for `#[step]`s: recorded in the run's
    /// `meta.code_items` so a miss and `consist steps` can name the item that changed.
    pub(crate) code_items: BTreeMap<String, String>,
    /// Canonical config, or the first error met while building it.
    pub(crate) config: Result<serde_json::Value>,
    pub(crate) inputs: Vec<(String, Input)>,
    pub(crate) outputs: Vec<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) description: Option<String>,
    pub(crate) cache_mode: Option<CacheMode>,
    pub(crate) validation: Option<Validation>,
    pub(crate) hydration: Option<Hydration>,
    /// Config fields (dotted paths) recorded as queryable facets.
    pub(crate) facet_from: Vec<String>,
    /// Where the run sits: scenario parent, iteration, year, stage, phase (not hashed).
    pub(crate) place: Placement,
}

/// Where a run sits in a workflow: the shared schema's `parent_run_id`, `iteration`, `year`,
/// `stage` and `phase`. None of these is part of the signature, so iteration 3 of an extended
/// scenario reuses iteration 3 of an earlier one when its inputs and config are the same.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Placement {
    pub(crate) parent: Option<String>,
    /// Name of the scenario whose header is `parent` (for messages and miss explanations).
    pub(crate) scenario: Option<String>,
    pub(crate) iteration: Option<i32>,
    pub(crate) year: Option<i32>,
    pub(crate) stage: Option<String>,
    pub(crate) phase: Option<String>,
}

impl StepSpec {
    /// A step named `name` with no config (`null`), inputs or outputs yet.
    pub fn new(name: &str) -> StepSpec {
        StepSpec {
            name: name.to_owned(),
            code_hash: None,
            code_items: BTreeMap::new(),
            config: Ok(serde_json::Value::Null),
            inputs: Vec::new(),
            outputs: Vec::new(),
            tags: Vec::new(),
            description: None,
            cache_mode: None,
            validation: None,
            hydration: None,
            facet_from: Vec::new(),
            place: Placement::default(),
        }
    }

    fn canonical<C: Serialize + ?Sized>(&self, value: &C) -> Result<serde_json::Value> {
        crate::signature::config_hash(&self.name, value).map(|c| c.value)
    }

    /// Replace the whole config.
    pub(crate) fn set_config<C: Serialize + ?Sized>(&mut self, config: &C) {
        if self.config.is_ok() {
            self.config = self.canonical(config);
        }
    }

    /// Add one named field to an object config (what `#[step]` does per config argument).
    pub fn add_config<C: Serialize + ?Sized>(&mut self, key: &str, value: &C) {
        let value = self.canonical(value).map_err(|e| match e {
            // The value sits under `key`: say so in the path (`$.gamma`, not `$`).
            Error::Config { step, path, reason, fix } => {
                let path = format!("$.{key}{}", path.strip_prefix('$').unwrap_or(&path));
                Error::Config { step, path, reason, fix }
            }
            other => other,
        });
        self.config = match (std::mem::replace(&mut self.config, Ok(serde_json::Value::Null)), value) {
            (Ok(serde_json::Value::Object(mut map)), Ok(v)) => {
                map.insert(key.to_owned(), v);
                Ok(serde_json::Value::Object(map))
            }
            (Ok(serde_json::Value::Null), Ok(v)) => {
                Ok(serde_json::Value::Object([(key.to_owned(), v)].into_iter().collect()))
            }
            (Ok(other), Ok(_)) => Err(Error::InvalidStep {
                step: self.name.clone(),
                reason: format!("cannot add config field `{key}` to a config that is not an object ({other})"),
            }),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        };
    }

    /// Declare an input under `key`.
    pub fn add_input(&mut self, key: &str, input: impl Into<Input>) {
        self.inputs.push((key.to_owned(), input.into()));
    }

    /// Declare an input under `key` if it is present (see [`MaybeInput`]).
    pub fn add_optional_input(&mut self, key: &str, input: impl Into<MaybeInput>) {
        if let Some(input) = input.into().0 {
            self.add_input(key, input);
        }
    }

    /// Declare an ordered list of inputs under `key[0]`, `key[1]`, ...: each element is its own
    /// input (a Merkle link for an artifact), and their order is part of the signature.
    pub fn add_input_list<I: Into<Input>>(&mut self, key: &str, inputs: impl IntoIterator<Item = I>) {
        for (index, input) in inputs.into_iter().enumerate() {
            self.add_input(&list_key(key, index), input);
        }
    }

    pub(crate) fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidStep { step: self.name.clone(), reason: reason.into() }
    }

    /// Checks that need no I/O: name, code identity, unique keys, outputs matching the return type.
    pub(crate) fn check<O: Outputs>(&self) -> Result<()> {
        crate::names::check_name("step", &self.name)?;
        if self.code_hash.is_none() {
            return Err(self.invalid(
                "it has no code identity; call .code_version(\"1\") (bump it when the code changes) or use #[step]",
            ));
        }
        for (i, key) in self.outputs.iter().enumerate() {
            if self.outputs[..i].contains(key) {
                return Err(self.invalid(format!("output `{key}` is listed twice in `outputs`; keys must be unique")));
            }
        }
        for (i, (key, _)) in self.inputs.iter().enumerate() {
            if self.inputs[..i].iter().any(|(k, _)| k == key) {
                return Err(self.invalid(format!("input `{key}` is declared twice; give each input its own key")));
            }
        }
        if O::ARITY > 0 && O::ARITY != self.outputs.len() {
            return Err(Error::OutputArity {
                step: self.name.clone(),
                expected: O::ARITY,
                declared: self.outputs.len(),
                keys: self.outputs.join(", "),
            });
        }
        Ok(())
    }
}

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
        O: Outputs,
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
        O: Outputs,
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

impl Tracker {
    /// Run a `#[step]` call: a cache hit returns the recorded value without executing.
    pub fn run<T, S: Outputs>(&self, call: StepCall<'_, T, S>) -> Result<RunResult<T>> {
        let StepCall { spec, body, unwrap } = call;
        Ok(self.inner.run_spec(spec, body, BodyKind::Step)?.map(unwrap))
    }
}
