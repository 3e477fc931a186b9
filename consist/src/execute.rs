//! Executing a declared step: signature, cache lookup, running the body, recording the run.
//!
//! Order of writes for an executed run, so that a process killed at any instant never leaves a
//! false cache hit: `running` snapshot -> outputs written and fsynced -> `completed` snapshot ->
//! signature index entry. Only the last step makes the run a cache source.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use chrono::Utc;
use serde_json::{Map, Value as Json};

use crate::artifact::{Artifact, Driver};
use crate::context::StepContext;
use crate::error::{Error, Result};
use crate::index::IndexEntry;
use crate::output::Outputs;
use crate::run::{Run, RunRecord, RunStatus};
use crate::signature::{self, InputEntry};
use crate::step::{Input, RunResult, StepResult, StepSpec, unknown_key};
use crate::tracker::{CacheMode, TrackerInner, Validation};

/// A new run id: `<name>_<8 hex>`.
pub(crate) fn new_run_id(name: &str) -> String {
    format!("{name}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

type Loaded<O> = (O, BTreeMap<String, Artifact>);

/// Inputs as (declared key, artifact), and their signature entries.
type ResolvedInputs = (Vec<(String, Artifact)>, Vec<InputEntry>);

/// Load a cached run's outputs as `O`, checking every declared key was recorded.
fn load_cached<O: Outputs>(keys: &[String], entry: &IndexEntry) -> Result<Loaded<O>> {
    let found: BTreeMap<String, Artifact> = entry.outputs.iter().map(|a| (a.key.clone(), a.clone())).collect();
    if let Some(key) = keys.iter().find(|k| !found.contains_key(*k)) {
        return Err(unknown_key("output", key, found.keys()));
    }
    Ok((O::load(keys, &found)?, found))
}

/// Check that `path` holds the bytes recorded for `artifact` (exists, same blake3).
pub(crate) fn verify_hash(artifact: &Artifact, path: &std::path::Path) -> Result<()> {
    let fail = |reason: String| Error::OutputLoad {
        run_id: artifact.run_id.clone().unwrap_or_default(),
        key: artifact.key.clone(),
        path: path.to_path_buf(),
        reason,
    };
    let actual = crate::filehash::hash_file(path).map_err(|e| fail(format!("cannot be read ({e})")))?;
    match &artifact.hash {
        Some(recorded) if *recorded != actual => Err(fail("its bytes changed since they were recorded".into())),
        _ => Ok(()),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

impl TrackerInner {
    /// Run a declared step (see [`crate::StepBuilder::run`]).
    pub(crate) fn run_spec<O, F>(&self, spec: StepSpec, body: F) -> Result<RunResult<O>>
    where
        O: Outputs,
        F: FnOnce(&mut StepContext<'_>) -> StepResult<O>,
    {
        let started = Utc::now();
        let clock = Instant::now();
        spec.check::<O>()?;
        let StepSpec {
            name,
            code_hash,
            config,
            inputs,
            outputs: keys,
            tags,
            description,
            cache_mode,
            validation,
            place,
        } = spec;
        let validation = validation.unwrap_or(self.validation);
        let code_hash = code_hash.unwrap_or_default();
        let config = config?;
        let config_hash = signature::hash_config_value(&config);
        let mode = cache_mode.unwrap_or(self.cache_mode);
        let (inputs, entries) = self.resolve_inputs(&name, inputs)?;
        let input_hash = signature::input_hash(&entries);
        let sig = signature::signature(&name, &code_hash, &config_hash, &input_hash);

        let mut meta = Map::new();
        meta.insert("declared_outputs".into(), Json::from(keys.clone()));
        // An upstream artifact keeps its producer's key; remember the key this step reads it under.
        let input_keys: Map<String, Json> =
            inputs.iter().map(|(k, a)| (k.clone(), Json::String(a.id.clone()))).collect();
        meta.insert("inputs".into(), Json::Object(input_keys));
        let (input_keys, inputs): (Vec<String>, Vec<Artifact>) = inputs.into_iter().unzip();
        let record = RunRecord {
            format: crate::run::SNAPSHOT_FORMAT.to_owned(),
            run: Run {
                id: new_run_id(&name),
                parent_run_id: place.parent,
                status: RunStatus::Running,
                model_name: name.clone(),
                description,
                year: place.year,
                iteration: place.iteration,
                stage: place.stage,
                phase: place.phase,
                tags,
                config_hash,
                code_hash,
                input_hash,
                signature: sig.clone(),
                meta,
                started_at: started,
                ended_at: None,
                created_at: started,
                updated_at: started,
            },
            config,
            run_dir: self.run_dir.clone(),
            inputs,
            outputs: Vec::new(),
        };

        if mode != CacheMode::Overwrite
            && let Some(entry) = self.catalog.index.get(&sig)?
        {
            let usable = match validation {
                Validation::Eager => entry.outputs.iter().try_for_each(|a| verify_hash(a, &a.path)),
                Validation::Lazy => Ok(()),
            };
            match usable.and_then(|()| load_cached::<O>(&keys, &entry)) {
                Ok((value, outputs)) => return self.record_hit(record, entry, value, outputs, mode),
                Err(e) => {
                    tracing::warn!(step = %name, source = %entry.run_id, error = %e, "cached outputs unusable; executing again");
                    self.catalog.index.forget(&sig);
                }
            }
        }
        tracing::debug!(step = %name, signature = %sig, lookup_us = clock.elapsed().as_micros() as u64, "cache miss");
        self.execute(record, input_keys, keys, mode, body)
    }

    /// Resolve declared inputs into (key, artifact) pairs and their signature entries.
    fn resolve_inputs(&self, step: &str, inputs: Vec<(String, Input)>) -> Result<ResolvedInputs> {
        let mut artifacts = Vec::with_capacity(inputs.len());
        let mut entries = Vec::with_capacity(inputs.len());
        for (key, input) in inputs {
            let (artifact, identity) = match input {
                Input::Artifact(artifact) => {
                    let identity = artifact.input_identity().ok_or_else(|| Error::InvalidStep {
                        step: step.to_owned(),
                        reason: format!("input `{key}` is an artifact with neither a producing run nor a content hash"),
                    })?;
                    (artifact, identity)
                }
                Input::File(path) => {
                    let missing = |reason: String| Error::InputMissing {
                        step: step.to_owned(),
                        key: key.clone(),
                        path: path.clone(),
                        reason,
                    };
                    let abs = std::path::absolute(&path).map_err(|e| missing(e.to_string()))?;
                    let identity = self.files.identity(&abs, self.hashing).map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => missing("does not exist".into()),
                        _ => missing(format!("cannot be read ({e})")),
                    })?;
                    let hash = identity.strip_prefix("blake3:").map(str::to_owned);
                    let mut artifact = Artifact::for_file(&key, &abs, &self.run_dir, Driver::from_path(&abs), hash);
                    artifact.meta.insert("identity".into(), Json::String(identity.clone()));
                    (artifact, identity)
                }
            };
            entries.push(InputEntry { key: key.clone(), identity });
            artifacts.push((key, artifact));
        }
        Ok((artifacts, entries))
    }

    fn record_hit<O>(
        &self,
        mut record: RunRecord,
        entry: IndexEntry,
        value: O,
        outputs: BTreeMap<String, Artifact>,
        mode: CacheMode,
    ) -> Result<RunResult<O>> {
        let now = Utc::now();
        let run = &mut record.run;
        run.status = RunStatus::Completed;
        run.ended_at = Some(now);
        run.updated_at = now;
        run.meta.insert("cache_hit".into(), Json::Bool(true));
        run.meta.insert("cache_source".into(), Json::String(entry.run_id.clone()));
        record.outputs = entry.outputs;
        if mode == CacheMode::Readonly {
            record.run.meta.insert("recorded".into(), Json::Bool(false));
        } else {
            self.persist(&record)?;
        }
        tracing::debug!(step = %record.run.model_name, source = %entry.run_id, "cache hit");
        Ok(RunResult { value, run: record.run, outputs })
    }

    fn execute<O, F>(
        &self,
        mut record: RunRecord,
        input_keys: Vec<String>,
        keys: Vec<String>,
        mode: CacheMode,
        body: F,
    ) -> Result<RunResult<O>>
    where
        O: Outputs,
        F: FnOnce(&mut StepContext<'_>) -> StepResult<O>,
    {
        let recording = mode != CacheMode::Readonly;
        if recording {
            self.persist(&record)?;
        }
        let output_dir = if recording {
            self.run_dir.join("outputs").join(&record.run.id)
        } else {
            std::env::temp_dir().join("consist-readonly").join(&record.run.id)
        };
        let inputs = input_keys.into_iter().zip(record.inputs.iter().cloned()).collect();
        let mut ctx = StepContext::new(self, &record.run, output_dir, inputs);
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| body(&mut ctx)));
        let failed = |message: String| Error::StepFailed {
            step: record.run.model_name.clone(),
            run_id: record.run.id.clone(),
            message,
        };
        let result: std::result::Result<O, Error> = match outcome {
            Ok(Ok(mut value)) => value.record(&keys, &mut ctx).and_then(|()| ctx.check_declared(&keys)).map(|()| value),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(panic) => Err(failed(format!("panicked: {}", panic_message(panic.as_ref())))),
        };
        record.outputs = ctx.into_outputs();
        let now = Utc::now();
        record.run.ended_at = Some(now);
        record.run.updated_at = now;
        let value = match result {
            Ok(value) => value,
            Err(error) => {
                record.run.status = RunStatus::Failed;
                record.run.meta.insert("error".into(), Json::String(error.to_string()));
                if recording {
                    self.persist(&record)?;
                }
                return Err(error);
            }
        };
        record.run.status = RunStatus::Completed;
        if recording {
            self.persist(&record)?;
            self.catalog.index.put(IndexEntry {
                signature: record.run.signature.clone(),
                run_id: record.run.id.clone(),
                run_dir: self.run_dir.clone(),
                outputs: record.outputs.clone(),
            })?;
        } else {
            record.run.meta.insert("recorded".into(), Json::Bool(false));
        }
        let outputs = record.outputs.iter().map(|a| (a.key.clone(), a.clone())).collect();
        Ok(RunResult { value, run: record.run, outputs })
    }
}
