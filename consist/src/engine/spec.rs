//! What the engine runs: a declared step run ([`StepSpec`]: identity, inputs, outputs, place), the
//! cache policies, and what a body returns ([`StepResult`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::artifact::Artifact;
use crate::engine::output::Outputs;
use crate::error::{Error, Result};

/// How the cache is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// Reuse a completed run with the same signature; execute and record otherwise.
    #[default]
    Reuse,
    /// Always execute and record; the new run becomes the cache entry for its signature.
    Overwrite,
    /// Reuse hits, record nothing (no snapshot, no database row, no files in the run dir):
    /// for exploring a shared catalog without changing it. Misses execute with their outputs in a
    /// temporary directory.
    Readonly,
}

/// How much a cache hit trusts the recorded outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Validation {
    /// Check each recorded output file by its stat: while its size, mtime, inode and ctime are
    /// those seen when it was last hashed (in this process, or remembered beside the catalog), the
    /// recorded hash is trusted; a file that is gone or whose stat changed is hashed again and
    /// must match. An output that is gone or modified, returned or logged by hand, turns the hit
    /// into an execution, with the reason logged and recorded in `meta.cache_miss`.
    #[default]
    Lazy,
    /// Every recorded output file is read and must match its recorded blake3 hash, else the step
    /// executes again (costs one read of each output per hit; catches a change that kept the
    /// file's stat, such as bit rot or a tool that restores mtimes).
    Eager,
}

/// Which files are copied into a run's own directory, beyond the records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Hydration {
    /// Records only: a hit points at the files of the run it reuses; inputs are read where
    /// they were recorded.
    #[default]
    Metadata,
    /// On a miss, an input produced under another run directory whose file is missing from this
    /// tracker's run directory is copied here first (hash-checked), and the step reads the copy.
    InputsMissing,
    /// On a hit, the cached outputs are copied into the new run's directory
    /// (`<run_dir>/outputs/<run id>/`, hash-checked) and the returned artifacts point at the
    /// copies; the records still name the original artifacts.
    OutputsAll,
}

pub use crate::error::BoxError;

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

/// Remove the field at the dotted `path` (`solver.threads`) from an object config.
fn take_path(config: &mut serde_json::Value, path: &str) -> Option<serde_json::Value> {
    let (parents, last) = match path.rsplit_once('.') {
        Some((parents, last)) => (Some(parents), last),
        None => (None, path),
    };
    let mut node = config;
    for part in parents.into_iter().flat_map(|p| p.split('.')) {
        node = node.get_mut(part)?;
    }
    node.as_object_mut()?.remove(last)
}

/// The key under which element `index` of the list input `name` is declared: `name[index]`.
pub(crate) fn list_key(name: &str, index: usize) -> String {
    format!("{name}[{index}]")
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
    /// The toolchain it was compiled with (`#[step]` captures it); else the tracker's.
    pub(crate) toolchain: Option<crate::Toolchain>,
    /// Values that do not change results (thread counts, log levels): recorded in the run's
    /// `meta.runtime`, never signed. See [`StepSpec::add_runtime`].
    pub(crate) runtime: BTreeMap<String, serde_json::Value>,
    /// Config fields (dotted paths) moved out of the signed config into [`Self::runtime`].
    pub(crate) ignored: Vec<String>,
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

impl Placement {
    /// Where the run sits, as miss explanations compare it (its scenario by name, not by header
    /// run).
    pub(crate) fn place(&self) -> crate::catalog::explain::Place {
        crate::catalog::explain::Place {
            scenario: self.scenario.clone(),
            iteration: self.iteration,
            year: self.year,
            stage: self.stage.clone(),
            phase: self.phase.clone(),
        }
    }
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
            toolchain: None,
            runtime: BTreeMap::new(),
            ignored: Vec::new(),
        }
    }

    /// Record `value` under `key` in the run's `meta.runtime`, outside the signature: a parameter
    /// that does not change results (`#[consist(runtime)]` does this per parameter). Changing it
    /// never invalidates the cache, and `consist show`, `diff` and `explain` show it. A value
    /// that does not serialize is recorded as its type's name.
    pub fn add_runtime<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        let recorded = serde_json::to_value(value)
            .unwrap_or_else(|_| serde_json::Value::String(format!("<{}>", std::any::type_name::<T>())));
        self.runtime.insert(key.to_owned(), recorded);
    }

    /// The config to sign: the declared one without its ignored fields, which move to
    /// [`Self::runtime`] under their dotted paths. An ignored field the config lacks is an error
    /// naming the fields it has.
    pub(crate) fn take_signed_config(&mut self) -> Result<serde_json::Value> {
        let mut config = std::mem::replace(&mut self.config, Ok(serde_json::Value::Null))?;
        for path in std::mem::take(&mut self.ignored) {
            let Some(value) = take_path(&mut config, &path) else {
                let known: Vec<String> = crate::facet::flatten(&config).into_keys().collect();
                let near = crate::names::nearest(&path, known.iter().map(String::as_str))
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                return Err(self.invalid(format!(
                    "ignore_config_keys names `{path}`, a field its config does not have (its fields: [{}]){near}",
                    known.join(", ")
                )));
            };
            self.runtime.insert(path, value);
        }
        Ok(config)
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
            crate::names::check_key("output key", key)?;
            if self.outputs[..i].contains(key) {
                return Err(self.invalid(format!("output `{key}` is listed twice in `outputs`; keys must be unique")));
            }
        }
        for (i, (key, _)) in self.inputs.iter().enumerate() {
            crate::names::check_key("input key", key)?;
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
