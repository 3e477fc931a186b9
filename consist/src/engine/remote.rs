//! The engine's use of a remote (see [`crate::Remote`]): an executed run's outputs are uploaded
//! before it is recorded as completed, so it reaches the catalog as a source other hosts can
//! serve from; a recorded artifact that is not on this host is downloaded, checked against its
//! hash, before a hit, a body or a load reads it.

use crate::artifact::Artifact;
use crate::engine::Engine;
use crate::run::RunRecord;

impl Engine {
    /// Upload `record`'s outputs to the remote (unless it is read-only). A failed upload fails
    /// nothing: the run stays a source that only this host, or hosts that share its files, can
    /// serve (another host's download misses and executes it again).
    pub(crate) fn upload_outputs(&self, record: &RunRecord) {
        let Some(remote) = self.remote.as_deref().filter(|r| !r.is_read_only()) else { return };
        if !remote.available() {
            crate::logging::warning!(run = %record.run.id, remote = remote.url(), "the remote cannot be reached: outputs not uploaded");
            return;
        }
        let mut items = Vec::new();
        let scratch = self.run_dir.join(".consist").join("remote-trees");
        for artifact in &record.outputs {
            match crate::remote::tree::transfers(artifact, &scratch) {
                Ok(tree) => items.extend(tree),
                Err(reason) => crate::logging::warning!(
                    run = %record.run.id,
                    dir = %artifact.path.display(),
                    %reason,
                    "directory output not uploaded: hosts without this host's files execute the step again"
                ),
            }
        }
        if items.is_empty() {
            return;
        }
        let report = remote.push(&items, &|_| {});
        // The listings written for this push are on the remote now, or will be written again.
        for item in items.iter().filter(|i| i.path.starts_with(&scratch)) {
            let _ = std::fs::remove_file(&item.path);
        }
        for (path, reason) in &report.failed {
            crate::logging::warning!(
                run = %record.run.id,
                file = %path.display(),
                remote = remote.url(),
                %reason,
                "output not uploaded: hosts without this host's files execute the step again"
            );
        }
        for path in &report.missing {
            crate::logging::warning!(run = %record.run.id, file = %path.display(), "output not uploaded: it is gone");
        }
    }

    /// `artifact` with its file on this host: where it is found ([`crate::Catalog`]'s `locate`)
    /// while that holds its recorded bytes, else downloaded from the remote into this run dir
    /// (under its `./` URI, or `.consist/remote/<hash>/` for a file recorded elsewhere) and
    /// checked. `None` when there is no remote, no hash, or the object is missing or corrupt (a
    /// corrupt one is removed, so that the next upload of that content replaces it).
    pub(crate) fn fetch(&self, artifact: &Artifact) -> Option<Artifact> {
        let remote = self.remote.as_deref().filter(|r| r.available())?;
        let hash = artifact.hash.clone()?;
        let dest = crate::remote::local_copy(artifact, &self.run_dir, self.catalog.mounts())?;
        if dest.exists() && crate::files::hash::hash_file(&dest).is_ok_and(|h| h == hash) {
            return Some(Artifact { path: dest, ..artifact.clone() });
        }
        let downloaded = match artifact.driver {
            crate::Driver::Directory => crate::remote::tree::download(remote, &hash, &dest),
            _ => remote.download(&hash, &dest),
        };
        match downloaded {
            Ok(()) => {
                self.files.record(&dest, &hash);
                tracing::debug!(file = %dest.display(), remote = remote.url(), "downloaded a recorded artifact");
                Some(Artifact { path: dest, ..artifact.clone() })
            }
            Err(e) => {
                crate::logging::warning!(
                    key = %artifact.key,
                    run = artifact.run_id.as_deref().unwrap_or("-"),
                    error = %e,
                    "a recorded artifact could not be fetched from the remote"
                );
                if matches!(e, crate::Error::RemoteObjectCorrupt { .. }) {
                    remote.forget_corrupt(&hash);
                }
                None
            }
        }
    }

    /// Each artifact whose file this host lacks, or holds other bytes in, fetched from the remote
    /// (the others as they are); `true` when any was fetched.
    pub(crate) fn fetch_missing<'a>(&self, artifacts: impl Iterator<Item = &'a mut Artifact>) -> bool {
        if self.remote.is_none() {
            return false;
        }
        let mut fetched = false;
        for artifact in artifacts {
            if artifact.hash.is_some()
                && self.verify_unchanged(artifact).is_err()
                && let Some(found) = self.fetch(artifact)
            {
                *artifact = found;
                fetched = true;
            }
        }
        fetched
    }
}
