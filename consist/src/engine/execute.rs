//! Executing a declared step: signature, cache lookup, running the body, recording the run.
//!
//! Order of writes for an executed run, so that a process killed at any instant never leaves a
//! false cache hit: `running` snapshot -> outputs written and fsynced -> `completed` snapshot ->
//! signature index entry. Only the last step makes the run a cache source.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use chrono::Utc;
use serde_json::{Map, Value as Json};

use crate::artifact::{Artifact, Driver};
use crate::catalog::explain::{Footprint, MissExplanation, Place};
use crate::catalog::index::{IndexEntry, input_hashes};
use crate::engine::RunResult;
use crate::engine::context::StepContext;
use crate::engine::output::{Output, Outputs};
use crate::engine::spec::{Input, Placement, StepResult, StepSpec};
use crate::engine::{CacheMode, Engine, Hydration, Validation};
use crate::error::{Error, Result};
use crate::names::unknown_key;
use crate::run::{Run, RunRecord, RunStatus};
use crate::signature::{self, CACHE_EPOCH_ITEM, InputEntry};

/// Inputs as (declared key, artifact), and their signature entries.
type ResolvedInputs = (Vec<(String, Artifact)>, Vec<InputEntry>);

/// How a body relates to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// Skipped on a hit.
    Step,
    /// Runs on a hit too, told through [`StepContext::is_cached`]; must not log outputs then.
    Trace,
}

/// A cached run's outputs by key, checking every declared key was recorded, and its value as
/// `O`; unless `O` is loaded when first read ([`Outputs::DEFERRED`]): then only checked.
fn load_cached<O: Outputs>(keys: &[String], entry: &IndexEntry) -> Result<(Option<O>, BTreeMap<String, Artifact>)> {
    let found: BTreeMap<String, Artifact> = entry.outputs.iter().map(|a| (a.key.clone(), a.clone())).collect();
    if let Some(key) = keys.iter().find(|k| !found.contains_key(*k)) {
        return Err(unknown_key("output", key, found.keys()));
    }
    let value = if O::DEFERRED {
        // Checked now (a failure is a miss), read when first asked for.
        O::check(keys, &found)?;
        None
    } else {
        Some(O::load(keys, &found)?)
    };
    Ok((value, found))
}

/// Check that `path` holds the bytes recorded for `artifact` (exists, same blake3), reading it all.
pub(crate) fn verify_hash(artifact: &Artifact, path: &std::path::Path) -> Result<()> {
    let actual = crate::files::hash::hash_file(path).map_err(|e| Error::output_io(artifact, path, &e))?;
    compare_hash(artifact, path, &actual)
}

fn compare_hash(artifact: &Artifact, path: &std::path::Path, actual: &str) -> Result<()> {
    match &artifact.hash {
        Some(recorded) if recorded != actual => Err(Error::output_unusable(
            artifact,
            path,
            format!("its bytes changed since they were recorded (recorded blake3 {recorded}, now {actual})"),
        )),
        _ => Ok(()),
    }
}

impl Engine {
    /// Check that `artifact`'s file still holds its recorded bytes, trusting the remembered hash
    /// while the file's size, mtime, inode and ctime are unchanged (one stat), else hashing it
    /// again. An artifact with no recorded hash only has to exist.
    pub(crate) fn verify_unchanged(&self, artifact: &Artifact) -> Result<()> {
        let path = &artifact.path;
        if artifact.hash.is_none() {
            return std::fs::metadata(path).map(drop).map_err(|e| Error::output_io(artifact, path, &e));
        }
        let identity = self
            .files
            .identity(path, crate::files::hash::HashingStrategy::Full)
            .map_err(|e| Error::output_io(artifact, path, &e))?;
        compare_hash(artifact, path, identity.strip_prefix("blake3:").unwrap_or(&identity))
    }

    /// Load `artifact` as `T` once its file is known to hold the recorded bytes.
    /// A recorded path that no longer exists (the project moved, or the data is mounted
    /// elsewhere here) is found again from the artifact's URI: see [`crate::Catalog::locate`].
    pub(crate) fn load_verified<T: Output>(&self, artifact: &Artifact) -> Result<T> {
        let mut located = self.catalog.locate(artifact.clone(), Some(&self.run_dir))?;
        if let Err(e) = self.verify_unchanged(&located) {
            // Not on this host, or changed here: the remote's copy, checked, if it has one.
            located = self.fetch(&located).ok_or(e)?;
        }
        T::load(&located)
    }

    /// The run directory to resolve a recorded run's `./` URIs against: the recorded one while
    /// it exists, else this tracker's (the project moved; the files' hashes are checked anyway).
    fn producer_dir(&self, recorded: &std::path::Path) -> PathBuf {
        if recorded.is_dir() {
            return recorded.to_path_buf();
        }
        self.catalog.relocated(recorded).unwrap_or_else(|| self.run_dir.clone())
    }

    /// Run a declared step (see [`crate::StepBuilder::run`] and [`crate::StepBuilder::trace`]):
    /// sign it, start its record, decide hit or miss, then record the hit or execute the body.
    pub(crate) fn run_spec<O, F>(&self, mut spec: StepSpec, body: F, kind: BodyKind) -> Result<RunResult<O>>
    where
        O: Outputs + 'static,
        F: FnOnce(&mut StepContext<'_>) -> StepResult<O>,
    {
        // The run starts before its inputs are hashed: that time is part of its duration.
        let (started, clock) = (Utc::now(), Instant::now());
        spec.check::<O>()?;
        let config = spec.take_signed_config();
        let StepSpec {
            name,
            code_hash,
            code_items,
            config: _,
            runtime,
            ignored: _,
            inputs,
            outputs: keys,
            tags,
            description,
            cache_mode,
            validation,
            hydration,
            facet_from,
            place,
            toolchain,
        } = spec;
        let validation = validation.unwrap_or(self.validation);
        let hydration = hydration.unwrap_or(self.hydration);
        let mode = cache_mode.unwrap_or(self.cache_mode);
        let signed = self.sign(&name, code_hash, code_items, toolchain, config?, &facet_from, inputs)?;
        let (mut record, inputs, basis) = self.start_record(signed, &keys, place, description, tags, started);
        if !runtime.is_empty() {
            record.run.meta.insert("runtime".into(), Json::Object(runtime.into_iter().collect()));
        }

        let mut claim = None;
        let explanation = match self.decide::<O>(&record, validation, &keys, mode, &mut claim, &basis)? {
            Decision::Hit(hit) => {
                drop(claim);
                let trace = (kind == BodyKind::Trace).then_some(body);
                let pending = PendingRun { record, inputs, keys, mode, hydration };
                return self.record_hit(pending, hit, trace.map(|b| (b, basis.place)));
            }
            Decision::Miss(explanation) => explanation,
        };
        tracing::debug!(
            step = %name,
            signature = %record.run.signature,
            lookup_us = clock.elapsed().as_micros() as u64,
            reason = %explanation.summary,
            "cache miss"
        );
        record.run.meta.insert("cache_miss".into(), serde_json::to_value(&explanation).unwrap_or(Json::Null));
        // Alive while it executes: a `running` record whose lease is gone is a zombie.
        let alive = (mode != CacheMode::Readonly).then(|| self.claims.alive(&record.run.id, claim.as_ref()));
        if alive.is_some() {
            record.run.meta.insert("liveness".into(), Json::from(crate::engine::claim::LIVENESS_LEASE));
        }
        let footprint = basis.footprint(&record, &self.session);
        let result = self.execute(PendingRun { record, inputs, keys, mode, hydration }, footprint, body);
        drop(alive);
        drop(claim);
        result
    }

    /// What a step run's signature is made of: its code identity (with the toolchain when the
    /// tracker signs it), canonical config and its hash, facets, and its inputs resolved.
    #[allow(clippy::too_many_arguments)]
    fn sign(
        &self,
        name: &str,
        code_hash: Option<String>,
        mut code_items: BTreeMap<String, String>,
        toolchain: Option<crate::Toolchain>,
        config: Json,
        facet_from: &[String],
        inputs: Vec<(String, Input)>,
    ) -> Result<Signed> {
        let toolchain = toolchain.unwrap_or_else(|| self.toolchain.clone());
        let code_hash = code_hash.unwrap_or_default();
        // The step's own identity, kept beside one the toolchain or the epoch is mixed into
        // (`consist steps` compares a linked step with it).
        let step_code_hash = (self.toolchain_in_signature || self.cache_epoch > 0).then(|| code_hash.clone());
        let mut code_hash = code_hash;
        // Each is listed with the code items, so a miss explanation names what changed.
        if self.toolchain_in_signature {
            for (field, value) in toolchain.fields() {
                code_items.insert(format!("toolchain {field}"), value);
            }
            code_hash =
                signature::hash_parts("consist-toolchain-v1", &[code_hash.as_bytes(), toolchain.identity().as_bytes()]);
        }
        if self.cache_epoch > 0 {
            let epoch = self.cache_epoch.to_string();
            code_items.insert(CACHE_EPOCH_ITEM.to_owned(), epoch.clone());
            code_hash = signature::hash_parts("consist-cache-epoch-v1", &[code_hash.as_bytes(), epoch.as_bytes()]);
        }
        let facets = crate::facet::extract(&config, facet_from)?;
        let config_hash = signature::checked_config_hash(name, &config)?;
        let (inputs, entries) = self.resolve_inputs(name, inputs)?;
        let input_hash = signature::input_hash(&entries);
        let signature = signature::signature(name, &code_hash, &config_hash, &input_hash);
        Ok(Signed {
            name: name.to_owned(),
            code_hash,
            step_code_hash,
            code_items,
            toolchain,
            config,
            facets,
            config_hash,
            inputs,
            entries,
            input_hash,
            signature,
        })
    }

    /// The `running` record of a signed step run (declared outputs, the key each input is read
    /// under, code items, toolchain and process in its meta), its inputs by key, and what a miss
    /// would be explained from (moved, not copied: most runs are hits and never need it).
    fn start_record(
        &self,
        signed: Signed,
        keys: &[String],
        place: Placement,
        description: Option<String>,
        tags: Vec<String>,
        started: chrono::DateTime<Utc>,
    ) -> (RunRecord, BTreeMap<String, Artifact>, MissBasis) {
        let Signed {
            name,
            code_hash,
            step_code_hash,
            code_items,
            toolchain,
            config,
            facets,
            config_hash,
            inputs,
            entries,
            input_hash,
            signature,
        } = signed;
        let where_it_sits = place.place();
        let mut meta = Map::new();
        meta.insert("declared_outputs".into(), Json::from(keys.to_vec()));
        // An upstream artifact keeps its producer's key; remember the key this step reads it under.
        let input_keys: Map<String, Json> =
            inputs.iter().map(|(k, a)| (k.clone(), Json::String(a.id.clone()))).collect();
        meta.insert("inputs".into(), Json::Object(input_keys));
        if !code_items.is_empty() {
            meta.insert("code_items".into(), serde_json::to_value(&code_items).unwrap_or(Json::Null));
        }
        meta.insert("toolchain".into(), serde_json::to_value(&toolchain).unwrap_or(Json::Null));
        if let Some(own) = step_code_hash {
            meta.insert("step_code_hash".into(), Json::String(own));
        }
        if self.cache_epoch > 0 {
            meta.insert("cache_epoch".into(), Json::from(self.cache_epoch));
        }
        let run = Run {
            parent_run_id: place.parent,
            description,
            year: place.year,
            iteration: place.iteration,
            stage: place.stage,
            phase: place.phase,
            tags,
            config_hash,
            code_hash,
            input_hash,
            signature,
            ..Run::starting(&name, meta, started)
        };
        let record = RunRecord::starting(
            run,
            config,
            facets,
            self.run_dir.clone(),
            inputs.iter().map(|(_, a)| a.clone()).collect(),
        );
        let basis = MissBasis { code_items, entries, place: where_it_sits };
        (record, inputs.into_iter().collect(), basis)
    }

    /// Hit or miss for `record`'s signature. Unless every run executes (`Overwrite`), the cache is
    /// looked up; on no hit, a recording run holds the signature's claim (in `claim`) while it
    /// executes, so a twin elsewhere waits for its result, and looks again in case a twin
    /// recorded one while it looked or waited. A miss comes with its explanation.
    fn decide<O: Outputs + 'static>(
        &self,
        record: &RunRecord,
        validation: Validation,
        keys: &[String],
        mode: CacheMode,
        claim: &mut Option<super::claim::Claim>,
        basis: &MissBasis,
    ) -> Result<Decision<O>> {
        if mode == CacheMode::Overwrite {
            return Ok(Decision::Miss(MissExplanation::because("cache mode is overwrite: every run executes")));
        }
        let (name, sig) = (&record.run.model_name, &record.run.signature);
        let reading = input_hashes(record);
        let mut found = self.lookup::<O>(name, sig, &reading, validation, keys)?;
        if !matches!(found, Lookup::Hit(_)) && mode != CacheMode::Readonly {
            let ready = || self.catalog.sources(sig).is_ok_and(|s| !s.is_empty());
            *claim = self.claims.acquire(sig, name, &record.run.id, &ready);
            if claim.as_ref().is_some_and(|c| c.waited) || matches!(found, Lookup::Absent) {
                found = self.lookup::<O>(name, sig, &reading, validation, keys)?;
            }
        }
        Ok(match found {
            Lookup::Hit(hit) => Decision::Hit(hit),
            Lookup::Unusable(explanation) => Decision::Miss(explanation),
            Lookup::Absent => {
                let now = basis.footprint(record, &self.session);
                Decision::Miss(MissExplanation::compare(name, &now, &self.catalog.miss_baselines(name, &now.place)))
            }
        })
    }

    /// Look `sig` up in the cache: its sources in order (see [`crate::Catalog`]'s `sources`),
    /// the first whose recorded outputs pass `validation` serving the hit. A source whose
    /// outputs are unusable here is reported and skipped for the next, so a shared catalog whose
    /// earliest source lost its files still serves (and this host re-executes only when none is
    /// usable). A source that read other bytes than `reading` (input key -> content hash) under
    /// the same producer signatures is passed over (see [`IndexEntry::inputs`]).
    fn lookup<O: Outputs>(
        &self,
        name: &str,
        sig: &str,
        reading: &BTreeMap<String, String>,
        validation: Validation,
        keys: &[String],
    ) -> Result<Lookup<O>> {
        let mut unusable = None;
        for entry in self.catalog.sources(sig)? {
            let run_id = entry.run_id.clone();
            if let Some((key, was, now)) = entry.changed_input(reading) {
                // Hashes as a catalog holds them: any text, cut by characters.
                let short = |hash: &str| hash.chars().take(12).collect::<String>();
                let why = format!(
                    "input `{key}` holds other bytes than run `{run_id}` read (blake3 {} -> {}): its producer ran again under the same signature and wrote others",
                    short(was),
                    short(now)
                );
                unusable
                    .get_or_insert(MissExplanation { compared_with: Some(run_id), ..MissExplanation::because(why) });
                continue;
            }
            match self.usable::<O>(entry, validation, keys) {
                Ok(hit) => {
                    self.catalog.confirm(&hit.entry);
                    return Ok(Lookup::Hit(hit));
                }
                Err(e) => {
                    crate::logging::warning!(step = %name, source = %run_id, error = %e, "cached outputs unusable; trying the next source or executing again");
                    self.catalog.forget_source(sig);
                    unusable.get_or_insert(MissExplanation {
                        compared_with: Some(run_id.clone()),
                        ..MissExplanation::because(format!("cached outputs of run `{run_id}` are unusable: {e}"))
                    });
                }
            }
        }
        Ok(unusable.map_or(Lookup::Absent, Lookup::Unusable))
    }

    /// `entry` as a hit, once its recorded outputs pass `validation` and load as `O` (unless
    /// that load is deferred); else why not.
    fn usable<O: Outputs>(&self, mut entry: IndexEntry, validation: Validation, keys: &[String]) -> Result<Hit<O>> {
        let verify = |entry: &IndexEntry| match validation {
            Validation::Eager => entry.outputs.iter().try_for_each(|a| verify_hash(a, &a.path)),
            Validation::Lazy => entry.outputs.iter().try_for_each(|a| self.verify_unchanged(a)),
        };
        // Mounted outputs are where this tracker's mounts say; the others where they were
        // recorded (no extra stat on the hot path). Only if that fails are they looked for where
        // a moved project put them, from the run directory the index knows now.
        for output in entry.outputs.iter_mut().filter(|a| crate::mounts::split_mount(&a.uri).is_some()) {
            if let Ok(found) = self.catalog.locate(output.clone(), Some(&entry.run_dir)) {
                *output = found;
            }
        }
        let mut usable = verify(&entry);
        if usable.is_err() {
            let run_dir = self.producer_dir(&entry.run_dir);
            let mut moved = entry.clone();
            for output in &mut moved.outputs {
                if let Ok(found) = self.catalog.locate(output.clone(), Some(&run_dir)) {
                    *output = found;
                }
            }
            if moved.outputs != entry.outputs && verify(&moved).is_ok() {
                (entry, usable) = (moved, Ok(()));
            }
        }
        // Not on this host: from the remote, checked (a missing or corrupt object stays a miss).
        if usable.is_err() && self.fetch_missing(entry.outputs.iter_mut()) {
            usable = verify(&entry);
        }
        let (value, outputs) = usable.and_then(|()| load_cached::<O>(keys, &entry))?;
        Ok(Hit { entry, value, outputs })
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
                    // Checked against its recorded bytes before a body reads it (`verify_inputs`).
                    (self.catalog.locate(artifact, Some(&self.run_dir))?, identity)
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
                    let uri = self.catalog.mounts().uri_for(&abs, &self.run_dir);
                    let driver = if abs.is_dir() { Driver::Directory } else { Driver::from_path(&abs) };
                    let mut artifact = Artifact::for_file(&key, &abs, uri, driver, hash);
                    artifact.meta.insert("identity".into(), Json::String(identity.clone()));
                    (artifact, identity)
                }
            };
            entries.push(InputEntry { key: key.clone(), identity });
            artifacts.push((key, artifact));
        }
        Ok((artifacts, entries))
    }

    /// The directory a run writes its files into.
    pub(crate) fn output_dir(&self, run_id: &str, recording: bool) -> std::path::PathBuf {
        if recording {
            self.run_dir.join("outputs").join(run_id)
        } else {
            std::env::temp_dir().join("consist-readonly").join(run_id)
        }
    }

    /// Run a body in `ctx`, turning errors and panics into [`Error::StepFailed`].
    fn call_body<O, F>(&self, run: &Run, place: &Place, ctx: &mut StepContext<'_>, body: F) -> Result<O>
    where
        F: FnOnce(&mut StepContext<'_>) -> StepResult<O>,
    {
        let failed = |message: String, source| Error::StepFailed {
            step: run.model_name.clone(),
            run_id: run.id.clone(),
            place: place.describe(),
            message,
            source,
        };
        match crate::panics::catch(|| body(ctx)) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(failed(e.to_string(), Some(e))),
            Err(panic) => Err(failed(panic, None)),
        }
    }

    /// Record `record` as failed with `error`, and return the error. When the failure cannot be
    /// recorded (the disk that filled up is the run dir's, say), `error` is still what is returned,
    /// the cause the caller must fix; the recording's failure is a warning.
    fn fail<T>(&self, mut record: RunRecord, error: Error, recording: bool) -> Result<T> {
        record.run.end(RunStatus::Failed);
        record.run.meta.insert("error".into(), Json::String(error.to_string()));
        if recording && let Err(unrecorded) = self.persist(&record) {
            crate::logging::warning!(
                run = %record.run.id,
                error = %unrecorded,
                "the step failed and its failure could not be recorded; if the run was recorded as `running`, it stays so until `consist db fail-zombies` marks it failed"
            );
        }
        self.hooks.failed(&record);
        Err(error)
    }

    /// Record `pending` as a hit of `hit` (running `trace`, a trace's body, first).
    fn record_hit<O, F>(&self, pending: PendingRun, hit: Hit<O>, trace: Option<(F, Place)>) -> Result<RunResult<O>>
    where
        O: Outputs + 'static,
        F: FnOnce(&mut StepContext<'_>) -> StepResult<O>,
    {
        let PendingRun { mut record, inputs, mode, hydration, keys } = pending;
        let Hit { entry, value, mut outputs } = hit;
        let recording = mode != CacheMode::Readonly;
        record.run.meta.insert("cache_hit".into(), Json::Bool(true));
        record.run.meta.insert("cache_source".into(), Json::String(entry.run_id.clone()));
        record.outputs = entry.outputs;
        if let Some((body, place)) = trace {
            let output_dir = self.output_dir(&record.run.id, recording);
            let mut ctx = StepContext::new(self, &record.run, output_dir, inputs).with_cached(outputs.clone());
            let result = self.call_body(&record.run, &place, &mut ctx, body);
            if let Err(error) = result {
                return self.fail(record, error, recording);
            }
        }
        if hydration == Hydration::OutputsAll && recording {
            match self.hydrate_outputs(&record.run.id, &mut outputs) {
                Ok(copies) => drop(record.run.meta.insert("hydrated_outputs".into(), Json::Object(copies))),
                Err(error) => return self.fail(record, error, recording),
            }
        }
        record.run.end(RunStatus::Completed);
        tracing::debug!(step = %record.run.model_name, source = %entry.run_id, "cache hit");
        self.hooks.completed(&record);
        let run = if recording {
            // The writer keeps the record; the caller gets its run (config and artifacts not copied).
            let run = record.run.clone();
            self.persist_hit(record);
            run
        } else {
            record.run.meta.insert("recorded".into(), Json::Bool(false));
            record.run
        };
        Ok(match value {
            Some(value) => RunResult::ready(value, run, outputs),
            None => RunResult::recorded(keys, run, outputs),
        })
    }

    /// Check, before a body reads them, that the inputs hold the bytes their signature entries
    /// name: an upstream output changed in place, a moved or mounted file, a raw file edited
    /// since it was hashed. One stat each while a file's size, mtime, inode and ctime are what
    /// they were when it was hashed; a hash otherwise. A file that differs, or is gone, is an
    /// error naming it: the body never computes from other data under this signature.
    fn verify_inputs(&self, inputs: &BTreeMap<String, Artifact>) -> Result<()> {
        inputs.values().filter(|a| a.hash.is_some()).try_for_each(|a| self.verify_unchanged(a))
    }

    /// Execute `pending`'s body and record the outcome (`footprint` joins the miss-explanation
    /// history once it completes).
    fn execute<O, F>(&self, pending: PendingRun, mut footprint: Footprint, body: F) -> Result<RunResult<O>>
    where
        O: Outputs,
        F: FnOnce(&mut StepContext<'_>) -> StepResult<O>,
    {
        let PendingRun { mut record, mut inputs, keys, mode, hydration } = pending;
        let recording = mode != CacheMode::Readonly;
        // From the remote first: a copy from another run dir is then only for what it lacks.
        self.fetch_missing(inputs.values_mut());
        if hydration == Hydration::InputsMissing
            && let Err(error) = self.hydrate_inputs(&mut record, &mut inputs)
        {
            return if recording { self.fail(record, error, true) } else { Err(error) };
        }
        self.verify_inputs(&inputs)?;
        if recording {
            self.persist(&record)?;
            self.catalog.write_through(&record);
        }
        self.hooks.started(&record);
        let output_dir = self.output_dir(&record.run.id, recording);
        let mut ctx = StepContext::new(self, &record.run, output_dir, inputs);
        let result = self
            .call_body(&record.run, &footprint.place, &mut ctx, body)
            .and_then(|mut value| value.record(&keys, &mut ctx).map(|()| value))
            .and_then(|value| ctx.check_declared(&keys).map(|()| value));
        record.outputs = ctx.into_outputs();
        let value = match result {
            Ok(value) => value,
            Err(error) => return self.fail(record, error, recording),
        };
        if recording {
            // Before the run is recorded completed (in any catalog, by any writer): a completed
            // run is a source other hosts can serve from, unless its upload failed.
            self.upload_outputs(&record);
        }
        record.run.end(RunStatus::Completed);
        if recording {
            self.persist(&record)?;
            let indexed =
                self.catalog.index_source(IndexEntry { run_dir: self.run_dir.clone(), ..IndexEntry::of(&record) });
            if let Err(error) = indexed {
                // Recorded all the same (snapshot, database); only not a cache source.
                crate::logging::warning!(step = %record.run.model_name, %error, "could not index the run for cache hits");
            }
            // In a shared catalog before the claim is released: a waiting twin finds it there.
            self.catalog.write_through(&record);
            footprint.run_id = record.run.id.clone();
            if let Err(e) = self.catalog.remember_execution(&record.run.model_name, footprint) {
                crate::logging::warning!(step = %record.run.model_name, error = %e, "could not record the run for miss explanations");
            }
        } else {
            record.run.meta.insert("recorded".into(), Json::Bool(false));
        }
        self.hooks.completed(&record);
        let outputs = record.outputs.iter().map(|a| (a.key.clone(), a.clone())).collect();
        Ok(RunResult::ready(value, record.run, outputs))
    }
}

/// A run between its signature and its outcome: its record (status `running`), its resolved
/// inputs, its declared output keys, and the cache policies that apply to it.
struct PendingRun {
    record: RunRecord,
    inputs: BTreeMap<String, Artifact>,
    keys: Vec<String>,
    mode: CacheMode,
    hydration: Hydration,
}

/// What the cache holds for a signature.
enum Lookup<O> {
    /// A completed run whose outputs are usable.
    Hit(Hit<O>),
    /// A completed run whose outputs are gone or changed: why, for the miss explanation.
    Unusable(MissExplanation),
    /// Nothing recorded.
    Absent,
}

/// A usable cache entry and the value loaded from it (`None`: loaded when first read).
struct Hit<O> {
    entry: IndexEntry,
    value: Option<O>,
    outputs: BTreeMap<String, Artifact>,
}

/// What a step run's signature is made of ([`Engine::sign`]).
struct Signed {
    name: String,
    code_hash: String,
    /// The step's own code identity when the toolchain is mixed into `code_hash`.
    step_code_hash: Option<String>,
    code_items: BTreeMap<String, String>,
    toolchain: crate::Toolchain,
    config: Json,
    facets: BTreeMap<String, Json>,
    config_hash: String,
    inputs: Vec<(String, Artifact)>,
    entries: Vec<InputEntry>,
    input_hash: String,
    signature: String,
}

/// What a miss is explained from, beside the run record: the code items, the inputs' signature
/// entries and where the run sits. Only a miss builds its [`Footprint`].
struct MissBasis {
    code_items: BTreeMap<String, String>,
    entries: Vec<InputEntry>,
    place: Place,
}

impl MissBasis {
    fn footprint(&self, record: &RunRecord, session: &str) -> Footprint {
        Footprint {
            run_id: String::new(),
            signature: record.run.signature.clone(),
            code_hash: record.run.code_hash.clone(),
            code_items: self.code_items.clone(),
            config: record.config.clone(),
            inputs: self.entries.iter().map(|e| (e.key.clone(), e.identity.clone())).collect(),
            place: self.place.clone(),
            session: session.to_owned(),
        }
    }
}

/// Hit or miss ([`Engine::decide`]).
enum Decision<O> {
    Hit(Hit<O>),
    Miss(MissExplanation),
}
