//! The step context: what a running step body can use (run id, inputs, output directory, logging).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::artifact::{Artifact, Driver};
use crate::engine::Engine;
use crate::engine::output::Output;
use crate::error::{Error, Result};
use crate::names::unknown_key;
use crate::run::Run;

/// What a running step body can use: its run id, inputs, output directory and logging of outputs.
pub struct StepContext<'a> {
    tracker: &'a Engine,
    step: String,
    run_id: String,
    signature: String,
    output_dir: PathBuf,
    inputs: BTreeMap<String, Artifact>,
    outputs: Vec<Artifact>,
    /// For a trace on a cache hit: the recorded outputs.
    cached: Option<BTreeMap<String, Artifact>>,
}

impl std::fmt::Debug for StepContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("step", &self.step)
            .field("run_id", &self.run_id)
            .field("output_dir", &self.output_dir)
            .finish_non_exhaustive()
    }
}

impl<'a> StepContext<'a> {
    pub(crate) fn new(tracker: &'a Engine, run: &Run, output_dir: PathBuf, inputs: BTreeMap<String, Artifact>) -> Self {
        StepContext {
            tracker,
            step: run.model_name.clone(),
            run_id: run.id.clone(),
            signature: run.signature.clone(),
            output_dir,
            inputs,
            outputs: Vec::new(),
            cached: None,
        }
    }

    /// Mark the context of a trace whose signature is cached.
    pub(crate) fn with_cached(mut self, outputs: BTreeMap<String, Artifact>) -> Self {
        self.cached = Some(outputs);
        self
    }

    /// Whether this run is a cache hit (only a trace body ever runs on a hit): skip the work and
    /// log nothing; the recorded outputs are in [`cached_output`](Self::cached_output).
    pub fn is_cached(&self) -> bool {
        self.cached.is_some()
    }

    /// On a cache hit, the recorded output `key`.
    pub fn cached_output(&self, key: &str) -> Result<&Artifact> {
        match &self.cached {
            Some(outputs) => outputs.get(key).ok_or_else(|| unknown_key("cached output", key, outputs.keys())),
            None => Err(Error::InvalidStep {
                step: self.step.clone(),
                reason: format!("cached_output(`{key}`) was called but this run is not a cache hit; check is_cached()"),
            }),
        }
    }

    /// The outputs logged so far (consumes the context at the end of the run).
    pub(crate) fn into_outputs(self) -> Vec<Artifact> {
        self.outputs
    }

    /// Id of the run being executed.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Signature of the run being executed.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// This run's own output directory (`<run_dir>/outputs/<run_id>`), created on first use.
    pub fn output_dir(&self) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.output_dir).map_err(Error::io("creating output directory", &self.output_dir))?;
        Ok(self.output_dir.clone())
    }

    /// The input artifact declared under `key`.
    pub fn input(&self, key: &str) -> Result<&Artifact> {
        self.inputs.get(key).ok_or_else(|| unknown_key("input", key, self.inputs.keys()))
    }

    /// Whether an input is declared under `key` (an optional input that is present).
    pub fn has_input(&self, key: &str) -> bool {
        self.inputs.contains_key(key)
    }

    /// The artifacts of the list input `name` (declared as `name[0]`, `name[1]`, ...), in order;
    /// empty if none was given.
    pub fn input_list(&self, name: &str) -> Vec<&Artifact> {
        (0..).map_while(|i| self.inputs.get(&crate::engine::spec::list_key(name, i))).collect()
    }

    /// Path of the input declared under `key`.
    pub fn input_path(&self, key: &str) -> Result<&Path> {
        self.input(key).map(|a| a.path.as_path())
    }

    /// Load the input `key` as `T`: `DataFrame` (Parquet or CSV), `PathBuf`, or `Value<T>`,
    /// checking first that its file still holds the recorded bytes (as [`crate::Tracker::load`]).
    pub fn load<T: Output>(&self, key: &str) -> Result<T> {
        self.tracker.load_verified(self.input(key)?)
    }

    /// Check that output `key` may be logged now (before any file is written).
    fn check_loggable(&self, key: &str) -> Result<()> {
        crate::names::check_key("output key", key)?;
        if self.cached.is_some() {
            return Err(Error::InvalidStep {
                step: self.step.clone(),
                reason: format!(
                    "output `{key}` was logged although this trace is a cache hit; guard the work with `if !ctx.is_cached()`"
                ),
            });
        }
        if self.outputs.iter().any(|a| a.key == key) {
            return Err(Error::InvalidStep {
                step: self.step.clone(),
                reason: format!("output `{key}` was logged twice; each output key is logged once"),
            });
        }
        Ok(())
    }

    fn new_artifact(&self, key: &str, path: &Path, driver: Driver, hash: String) -> Result<Artifact> {
        self.tracker.files.record(path, &hash);
        let uri = self.tracker.catalog.mounts().uri_for(path, &self.tracker.run_dir);
        let mut artifact = Artifact::for_file(key, path, uri, driver, Some(hash));
        artifact.run_id = Some(self.run_id.clone());
        artifact.producer_signature = Some(self.signature.clone());
        Ok(artifact)
    }

    fn push(&mut self, artifact: Artifact) -> Artifact {
        self.outputs.push(artifact.clone());
        artifact
    }

    /// Write `df` as `<key>.parquet` in the output directory and record it as output `key`.
    pub fn log_frame(&mut self, key: &str, df: &mut DataFrame) -> Result<Artifact> {
        self.check_loggable(key)?;
        let path = self.output_dir()?.join(format!("{key}.parquet"));
        crate::files::frame::write_parquet(key, df, &path)?;
        let hash = crate::files::hash::hash_file(&path).map_err(Error::io("hashing output", &path))?;
        let mut artifact = self.new_artifact(key, &path, Driver::Parquet, hash)?;
        artifact.meta.insert("rows".into(), Json::from(df.height()));
        artifact.meta.insert("columns".into(), Json::from(df.width()));
        Ok(self.push(artifact))
    }

    /// Record an existing file as output `key` (hashed by content, synced to disk).
    pub fn log_file(&mut self, key: &str, path: &Path) -> Result<Artifact> {
        self.check_loggable(key)?;
        let abs = std::path::absolute(path).map_err(Error::io("resolving output", path))?;
        let file = std::fs::File::open(&abs).map_err(|e| Error::OutputLoad {
            run_id: self.run_id.clone(),
            key: key.to_owned(),
            path: abs.clone(),
            reason: format!(
                "the step returned this path but it cannot be opened ({e}); write the file before returning it"
            ),
        })?;
        file.sync_all().map_err(Error::io("syncing output", &abs))?;
        let hash = crate::files::hash::hash_file(&abs).map_err(Error::io("hashing output", &abs))?;
        let driver = Driver::from_path(&abs);
        let artifact = self.new_artifact(key, &abs, driver, hash)?;
        Ok(self.push(artifact))
    }

    /// Record an existing directory as output `key` (a Zarr store, a shapefile set, a model's
    /// output folder): its identity is its tree (sorted relative paths and each file's blake3),
    /// a cache hit checks every file, a consumer gets the directory. Symlinks inside are refused.
    /// Write it under [`StepContext::output_dir`] so that it is this run's own.
    pub fn log_dir(&mut self, key: &str, path: &Path) -> Result<Artifact> {
        self.check_loggable(key)?;
        let abs = std::path::absolute(path).map_err(Error::io("resolving output", path))?;
        let unusable = |reason: String| Error::OutputLoad {
            run_id: self.run_id.clone(),
            key: key.to_owned(),
            path: abs.clone(),
            reason,
        };
        if !abs.is_dir() {
            return Err(unusable(
                "it is not a directory; write the directory before logging it (a file: log_file)".into(),
            ));
        }
        let identity = self
            .tracker
            .files
            .identity(&abs, crate::files::hash::HashingStrategy::Full)
            .map_err(|e| unusable(e.to_string()))?;
        let hash = identity.strip_prefix("blake3:").unwrap_or(&identity).to_owned();
        let mut artifact = self.new_artifact(key, &abs, Driver::Directory, hash)?;
        let (files, bytes) = crate::files::tree::size(&abs);
        artifact.meta.insert("files".into(), Json::from(files));
        artifact.meta.insert("bytes".into(), Json::from(bytes));
        Ok(self.push(artifact))
    }

    /// Remember the blake3 of a file this step just wrote, so hashing it again (as part of a
    /// directory artifact, or as an input) reads the remembered hash while the file is unchanged.
    pub(crate) fn remember_hash(&self, path: &Path, hash: &str) {
        self.tracker.files.record(path, hash);
    }

    /// Replace the recorded output under `artifact.key` (its meta grew after it was logged).
    pub(crate) fn replace_output(&mut self, artifact: Artifact) {
        if let Some(output) = self.outputs.iter_mut().find(|a| a.key == artifact.key) {
            *output = artifact;
        }
    }

    /// Store a typed value as output `key` with the value codec (`<key>.bin`). A value that would
    /// not read back as itself (see the guide: `skip_serializing_if`, `untagged`, ...) is an
    /// [`Error::Codec`] naming its type.
    pub fn log_value<T: Serialize + DeserializeOwned>(&mut self, key: &str, value: &T) -> Result<Artifact> {
        self.check_loggable(key)?;
        let bytes = crate::files::codec::encode(key, value)?;
        let path = self.output_dir()?.join(format!("{key}.bin"));
        crate::files::atomic::write_atomic(&path, &bytes, true).map_err(Error::io("writing value output", &path))?;
        let hash = blake3::hash(&bytes).to_hex().to_string();
        let mut artifact = self.new_artifact(key, &path, Driver::Bincode, hash)?;
        artifact.meta.extend(crate::files::codec::meta::<T>());
        Ok(self.push(artifact))
    }

    pub(crate) fn check_declared(&self, keys: &[String]) -> Result<()> {
        match keys.iter().find(|k| !self.outputs.iter().any(|a| &a.key == *k)) {
            None => Ok(()),
            Some(key) => Err(Error::OutputMissing {
                step: self.step.clone(),
                key: key.clone(),
                produced: self.outputs.iter().map(|a| a.key.as_str()).collect::<Vec<_>>().join(", "),
            }),
        }
    }
}
