//! A directory's identity (a Zarr store, a shapefile set, a model's output folder): blake3 over
//! its files' relative paths and identities, sorted, so two trees with the same files hold the
//! same identity wherever they are. Symlinks are refused (what they point at can change without
//! the tree changing), and so are special files.

use std::io::{Error, ErrorKind};
use std::path::Path;

/// Domain separation of tree identities from file identities.
const TREE_DOMAIN: &str = "consist-tree-v1";

/// The identity of the directory `dir`, from each file's identity (`file_identity`, called with
/// the file's path in sorted relative-path order). An empty directory has an identity too.
pub(crate) fn identity(
    dir: &Path,
    mut file_identity: impl FnMut(&Path) -> std::io::Result<String>,
) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(TREE_DOMAIN.as_bytes());
    for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name().min_depth(1) {
        let entry = entry.map_err(Error::other)?;
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        let relative = entry.path().strip_prefix(dir).map_err(Error::other)?;
        let name = relative.to_str().ok_or_else(|| {
            Error::new(ErrorKind::InvalidData, format!("{} is not a UTF-8 path; rename it", entry.path().display()))
        })?;
        if kind.is_symlink() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} is a symlink; a directory artifact holds regular files only (copy the target in)",
                    entry.path().display()
                ),
            ));
        }
        if !kind.is_file() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} is not a regular file; a directory artifact holds regular files only",
                    entry.path().display()
                ),
            ));
        }
        // Forward slashes on every platform: the identity does not depend on the host.
        let name = name.replace(std::path::MAIN_SEPARATOR, "/");
        hasher.update(&(name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        let file = file_identity(entry.path())?;
        hasher.update(&(file.len() as u64).to_le_bytes());
        hasher.update(file.as_bytes());
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// The files under `dir` and their total size, in bytes (for reports; no hashing).
pub(crate) fn size(dir: &Path) -> (usize, u64) {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .fold((0, 0), |(n, bytes), e| (n + 1, bytes + e.metadata().map_or(0, |m| m.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        dir
    }

    fn id(dir: &Path) -> String {
        identity(dir, crate::files::hash::hash_file).unwrap()
    }

    #[test]
    fn same_files_same_identity_and_any_change_is_seen() {
        let a = tree(&[("x.txt", "1"), ("sub/y.txt", "2")]);
        let b = tree(&[("sub/y.txt", "2"), ("x.txt", "1")]);
        assert_eq!(id(a.path()), id(b.path()), "independent of where and in which order");
        for changed in [
            tree(&[("x.txt", "1"), ("sub/y.txt", "3")]),
            tree(&[("x.txt", "1"), ("sub/z.txt", "2")]),
            tree(&[("x.txt", "1")]),
            tree(&[("x.txt", "1"), ("sub/y.txt", "2"), ("w", "")]),
            tree(&[("x.txt", "1"), ("suby.txt", "2")]),
        ] {
            assert_ne!(id(changed.path()), id(a.path()));
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused_by_name() {
        let a = tree(&[("x.txt", "1")]);
        std::os::unix::fs::symlink(a.path().join("x.txt"), a.path().join("link")).unwrap();
        let err = identity(a.path(), crate::files::hash::hash_file).unwrap_err().to_string();
        assert!(err.contains("link is a symlink") && err.contains("regular files only"), "{err}");
    }
}
