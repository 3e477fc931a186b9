//! Content hashing of files (`full`: blake3 of the bytes) or their metadata (`fast`), memoized:
//! in the process, and across processes (files of 64 KiB or more) in `<catalog>.consist/hashes/`,
//! one small file per path holding the hash with the size, mtime, inode and ctime the file had. A file whose four are
//! unchanged is not read again (ctime moves on every write, even one that restores the mtime).
//! An entry written less than [`RACY`] after the file's mtime is not trusted (a write in the same
//! timestamp tick would leave every field unchanged), so such a file is hashed once more.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

/// How raw input files are identified in a signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashingStrategy {
    /// blake3 of the file's bytes (memory-mapped and multi-threaded for large files).
    #[default]
    Full,
    /// File size and modification time: instant, but a touched file counts as changed and an
    /// edit that keeps size and mtime goes unnoticed.
    Fast,
}

/// Files at least this large are hashed memory-mapped on all cores.
const MMAP_THRESHOLD: u64 = 4 << 20;

/// Files smaller than this are not remembered across processes: hashing them again costs less
/// than writing and reading a memo entry (a file creation alone costs ~0.1 ms on ext4).
const REMEMBER_MIN: u64 = 64 << 10;

/// How long after a file's mtime its recorded hash can be trusted by another process.
const RACY: u128 = 2_000_000_000;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    len: u64,
    mtime_ns: u128,
    #[serde(default)]
    inode: u64,
    #[serde(default)]
    ctime_ns: i128,
}

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    let mtime_ns = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let (inode, ctime_ns) = {
        use std::os::unix::fs::MetadataExt;
        (meta.ino(), i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()))
    };
    #[cfg(not(unix))]
    let (inode, ctime_ns) = (0, 0);
    Stamp { len: meta.len(), mtime_ns, inode, ctime_ns }
}

fn now_ns() -> u128 {
    std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// A hash remembered across processes.
#[derive(Serialize, Deserialize)]
struct Remembered {
    path: PathBuf,
    stamp: Stamp,
    hashed_at_ns: u128,
    hash: String,
}

/// blake3 of a file's bytes, hex; of a directory, its tree identity from every file's bytes
/// (sorted relative paths and each file's blake3; symlinks refused), nothing remembered.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    if std::fs::metadata(path)?.is_dir() {
        return crate::files::tree::identity(path, hash_file);
    }
    let mut hasher = blake3::Hasher::new();
    if std::fs::metadata(path)?.len() >= MMAP_THRESHOLD {
        hasher.update_mmap_rayon(path)?;
    } else {
        hasher.update(&std::fs::read(path)?);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Remembers file identities by path and stamp, so an unchanged file is hashed once.
#[derive(Default)]
pub(crate) struct FileHasher {
    memo: Mutex<HashMap<PathBuf, (Stamp, String)>>,
    /// Where hashes are remembered across processes (`None`: this process only).
    dir: Option<PathBuf>,
}

impl FileHasher {
    /// The identity string of a file under a strategy: `blake3:<hex>` or `stat:<size>:<mtime ns>`.
    pub(crate) fn identity(&self, path: &Path, strategy: HashingStrategy) -> std::io::Result<String> {
        let meta = std::fs::metadata(path)?;
        if meta.is_dir() {
            // Each file by its own identity (remembered by its own stamp): a directory's stamp
            // does not change when a file in it is rewritten, so it is never remembered itself.
            let tree = crate::files::tree::identity(path, |file| {
                let id = self.identity(file, strategy)?;
                Ok(id.strip_prefix("blake3:").map_or(id.clone(), str::to_owned))
            })?;
            return Ok(match strategy {
                HashingStrategy::Full => format!("blake3:{tree}"),
                HashingStrategy::Fast => format!("stat:tree:{tree}"),
            });
        }
        if !meta.is_file() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "is not a regular file"));
        }
        let st = stamp(&meta);
        if strategy == HashingStrategy::Fast {
            return Ok(format!("stat:{}:{}", st.len, st.mtime_ns));
        }
        let memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, hash)) = memo.get(path)
            && *seen == st
        {
            return Ok(format!("blake3:{hash}"));
        }
        drop(memo);
        // Small files are neither looked up nor remembered across processes (no memo file I/O).
        let across = st.len >= REMEMBER_MIN;
        if let Some(hash) = across.then(|| self.recall(path, &st)).flatten() {
            self.remember(path, st, hash.clone());
            return Ok(format!("blake3:{hash}"));
        }
        let hash = hash_file(path)?;
        if across {
            self.persist(path, &st, &hash);
        }
        self.remember(path, st, hash.clone());
        Ok(format!("blake3:{hash}"))
    }

    /// A hasher that also remembers hashes in `dir`, for later processes.
    pub(crate) fn persisted(dir: PathBuf) -> FileHasher {
        FileHasher { memo: Mutex::default(), dir: Some(dir) }
    }

    fn entry_path(&self, path: &Path) -> Option<PathBuf> {
        let name = blake3::hash(path.as_os_str().as_encoded_bytes()).to_hex();
        self.dir.as_ref().map(|d| d.join(format!("{}.json", &name[..32])))
    }

    /// The hash another process recorded for this file, if the file is unchanged since and the
    /// entry is not racy.
    fn recall(&self, path: &Path, st: &Stamp) -> Option<String> {
        let bytes = std::fs::read(self.entry_path(path)?).ok()?;
        let entry: Remembered = serde_json::from_slice(&bytes).ok()?;
        let trusted = entry.path == path && entry.stamp == *st && st.mtime_ns + RACY <= entry.hashed_at_ns;
        trusted.then_some(entry.hash)
    }

    /// Remember a hash for later processes (best effort: a failure only costs a re-hash).
    fn persist(&self, path: &Path, st: &Stamp, hash: &str) {
        let (Some(dir), Some(file)) = (&self.dir, self.entry_path(path)) else { return };
        let entry =
            Remembered { path: path.to_path_buf(), stamp: st.clone(), hashed_at_ns: now_ns(), hash: hash.to_owned() };
        let Ok(bytes) = serde_json::to_vec(&entry) else { return };
        let written = crate::files::atomic::write_atomic(&file, &bytes, false).or_else(|_| {
            std::fs::create_dir_all(dir)?;
            crate::files::atomic::write_atomic(&file, &bytes, false)
        });
        if let Err(e) = written {
            tracing::debug!(file = %file.display(), error = %e, "could not remember a file hash");
        }
    }

    /// Record the hash of a file we just wrote, so using it as an input does not re-read it.
    pub(crate) fn record(&self, path: &Path, hash: &str) {
        if let Ok(meta) = std::fs::metadata(path).and_then(|m| match m.is_file() {
            true => Ok(m),
            // A directory's identity is never remembered by its own stamp (see `identity`).
            false => Err(std::io::ErrorKind::InvalidInput.into()),
        }) {
            self.remember(path, stamp(&meta), hash.to_owned());
        }
    }

    fn remember(&self, path: &Path, st: Stamp, hash: String) {
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        super::remember_bounded(&mut memo, path.to_path_buf(), (st, hash));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_identity_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "x\n1\n").unwrap();
        let h = FileHasher::default();
        let first = h.identity(&p, HashingStrategy::Full).unwrap();
        assert_eq!(first, format!("blake3:{}", blake3::hash(b"x\n1\n").to_hex()));
        std::fs::write(&p, "x\n2\n").unwrap();
        assert_ne!(h.identity(&p, HashingStrategy::Full).unwrap(), first);
    }

    #[test]
    fn fast_identity_is_size_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        std::fs::write(&p, [0u8; 10]).unwrap();
        let id = FileHasher::default().identity(&p, HashingStrategy::Fast).unwrap();
        assert!(id.starts_with("stat:10:"), "{id}");
    }

    #[test]
    fn a_later_process_trusts_a_remembered_hash_only_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let hashes = dir.path().join("hashes");
        let p = dir.path().join("big.csv");
        let (one, two) = (format!("x\n{}\n", "1".repeat(70_000)), format!("x\n{}\n", "2".repeat(70_000)));
        std::fs::write(&p, &one).unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&p).unwrap().set_modified(hour_ago).unwrap();
        let real = FileHasher::persisted(hashes.clone()).identity(&p, HashingStrategy::Full).unwrap();
        // Plant a different hash in the entry: a new process that answers with it did not read the file.
        let entry_file = std::fs::read_dir(&hashes).unwrap().next().unwrap().unwrap().path();
        let text = std::fs::read_to_string(&entry_file).unwrap();
        let hex = real.strip_prefix("blake3:").unwrap();
        std::fs::write(&entry_file, text.replace(hex, "planted")).unwrap();
        assert_eq!(
            FileHasher::persisted(hashes.clone()).identity(&p, HashingStrategy::Full).unwrap(),
            "blake3:planted"
        );
        // Any write moves ctime, even one that puts the old mtime back: hashed again.
        std::fs::write(&p, &two).unwrap();
        std::fs::File::options().write(true).open(&p).unwrap().set_modified(hour_ago).unwrap();
        let changed = FileHasher::persisted(hashes.clone()).identity(&p, HashingStrategy::Full).unwrap();
        assert_eq!(changed, format!("blake3:{}", blake3::hash(two.as_bytes()).to_hex()));
        // A file hashed right after it was written is racy: the next process hashes it again.
        let fresh = dir.path().join("fresh.csv");
        let y = "y\n".repeat(40_000);
        std::fs::write(&fresh, &y).unwrap();
        FileHasher::persisted(hashes.clone()).identity(&fresh, HashingStrategy::Full).unwrap();
        for entry in std::fs::read_dir(&hashes).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let planted = text.replace(&blake3::hash(y.as_bytes()).to_hex().to_string(), "planted");
            std::fs::write(&path, planted).unwrap();
        }
        let again = FileHasher::persisted(hashes.clone()).identity(&fresh, HashingStrategy::Full).unwrap();
        assert_eq!(again, format!("blake3:{}", blake3::hash(y.as_bytes()).to_hex()));
        // A small file is not remembered at all (hashing it again is cheaper).
        let small = dir.path().join("small.csv");
        std::fs::write(&small, "z\n").unwrap();
        let entries = std::fs::read_dir(&hashes).unwrap().count();
        FileHasher::persisted(hashes.clone()).identity(&small, HashingStrategy::Full).unwrap();
        assert_eq!(std::fs::read_dir(&hashes).unwrap().count(), entries);
    }

    #[test]
    fn a_directory_is_identified_by_its_files_never_by_its_own_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.txt");
        std::fs::write(&file, "one").unwrap();
        let hasher = FileHasher::default();
        let before = hasher.identity(dir.path(), HashingStrategy::Full).unwrap();
        assert_eq!(before, format!("blake3:{}", hash_file(dir.path()).unwrap()), "lazy and eager agree");
        hasher.record(dir.path(), "not remembered");
        let dir_stamp = std::fs::metadata(dir.path()).unwrap().modified().unwrap();
        std::fs::write(&file, "two").unwrap();
        assert_eq!(
            std::fs::metadata(dir.path()).unwrap().modified().unwrap(),
            dir_stamp,
            "the directory's own stamp stays"
        );
        let after = hasher.identity(dir.path(), HashingStrategy::Full).unwrap();
        assert_ne!(after, before, "a file rewritten inside changes the directory's identity");
    }
}
