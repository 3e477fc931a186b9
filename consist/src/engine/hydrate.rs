//! Hydration: copies of recorded artifacts (files or directory trees) checked against their
//! recorded hash before they take their place: inputs copied into this run directory
//! (`Hydration::InputsMissing`), a hit's outputs into the new run's (`Hydration::OutputsAll`),
//! materialized artifacts and RO-Crate files.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::artifact::Artifact;
use crate::engine::Engine;
use crate::engine::execute::verify_hash;
use crate::error::{Error, Result};
use crate::run::RunRecord;

/// Copy `artifact`'s file to `dest` (creating its directory) and check the copy's hash.
pub(crate) fn copy_checked(artifact: &Artifact, dest: &std::path::Path) -> Result<()> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("creating directory", dir))?;
    }
    // Copied beside `dest` and checked before it takes `dest`'s place: a file that no longer
    // holds the recorded bytes never replaces a good copy.
    let tmp = crate::files::atomic::tmp_path(dest);
    let copied = copy_tree_or_file(&artifact.path, &tmp)
        .map_err(Error::io("copying artifact", &artifact.path))
        .and_then(|()| verify_hash(artifact, &tmp))
        .and_then(|()| {
            // A directory already there is kept when it holds the same tree; any other is never
            // deleted (it may be the user's): the copy is refused.
            if dest.is_dir() {
                let _ = std::fs::remove_dir_all(&tmp);
                if artifact.driver == crate::artifact::Driver::Directory && verify_hash(artifact, dest).is_ok() {
                    return Ok(());
                }
                return Err(Error::Refused(format!(
                    "{} is a directory holding other files than `{}`; copy it somewhere else, or remove that directory first",
                    dest.display(),
                    artifact.key
                )));
            }
            std::fs::rename(&tmp, dest).map_err(Error::io("copying artifact to", dest))
        });
    if copied.is_err() {
        let _ = std::fs::remove_file(&tmp).or_else(|_| std::fs::remove_dir_all(&tmp));
    }
    copied.map_err(|e| match e {
        // Name the source, not the temporary copy.
        Error::OutputLoad { run_id, key, reason, .. } => {
            Error::OutputLoad { run_id, key, path: artifact.path.clone(), reason }
        }
        other => other,
    })
}

/// Copy a file, or a directory's files (a directory artifact), from `src` to `dest`.
fn copy_tree_or_file(src: &std::path::Path, dest: &std::path::Path) -> std::io::Result<()> {
    if !src.is_dir() {
        return std::fs::copy(src, dest).map(drop);
    }
    for entry in walkdir::WalkDir::new(src).follow_links(false) {
        let entry = entry.map_err(std::io::Error::other)?;
        let target = dest.join(entry.path().strip_prefix(src).map_err(std::io::Error::other)?);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
        } else {
            // A symlink added since the tree was recorded is copied as a file: the copy's tree
            // then differs from the recorded one and `verify_hash` refuses it.
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

impl Engine {
    /// Copy inputs produced under another run directory that are missing from this one
    /// ([`crate::Hydration::InputsMissing`]); the step then reads the copies.
    pub(crate) fn hydrate_inputs(&self, record: &mut RunRecord, inputs: &mut BTreeMap<String, Artifact>) -> Result<()> {
        let mut copies = Map::new();
        for (key, artifact) in inputs.iter_mut() {
            if artifact.run_id.is_none() {
                continue;
            }
            let local = self.catalog.mounts().resolve(&artifact.uri, &self.run_dir)?;
            // A copy is only ever written under this run directory: an absolute URI (a file
            // recorded outside any run dir, or a hostile catalog's) is read where it is.
            if local.exists() || !crate::mounts::normalize(&local).starts_with(crate::mounts::normalize(&self.run_dir))
            {
                continue;
            }
            if !artifact.path.exists() {
                return Err(Error::InputMissing {
                    step: record.run.model_name.clone(),
                    key: key.clone(),
                    path: artifact.path.clone(),
                    reason: format!(
                        "does not exist (nor does {}); re-run its producer `{}`",
                        local.display(),
                        artifact.run_id.as_deref().unwrap_or_default()
                    ),
                });
            }
            copy_checked(artifact, &local)?;
            copies.insert(key.clone(), Json::String(local.to_string_lossy().into_owned()));
            artifact.path = local;
        }
        if !copies.is_empty() {
            record.run.meta.insert("hydrated_inputs".into(), Json::Object(copies));
        }
        Ok(())
    }

    /// Copy a hit's outputs into the new run's directory (`Hydration::OutputsAll`): each
    /// returned artifact names its copy (its URI as any output's, relative to the run directory
    /// or under a mount); its id, hash and producer stay the original's. Returns key -> URI.
    pub(crate) fn hydrate_outputs(
        &self,
        run_id: &str,
        outputs: &mut BTreeMap<String, Artifact>,
    ) -> Result<Map<String, Json>> {
        let dir = self.output_dir(run_id, true);
        let mut copies = Map::new();
        for artifact in outputs.values_mut() {
            let dest = dir.join(artifact.path.file_name().unwrap_or(artifact.key.as_ref()));
            copy_checked(artifact, &dest)?;
            artifact.uri = self.catalog.mounts().uri_for(&dest, &self.run_dir);
            artifact.path = dest;
            copies.insert(artifact.key.clone(), Json::String(artifact.uri.clone()));
        }
        Ok(copies)
    }
}
