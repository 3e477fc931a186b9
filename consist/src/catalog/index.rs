//! The signature index: signature -> latest completed run and its outputs, one file per signature.
//!
//! A cache lookup reads this index (an in-process map first, then one small file beside the
//! database), never DuckDB. An entry is created by atomic rename only after the run's outputs and
//! its completed snapshot are durable, so a process killed at any instant cannot leave an entry
//! that points at outputs that were never fully written: no false cache hit.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::error::{Error, Result};
use crate::files::atomic::write_atomic;
use crate::run::RunRecord;

/// What a cache hit needs to know about the run it reuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The signature.
    pub signature: String,
    /// The completed run that produced the outputs.
    pub run_id: String,
    /// Its run directory (relative output URIs resolve against it). Stored relative to the
    /// catalog's directory when it lies under it, so a project moved whole keeps its hits.
    pub run_dir: PathBuf,
    /// Its outputs.
    pub outputs: Vec<Artifact>,
    /// The catalog named this run as the signature's cache source (a catalog shared by many
    /// hosts); `false` for a run this host recorded or merged, which such a catalog confirms
    /// on the next hit, since a twin on another host may be the source.
    #[serde(default)]
    pub confirmed: bool,
    /// The catalog's purge epoch when it confirmed this source: after a purge (a higher epoch)
    /// the catalog is asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_epoch: Option<i64>,
    /// The content hash of each input the run read, by the key the step read it under. An input
    /// made by an earlier run counts in a signature by its producer's signature, not its bytes:
    /// when that producer ran again under the same signature and wrote other bytes (`Overwrite`,
    /// a re-run after its outputs were lost), a call reading the new bytes must not hit this run,
    /// made from the old ones. Empty for entries written before this was recorded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
}

impl IndexEntry {
    /// The entry naming `record`, a completed run, as its signature's cache source.
    pub(crate) fn of(record: &RunRecord) -> IndexEntry {
        IndexEntry {
            signature: record.run.signature.clone(),
            run_id: record.run.id.clone(),
            run_dir: record.run_dir.clone(),
            outputs: record.outputs.clone(),
            confirmed: false,
            purge_epoch: None,
            inputs: input_hashes(record),
        }
    }

    /// The first input whose bytes differ between this entry's run and a call reading
    /// `inputs` (see [`input_hashes`]), as (key, recorded hash, hash now).
    pub(crate) fn changed_input<'a>(
        &'a self,
        inputs: &'a BTreeMap<String, String>,
    ) -> Option<(&'a str, &'a str, &'a str)> {
        self.inputs.iter().find_map(|(key, was)| {
            let now = inputs.get(key)?;
            (now != was).then_some((key.as_str(), was.as_str(), now.as_str()))
        })
    }
}

/// The content hash of each input of `record` with one, by the key its step read it under
/// (`meta.inputs`: key -> artifact id).
pub(crate) fn input_hashes(record: &RunRecord) -> BTreeMap<String, String> {
    let inputs = record.inputs_by_key().unwrap_or_default();
    inputs.into_iter().filter_map(|(key, artifact)| Some((key.to_owned(), artifact.hash.clone()?))).collect()
}

/// Signature index stored in `<catalog>/index/`, with an in-process cache in front.
pub(crate) struct SignatureIndex {
    dir: PathBuf,
    /// The directory holding the catalog (the DuckDB file's): stored run dirs are relative to it.
    base: PathBuf,
    warm: Mutex<HashMap<String, IndexEntry>>,
}

impl SignatureIndex {
    pub(crate) fn new(catalog: &Path) -> SignatureIndex {
        let base = catalog.parent().map(Path::to_path_buf).unwrap_or_default();
        SignatureIndex { dir: catalog.join("index"), base, warm: Mutex::new(HashMap::new()) }
    }

    /// The entry file of `signature`, once it is checked to be a plain signature (an index entry
    /// is named after it, and a signature may come from a merged catalog).
    fn path(&self, signature: &str) -> Result<PathBuf> {
        let signature = crate::ids::signature(signature, &self.dir.display())?;
        Ok(self.dir.join(format!("{signature}.json")))
    }

    /// The completed run recorded for `signature`, if any.
    pub(crate) fn get(&self, signature: &str) -> Result<Option<IndexEntry>> {
        if let Some(hit) = self.warm.lock().unwrap_or_else(|e| e.into_inner()).get(signature) {
            return Ok(Some(hit.clone()));
        }
        let path = self.path(signature)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading signature index", &path)(e)),
        };
        match serde_json::from_slice::<IndexEntry>(&bytes) {
            Ok(mut entry) => {
                if entry.run_dir.is_relative() {
                    entry.run_dir = self.base.join(&entry.run_dir);
                }
                self.remember(entry.clone());
                Ok(Some(entry))
            }
            Err(e) => {
                // Entries are not fsynced: a crash can leave one torn. The run's snapshot is
                // durable, so a miss (and a new entry) is the safe answer.
                crate::logging::warning!(file = %path.display(), error = %e, "unreadable signature index entry; treated as a miss");
                Ok(None)
            }
        }
    }

    /// Make `entry` the answer for its signature. Not fsynced: it is written after the run's
    /// outputs and completed snapshot are durable, so a crash loses at most the entry (a miss,
    /// rebuilt by the next execution), never leaves one naming something that is not there.
    pub(crate) fn put(&self, entry: IndexEntry) -> Result<()> {
        let path = self.path(&entry.signature)?;
        crate::ids::run_id(&entry.run_id, &path.display())?;
        let stored = match entry.run_dir.strip_prefix(&self.base) {
            Ok(rel) if !self.base.as_os_str().is_empty() => IndexEntry { run_dir: rel.to_path_buf(), ..entry.clone() },
            _ => entry.clone(),
        };
        let bytes = serde_json::to_vec(&stored).expect("an IndexEntry always serializes");
        write_atomic(&path, &bytes, false)
            .or_else(|_| {
                std::fs::create_dir_all(&self.dir)?;
                write_atomic(&path, &bytes, false)
            })
            .map_err(Error::io("writing signature index", &path))?;
        self.remember(entry);
        Ok(())
    }

    /// Delete the entry for `signature` if it names one of `run_ids` (purged runs); returns
    /// whether it did. An entry naming another run is left alone, and a signature that could not
    /// name a file (a damaged or hostile record's) has no entry.
    pub(crate) fn remove_if_run(&self, signature: &str, run_ids: &std::collections::HashSet<&str>) -> Result<bool> {
        if crate::ids::signature_problem(signature).is_some() {
            return Ok(false);
        }
        match self.get(signature)? {
            Some(entry) if run_ids.contains(entry.run_id.as_str()) => {
                crate::files::atomic::remove_if_present(&self.path(signature)?, "removing signature index entry")?;
                self.forget(signature);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Forget a signature whose recorded outputs turned out unusable (deleted files).
    pub(crate) fn forget(&self, signature: &str) {
        self.warm.lock().unwrap_or_else(|e| e.into_inner()).remove(signature);
    }

    /// Forget everything remembered in this process (a purge happened: entries are read from
    /// their files again, which the purge removed or left).
    pub(crate) fn forget_all(&self) {
        self.warm.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Remove every entry, on disk and in this process (the local state was made for another
    /// catalog).
    pub(crate) fn clear(&self) {
        self.forget_all();
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            crate::logging::warning!(dir = %self.dir.display(), error = %e, "could not remove the signature index");
        }
    }

    fn remember(&self, entry: IndexEntry) {
        let mut warm = self.warm.lock().unwrap_or_else(|e| e.into_inner());
        crate::files::remember_bounded(&mut warm, entry.signature.clone(), entry);
    }
}
