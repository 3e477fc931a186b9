//! A directory's identity (a Zarr store, a shapefile set, a model's output folder): blake3 of its
//! listing (its files' relative paths and identities, sorted), so two trees with the same files
//! hold the same identity wherever they are. Symlinks are refused (what they point at can change without
//! the tree changing), and so are special files.

use std::io::{Error, ErrorKind};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The listing's format name and version.
const FORMAT: &str = "consist-tree-v1";

/// A tree's listing: every file's path relative to the directory (`/`-separated) and its
/// identity, sorted by path. Its compact JSON is what the tree's identity hashes, so the
/// listing itself is a content-addressed object (a remote stores it under the tree's identity).
#[derive(Serialize, Deserialize)]
struct Listing {
    format: String,
    files: Vec<(String, String)>,
}

/// The files of the directory `dir` with their identities (`file_identity`, called in sorted
/// relative-path order).
pub(crate) fn listing(
    dir: &Path,
    mut file_identity: impl FnMut(&Path) -> std::io::Result<String>,
) -> std::io::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
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
        files.push((name.replace(std::path::MAIN_SEPARATOR, "/"), file_identity(entry.path())?));
    }
    Ok(files)
}

/// The bytes a listing is stored as and hashed from.
pub(crate) fn listing_bytes(files: Vec<(String, String)>) -> Vec<u8> {
    serde_json::to_vec(&Listing { format: FORMAT.to_owned(), files }).unwrap_or_default()
}

/// The identity of the directory `dir`: blake3 of its listing's bytes. An empty directory has
/// an identity too.
pub(crate) fn identity(
    dir: &Path,
    file_identity: impl FnMut(&Path) -> std::io::Result<String>,
) -> std::io::Result<String> {
    Ok(blake3::hash(&listing_bytes(listing(dir, file_identity)?)).to_hex().to_string())
}

/// A listing read back (from a remote): `None` unless every path stays inside the tree and
/// every identity is a content hash.
pub(crate) fn parse_listing(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let listing: Listing = serde_json::from_slice(bytes).ok().filter(|l: &Listing| l.format == FORMAT)?;
    let inside = |name: &str| {
        !name.is_empty() && Path::new(name).components().all(|c| matches!(c, std::path::Component::Normal(_)))
    };
    let hash = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
    listing.files.iter().all(|(name, h)| inside(name) && hash(h)).then_some(listing.files)
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

    #[test]
    fn a_listing_is_the_object_its_identity_names_and_stays_inside_its_tree() {
        let a = tree(&[("x.txt", "1"), ("sub/y.txt", "2")]);
        let files = listing(a.path(), crate::files::hash::hash_file).unwrap();
        let bytes = listing_bytes(files.clone());
        assert_eq!(blake3::hash(&bytes).to_hex().to_string(), id(a.path()));
        assert_eq!(parse_listing(&bytes), Some(files));
        let h = "0".repeat(64);
        for hostile in [
            format!(r#"{{"format":"consist-tree-v1","files":[["../x","{h}"]]}}"#),
            format!(r#"{{"format":"consist-tree-v1","files":[["/etc/x","{h}"]]}}"#),
            r#"{"format":"consist-tree-v1","files":[["x","nothex"]]}"#.to_owned(),
        ] {
            assert_eq!(parse_listing(hostile.as_bytes()), None, "{hostile}");
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
