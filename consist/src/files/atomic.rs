//! Atomic file writes: a temporary file beside the target (`<name>.tmp.<pid>.<n>`), fsynced when
//! asked, then renamed over it, so readers see the old content or the new, never a mix; and
//! telling a temporary file a killed process abandoned from one being written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What marks a temporary file of [`write_atomic`]: `<name>.tmp.<pid>.<n>`.
pub(crate) const TMP_MARK: &str = ".tmp.";

/// Write `bytes` to `path` atomically: readers see the old content or the new, never a mix.
/// With `durable`, the data is fsynced before the rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    write_atomic_with(path, durable, |file| file.write_all(bytes))
}

/// [`write_atomic`] with the content written by `write` into the temporary file
/// (`<name>.tmp.<pid>.<n>` beside `path`, removed on failure).
pub(crate) fn write_atomic_with(
    path: &Path,
    durable: bool,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        let written = write(&mut file).and_then(|()| if durable { file.sync_all() } else { Ok(()) });
        if written.is_err() {
            // Its blocks go now: removing it frees nothing while another process still holds
            // it open (a child this process is spawning, between its fork and its exec), and a
            // write that failed for a full disk must leave room to record that failure.
            let _ = file.set_len(0);
        }
        written?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A fresh temporary name beside `path` (`<name>.tmp.<pid>.<n>.<8 random hex>`), for writing then
/// renaming.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    // The pid first (`tmp_pid` reads it back), then the counter, then 8 random hex digits: hosts
    // that share a file system (containers with the same pids) never pick the same name.
    let random = uuid::Uuid::new_v4().simple().to_string();
    tmp_name.push(format!("{TMP_MARK}{}.{n}.{}", std::process::id(), &random[..8]));
    path.with_file_name(tmp_name)
}

/// The age past which a temporary file is abandoned whoever wrote it: a write or a creation takes
/// milliseconds.
pub(crate) const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether `path` was last modified longer than `age` ago (`false` if it cannot be read).
pub(crate) fn older_than(path: &Path, age: std::time::Duration) -> bool {
    std::fs::metadata(path).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|a| a > age))
}

/// Whether the temporary file `tmp` of [`write_atomic`], written by process `pid`, was abandoned:
/// its process is no longer running on this host (Linux), or it is over 10 minutes old (a write
/// takes milliseconds; this also covers a process on another host of a shared file system).
pub(crate) fn abandoned(tmp: &Path, pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let old = older_than(tmp, ABANDONED_AFTER);
    let gone = cfg!(target_os = "linux") && !Path::new("/proc").join(pid.to_string()).exists();
    old || gone
}

/// The writing process of a temporary file of [`write_atomic`], from its name.
pub(crate) fn tmp_pid(name: &str) -> Option<u32> {
    name.split_once(TMP_MARK)?.1.split('.').next()?.parse().ok()
}

/// Remove a file; one that is already gone is fine (another process got there first).
pub(crate) fn remove_if_present(path: &Path, action: &'static str) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(action, path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"first", true).unwrap();
        write_atomic(&p, b"second", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left behind");
    }

    #[test]
    fn temporary_names_carry_the_pid_and_differ_beyond_the_process() {
        let path = Path::new("/tmp/x/run.json");
        let (a, b) = (tmp_path(path), tmp_path(path));
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(tmp_pid(&name), Some(std::process::id()), "{name}");
        assert!(name.starts_with("run.json.tmp."), "{name}");
        let random = name.rsplit('.').next().unwrap();
        assert!(random.len() == 8 && random.bytes().all(|c| c.is_ascii_hexdigit()), "{name}");
    }
}
