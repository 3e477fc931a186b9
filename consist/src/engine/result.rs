//! What a step run returns ([`RunResult`]): its run, its output artifacts and its typed value,
//! which a cache hit loads from the recorded outputs only when something reads it.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use crate::artifact::Artifact;
use crate::engine::output::Outputs;
use crate::error::Result;
use crate::run::Run;

/// Reads a hit's value from the output artifacts validated with it.
type Loader<O> = Arc<dyn Fn() -> Result<O> + Send + Sync>;

/// The value of a run: returned by its body, or not loaded yet.
enum Held<O> {
    /// Returned by the body, or loaded when the hit was found.
    Ready(O),
    /// A cache hit's value, loaded on the first read and kept.
    Recorded(Loader<O>, OnceLock<O>),
}

impl<O> Held<O> {
    /// The value, loaded now if it was not yet.
    fn into_inner(self) -> Result<O> {
        match self {
            Held::Ready(value) => Ok(value),
            Held::Recorded(load, cell) => match cell.into_inner() {
                Some(value) => Ok(value),
                None => load(),
            },
        }
    }
}

/// The outcome of running a step: its run record, its output artifacts and its typed value.
///
/// On a cache hit, a value whose load costs more than the hit itself (a frame, or a tuple or
/// `#[derive(Outputs)]` struct holding one; [`crate::Output::DEFERRED`]) is read from its
/// recorded files by the first [`RunResult::value`] or [`RunResult::into_value`], not before: a
/// step whose result only feeds later steps (through [`RunResult::output`] or a scenario's
/// coupler) never reads it. With the hit, every output was validated and checked
/// ([`crate::Output::check`]: a frame's Parquet footer parses, any other output loads), and one
/// that fails makes the run a miss that executes; the read then uses those artifacts (not
/// [`RunResult::outputs`], which the caller may change), and a file removed since is an error
/// at that read.
pub struct RunResult<O> {
    /// The run recorded for this call (a new run, also on a hit).
    pub run: Run,
    /// Output artifacts by key.
    pub outputs: BTreeMap<String, Artifact>,
    held: Held<O>,
}

impl<O> RunResult<O> {
    /// A run whose value is at hand (executed, or loaded with its hit).
    pub(crate) fn ready(value: O, run: Run, outputs: BTreeMap<String, Artifact>) -> Self {
        RunResult { run, outputs, held: Held::Ready(value) }
    }

    /// Whether the body was skipped and recorded outputs were reused.
    pub fn cache_hit(&self) -> bool {
        self.run.is_cache_hit()
    }

    /// The output artifact recorded under `key`.
    pub fn output(&self, key: &str) -> Result<&Artifact> {
        self.outputs.get(key).ok_or_else(|| crate::names::unknown_key("output", key, self.outputs.keys()))
    }

    /// The step's value: returned by its body, or, on a cache hit, loaded from the recorded
    /// outputs on the first call (an error if they cannot be read now).
    pub fn value(&self) -> Result<&O> {
        match &self.held {
            Held::Ready(value) => Ok(value),
            Held::Recorded(load, cell) => match cell.get() {
                Some(value) => Ok(value),
                None => {
                    let value = load()?;
                    Ok(cell.get_or_init(|| value))
                }
            },
        }
    }

    /// The step's value, owned (see [`RunResult::value`]).
    pub fn into_value(self) -> Result<O> {
        self.held.into_inner()
    }

    /// Convert the value, keeping the run and outputs (a hit's value is loaded first).
    pub fn map<T>(self, f: impl FnOnce(O) -> T) -> Result<RunResult<T>> {
        let RunResult { run, outputs, held } = self;
        Ok(RunResult::ready(f(held.into_inner()?), run, outputs))
    }

    /// The run and outputs without the value (nothing is loaded).
    pub fn discard_value(self) -> RunResult<()> {
        RunResult::ready((), self.run, self.outputs)
    }
}

impl<S: Outputs + 'static> RunResult<S> {
    /// A cache hit's run whose value is loaded from `outputs` (under the declared `keys`) when
    /// first read.
    pub(crate) fn recorded(keys: Vec<String>, run: Run, outputs: BTreeMap<String, Artifact>) -> Self {
        // The artifacts validated with the hit, whatever is done to `outputs` meanwhile.
        let validated = outputs.clone();
        let load: Loader<S> = Arc::new(move || S::load(&keys, &validated).map_err(after_the_hit));
        RunResult { run, outputs, held: Held::Recorded(load, OnceLock::new()) }
    }

    /// Convert a stored value into the type a `#[step]` function returns, without loading it.
    pub(crate) fn unwrapped<T: 'static>(self, unwrap: fn(S) -> T) -> RunResult<T> {
        let held = match self.held {
            Held::Ready(value) => Held::Ready(unwrap(value)),
            Held::Recorded(load, cell) => {
                let loaded = OnceLock::new();
                if let Some(value) = cell.into_inner() {
                    let _ = loaded.set(unwrap(value));
                }
                Held::Recorded(Arc::new(move || load().map(unwrap)), loaded)
            }
        };
        RunResult { run: self.run, outputs: self.outputs, held }
    }
}

/// A hit's output that could not be read when its value was: say what to do, since the hit
/// itself was fine when it was found.
fn after_the_hit(error: crate::Error) -> crate::Error {
    match error {
        crate::Error::OutputLoad { run_id, key, path, reason } => crate::Error::OutputLoad {
            run_id,
            key,
            path,
            reason: format!(
                "{reason} (it was there when the cache hit was found; run the step again: a hit whose \
                 outputs are gone or changed executes)"
            ),
        },
        other => other,
    }
}

impl<O: Clone> Clone for RunResult<O> {
    fn clone(&self) -> Self {
        let held = match &self.held {
            Held::Ready(value) => Held::Ready(value.clone()),
            Held::Recorded(load, cell) => Held::Recorded(load.clone(), cell.clone()),
        };
        RunResult { run: self.run.clone(), outputs: self.outputs.clone(), held }
    }
}

impl<O: std::fmt::Debug> std::fmt::Debug for RunResult<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("RunResult");
        s.field("run", &self.run).field("outputs", &self.outputs);
        match &self.held {
            Held::Ready(value) => s.field("value", value),
            Held::Recorded(_, cell) => match cell.get() {
                Some(value) => s.field("value", value),
                None => s.field("value", &format_args!("(recorded, not loaded yet)")),
            },
        };
        s.finish()
    }
}
