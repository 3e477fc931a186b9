//! What one host keeps about a catalog in its state directory (`<db>.consist/` beside a DuckDB
//! file; under the user's cache for a server catalog), besides the signature index and the
//! pending queue: which catalog it was made for, the run directories used with the catalog here,
//! and the mark a purge leaves for trackers still open.
//!
//! The catalog's id (made when the catalog is created, see `consist_catalog`) decides whether
//! the local state may be trusted: state made for another catalog (one recreated, restored or
//! replaced at the same URL or path) names runs this catalog may not hold, so its cache entries
//! are dropped instead of served.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The first line of the `run-dirs` list: the state directory it was written in.
const WRITTEN_FOR: &str = "# for ";

/// The catalog a state directory was made for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CatalogMark {
    /// The catalog's id.
    pub(crate) id: String,
    /// For a DuckDB file: its [`file_key`] when the id was read (or consist last wrote it), so a
    /// tracker can tell with one stat that the file is still the one it was.
    #[serde(default)]
    pub(crate) file: Option<String>,
}

/// A catalog's state directory on this host.
#[derive(Debug, Clone)]
pub(crate) struct LocalState {
    dir: PathBuf,
}

impl LocalState {
    pub(crate) fn new(dir: &Path) -> LocalState {
        LocalState { dir: dir.to_path_buf() }
    }

    /// The state directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The catalog this state was made for, if recorded.
    pub(crate) fn mark(&self) -> Option<CatalogMark> {
        serde_json::from_slice(&std::fs::read(self.dir.join("catalog")).ok()?).ok()
    }

    /// Record the catalog this state is for (best effort: a read-only state directory keeps
    /// working, it only checks again next time).
    pub(crate) fn set_mark(&self, mark: &CatalogMark) {
        let bytes = serde_json::to_vec(mark).unwrap_or_default();
        if std::fs::create_dir_all(&self.dir).is_ok() {
            let _ = crate::files::atomic::write_atomic(&self.dir.join("catalog"), &bytes, false);
        }
    }

    /// Forget which catalog this state was for (the catalog is gone).
    pub(crate) fn clear_mark(&self) {
        let _ = std::fs::remove_file(self.dir.join("catalog"));
    }

    /// The run directories trackers of this catalog have used on this host (absolute, symlinks
    /// resolved): where maintenance may remove a purged run's files. The list names the state
    /// directory it was written in (`# for <dir>`): in a state directory copied with its project
    /// (`cp -a study study-copy`), the run dirs it names outside the copy are the original
    /// project's, and maintenance in the copy must not touch them, so only those inside the copy
    /// count until a tracker of the copy writes the list again.
    pub(crate) fn run_dirs(&self) -> Vec<PathBuf> {
        self.listed(&self.canonical_dir()).0
    }

    /// The run dirs the list names that count in the state directory `here` (see
    /// [`LocalState::run_dirs`]), and whether the list names `here` as where it was written.
    fn listed(&self, here: &Path) -> (Vec<PathBuf>, bool) {
        let text = std::fs::read_to_string(self.dir.join("run-dirs")).unwrap_or_default();
        let written_for = text.lines().next().and_then(|l| l.strip_prefix(WRITTEN_FOR)).map(Path::new);
        let named = written_for == Some(here);
        let copied = written_for.is_some() && !named;
        let dirs = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(PathBuf::from)
            .filter(|d| !copied || here.parent().is_some_and(|project| d.starts_with(project)))
            .collect();
        (dirs, named)
    }

    /// This state directory, symlinks resolved where it exists.
    fn canonical_dir(&self) -> PathBuf {
        std::fs::canonicalize(&self.dir).unwrap_or_else(|_| crate::mounts::normalize(&self.dir))
    }

    /// Record that a tracker uses `run_dir` with this catalog (once per directory, and once to
    /// name the state directory the list is for; best effort).
    pub(crate) fn note_run_dir(&self, run_dir: &Path) {
        let dir = std::fs::canonicalize(run_dir).unwrap_or_else(|_| crate::mounts::normalize(run_dir));
        let here = self.canonical_dir();
        let (mut known, named) = self.listed(&here);
        if (known.contains(&dir) && named) || std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        if !known.contains(&dir) {
            known.push(dir);
        }
        // Resolved now that the directory exists (before, a symlink in its path was not).
        let header = format!("{WRITTEN_FOR}{}\n", self.canonical_dir().display());
        let text: String = std::iter::once(header).chain(known.iter().map(|d| format!("{}\n", d.display()))).collect();
        if let Err(e) = crate::files::atomic::write_atomic(&self.dir.join("run-dirs"), text.as_bytes(), false) {
            tracing::debug!(dir = %self.dir.display(), error = %e, "could not record the run directory");
        }
    }

    /// The purge mark (`purge-epoch`), which every purge or removal rewrites with new content: a
    /// tracker reads it at each cache lookup (a few microseconds) and forgets what it remembered
    /// when it changed.
    pub(crate) fn purge_mark(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("purge-epoch")).ok()
    }

    /// Leave a new purge mark (the catalog's purge epoch and a nonce) for trackers still open.
    pub(crate) fn mark_purge(&self, epoch: i64) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mark = format!("{epoch} {}", uuid::Uuid::new_v4().simple());
        crate::files::atomic::write_atomic(&self.dir.join("purge-epoch"), mark.as_bytes(), true)
    }
}

/// What identifies a file's current content without reading it: device, inode, size and
/// modification time (`dev:ino:len:mtime`), or `None` when it does not exist. A file replaced,
/// or written by a program that does not update the mark (another tool, a copy over it), has
/// another key, and its catalog id is read again.
pub(crate) fn file_key(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (dev, ino) = (0, 0);
    Some(format!("{dev}:{ino}:{}:{mtime}", meta.len()))
}
