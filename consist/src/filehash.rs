//! Content hashing of files (`full`: blake3 of the bytes) or their metadata (`fast`), memoized.

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

#[derive(Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime_ns: u128,
}

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    let mtime_ns = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    Stamp { len: meta.len(), mtime_ns }
}

/// blake3 of a file's bytes, hex.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    if std::fs::metadata(path)?.len() >= MMAP_THRESHOLD {
        hasher.update_mmap_rayon(path)?;
    } else {
        hasher.update(&std::fs::read(path)?);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Remembers file identities by (path, size, mtime) so an unchanged file is hashed once per process.
#[derive(Default)]
pub(crate) struct FileHasher {
    memo: Mutex<HashMap<PathBuf, (Stamp, String)>>,
}

impl FileHasher {
    /// The identity string of a file under a strategy: `blake3:<hex>` or `stat:<size>:<mtime ns>`.
    pub(crate) fn identity(&self, path: &Path, strategy: HashingStrategy) -> std::io::Result<String> {
        let meta = std::fs::metadata(path)?;
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
        let hash = hash_file(path)?;
        self.remember(path, st, hash.clone());
        Ok(format!("blake3:{hash}"))
    }

    /// Record the hash of a file we just wrote, so using it as an input does not re-read it.
    pub(crate) fn record(&self, path: &Path, hash: &str) {
        if let Ok(meta) = std::fs::metadata(path) {
            self.remember(path, stamp(&meta), hash.to_owned());
        }
    }

    fn remember(&self, path: &Path, st: Stamp, hash: String) {
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        memo.insert(path.to_path_buf(), (st, hash));
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
    fn directories_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(FileHasher::default().identity(dir.path(), HashingStrategy::Full).is_err());
    }
}
