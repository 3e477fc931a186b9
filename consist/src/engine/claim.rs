//! Per-signature claims: a step about to execute holds an exclusive file lock named after its
//! signature, so a concurrent twin (the same signature in another thread or process of this host)
//! waits for it and then reuses its result instead of executing too.
//!
//! `<db>.consist/claims/<signature>.lock`, locked with `flock` (released by the kernel when a
//! process dies, so a killed owner never blocks anyone), removed by its owner while still locked.
//! A waiter that wakes up on a removed file opens the path again: only one lock per signature is
//! ever held. Claims cover one host; on a catalog shared by many hosts, twins on different hosts
//! may both execute (both are recorded, and every later hit names one of them). A step run
//! inside a parallel map (a rayon worker) never waits for a claim: it executes unclaimed when
//! its twin holds it, since a blocked worker can deadlock the pool.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// A held claim on a signature; released (file removed, then unlocked) when dropped.
#[derive(Debug)]
pub(crate) struct Claim {
    file: File,
    path: PathBuf,
    /// Whether another holder made us wait (its result may now be recorded).
    pub(crate) waited: bool,
}

impl Claim {
    /// Claim `signature` in `dir`, waiting while another thread or process holds it. Returns
    /// `None` when claims cannot be used here (the directory cannot be written): the step then
    /// runs unclaimed, as before claims existed.
    pub(crate) fn acquire(dir: &Path, signature: &str, step: &str) -> Option<Claim> {
        let path = dir.join(format!("{signature}.lock"));
        let mut waited = false;
        loop {
            let file = match open(&path) {
                Ok(file) => file,
                Err(e) => {
                    tracing::debug!(path = %path.display(), error = %e, "cannot claim the signature; running unclaimed");
                    return None;
                }
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) if rayon::current_thread_index().is_some() => {
                    // A rayon worker must not block: while it waits, the task it stole from a
                    // step holding this very claim could never resume (a deadlock). It runs
                    // unclaimed, as a twin did before claims existed.
                    tracing::debug!(
                        step,
                        signature,
                        "the same step is executing elsewhere; a parallel map runs it anyway"
                    );
                    return None;
                }
                Err(TryLockError::WouldBlock) => {
                    tracing::info!(step, signature, "the same step is executing elsewhere; waiting for its result");
                    waited = true;
                    if let Err(e) = file.lock() {
                        tracing::debug!(path = %path.display(), error = %e, "cannot wait for the claim; running unclaimed");
                        return None;
                    }
                }
                Err(TryLockError::Error(e)) => {
                    tracing::debug!(path = %path.display(), error = %e, "cannot lock the claim; running unclaimed");
                    return None;
                }
            }
            // The owner we waited for removes the file before unlocking: ours must still be the
            // file at `path`, else open it again.
            if same_file(&file, &path) {
                return Some(Claim { file, path, waited });
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    let open = || OpenOptions::new().create(true).truncate(false).write(true).open(path);
    open().or_else(|_| {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        open()
    })
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    #[test]
    fn twins_take_turns_and_the_file_is_gone_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (dir, inside, most, start) =
                    (dir.path().to_path_buf(), inside.clone(), most.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..25 {
                        let claim = Claim::acquire(&dir, "abc", "step").expect("claims work in a temp dir");
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(claim);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "never two holders of one signature at once");
        assert!(!dir.path().join("abc.lock").exists());
        let other = Claim::acquire(dir.path(), "abc", "step").unwrap();
        let unrelated = Claim::acquire(dir.path(), "def", "step");
        assert!(unrelated.is_some(), "another signature is not blocked");
        drop(other);
    }
}
