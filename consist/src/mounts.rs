//! Where a recorded URI points on this machine: the run directory (`./path`), a named mount
//! (`inputs://path`), or an absolute path.
//!
//! A mount names a directory whose files are recorded relative to it, so that a catalog stays
//! valid on a machine (or in a checkout) that holds the same data elsewhere: each process
//! resolves `name://` through its own mount table (`Tracker::builder(..).mount(name, dir)`). A
//! file outside the run directory and every mount is recorded by its absolute path, which
//! `consist db inspect` lists as not portable. Relative parts are checked like `./` URIs: they
//! never leave their directory.

use std::path::{Path, PathBuf};

use crate::artifact::resolve_uri;
use crate::error::{Error, Result};

/// The mount table of one tracker: names and the directories they stand for here.
#[derive(Debug, Clone, Default)]
pub struct Mounts {
    /// Longest root first, so that a mount inside another one wins.
    table: Vec<(String, PathBuf)>,
}

impl Mounts {
    /// Add mount `name` for `root` (made absolute). A name is a lowercase letter followed by
    /// lowercase letters, digits, `_` or `-` (it becomes a URI scheme); each name once.
    pub fn add(&mut self, name: &str, root: &Path) -> Result<()> {
        let bad = |reason: String| Error::InvalidMount { name: name.to_owned(), reason };
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(bad("a mount name is a lowercase letter, then lowercase letters, digits, `_` or `-`".into()));
        }
        if self.table.iter().any(|(n, _)| n == name) {
            return Err(bad("it is mounted twice; give each directory its own name".into()));
        }
        let root = std::path::absolute(root).map_err(|e| bad(format!("its directory {}: {e}", root.display())))?;
        self.table.push((name.to_owned(), root));
        self.table.sort_by_key(|(_, root)| std::cmp::Reverse(root.components().count()));
        Ok(())
    }

    /// The mounts, as (name, directory).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.table.iter().map(|(n, r)| (n.as_str(), r.as_path()))
    }

    /// The URI to record for `path`: `./rel` under `run_dir`, `name://rel` under a mount, else
    /// the absolute path.
    pub fn uri_for(&self, path: &Path, run_dir: &Path) -> String {
        if let Ok(rel) = path.strip_prefix(run_dir) {
            return format!("./{}", slashed(rel));
        }
        for (name, root) in &self.table {
            if let Ok(rel) = path.strip_prefix(root) {
                return format!("{name}://{}", slashed(rel));
            }
        }
        path.to_string_lossy().into_owned()
    }

    /// Where `uri` is on this machine: `./` URIs against `run_dir`, `name://` URIs through this
    /// table (an unknown name is an error naming the fix), absolute ones as they are.
    pub fn resolve(&self, uri: &str, run_dir: &Path) -> Result<PathBuf> {
        let Some((name, rel)) = split_mount(uri) else { return resolve_uri(uri, run_dir) };
        let Some((_, root)) = self.table.iter().find(|(n, _)| n == name) else {
            return Err(Error::InvalidMount {
                name: name.to_owned(),
                reason: format!(
                    "`{uri}` was recorded under mount `{name}`, which this tracker does not have; \
                     add `Tracker::builder(..).mount(\"{name}\", <its directory here>)`"
                ),
            });
        };
        // The part after the mount is checked exactly like a run-relative URI.
        resolve_uri(&format!("./{rel}"), root)
    }
}

/// `(mount, relative part)` of a `name://rel` URI.
pub(crate) fn split_mount(uri: &str) -> Option<(&str, &str)> {
    let (name, rel) = uri.split_once("://")?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
        .then_some((name, rel))
}

/// Whether a recorded URI is valid on another machine (relative to a run dir or a mount).
pub fn is_portable(uri: &str) -> bool {
    uri.starts_with("./") || split_mount(uri).is_some()
}

fn slashed(rel: &Path) -> String {
    rel.to_string_lossy().replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_a_mount_are_recorded_relative_to_it_and_resolved_through_the_table_here() {
        let mut a = Mounts::default();
        a.add("inputs", Path::new("/data/a")).unwrap();
        a.add("deep", Path::new("/data/a/sub")).unwrap();
        let run_dir = Path::new("/work/runs");
        assert_eq!(a.uri_for(Path::new("/data/a/x/y.csv"), run_dir), "inputs://x/y.csv");
        assert_eq!(a.uri_for(Path::new("/data/a/sub/z.csv"), run_dir), "deep://z.csv", "the innermost mount wins");
        assert_eq!(a.uri_for(Path::new("/work/runs/outputs/o.bin"), run_dir), "./outputs/o.bin");
        assert_eq!(a.uri_for(Path::new("/elsewhere/r.csv"), run_dir), "/elsewhere/r.csv");
        assert!(!is_portable("/elsewhere/r.csv") && is_portable("inputs://x") && is_portable("./o"));
        let mut b = Mounts::default();
        b.add("inputs", Path::new("/mnt/b")).unwrap();
        assert_eq!(b.resolve("inputs://x/y.csv", run_dir).unwrap(), Path::new("/mnt/b/x/y.csv"));
        let unknown = b.resolve("deep://z.csv", run_dir).unwrap_err().to_string();
        assert!(unknown.contains(".mount(\"deep\""), "{unknown}");
        assert!(b.resolve("inputs://../escape", run_dir).is_err(), "a mount URI never leaves its mount");
    }

    #[test]
    fn bad_mount_names_and_twice_mounted_names_are_refused() {
        let mut m = Mounts::default();
        for bad in ["", "Inputs", "1x", "a b", "a:b", "a/b"] {
            assert!(m.add(bad, Path::new("/d")).is_err(), "{bad:?}");
        }
        m.add("inputs", Path::new("/d")).unwrap();
        assert!(m.add("inputs", Path::new("/e")).unwrap_err().to_string().contains("twice"));
    }
}
