//! Where a recorded URI points on this machine: the run directory (`./path`), a named mount
//! (`inputs://path`), or an absolute path.
//!
//! A mount names a directory whose files are recorded relative to it, so that a catalog stays
//! valid on a machine (or in a checkout) that holds the same data elsewhere: each process
//! resolves `name://` through its own mount table (`Tracker::builder(..).mount(name, dir)`). A
//! file outside the run directory and every mount is recorded by its absolute path, which
//! `consist db inspect` lists as not portable. Relative parts are checked like `./` URIs: they
//! never leave their directory.

use std::path::{Component, Path, PathBuf};

use crate::artifact::resolve_uri;
use crate::error::{Error, Result};

/// The mount table of one tracker: names and the directories they stand for here.
#[derive(Debug, Clone, Default)]
pub struct Mounts {
    /// Longest root first, so that a mount inside another one wins. Roots are absolute and
    /// without `.`/`..`; `real` holds each root with symlinks resolved.
    table: Vec<(String, PathBuf)>,
    real: Vec<(String, PathBuf)>,
}

/// URI schemes a mount may not take: a recorded `file://...` or `s3://...` would read as a URL.
const RESERVED: &[&str] =
    &["file", "http", "https", "s3", "gs", "az", "ftp", "sftp", "ssh", "hdfs", "postgres", "postgresql"];

/// `path` made absolute, with `.` and `..` removed lexically (`data/../data/x` is `data/x`).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    // `Path::new("provenance.duckdb").parent()` is the empty path: the current directory.
    let path = if path.as_os_str().is_empty() { Path::new(".") } else { path };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl Mounts {
    /// Add mount `name` for the existing directory `root` (made absolute). A name is a lowercase
    /// letter followed by lowercase letters, digits, `_` or `-` (it becomes a URI scheme), not a
    /// common URL scheme (`file`, `http`, `s3`...); each name and each directory once.
    pub fn add(&mut self, name: &str, root: &Path) -> Result<()> {
        let bad = |reason: String| Error::InvalidMount { name: name.to_owned(), reason };
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            return Err(bad("a mount name is a lowercase letter, then lowercase letters, digits, `_` or `-`".into()));
        }
        if RESERVED.contains(&name) {
            return Err(bad(format!("`{name}://` is a URL scheme; pick another name (e.g. `inputs`, `shared`)")));
        }
        if self.table.iter().any(|(n, _)| n == name) {
            return Err(bad("it is mounted twice; give each directory its own name".into()));
        }
        let real = std::fs::canonicalize(root)
            .ok()
            .filter(|r| r.is_dir())
            .ok_or_else(|| bad(format!("{} is not an existing directory", root.display())))?;
        if let Some((other, _)) = self.real.iter().find(|(_, r)| *r == real) {
            return Err(bad(format!("{} is already mounted as `{other}`", root.display())));
        }
        self.table.push((name.to_owned(), normalize(root)));
        self.real.push((name.to_owned(), real));
        for table in [&mut self.table, &mut self.real] {
            table.sort_by_key(|(_, root)| std::cmp::Reverse(root.components().count()));
        }
        Ok(())
    }

    /// The mounts, as (name, directory).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.table.iter().map(|(n, r)| (n.as_str(), r.as_path()))
    }

    /// The URI to record for `path`: `./rel` under `run_dir`, `name://rel` under a mount, else
    /// the absolute path.
    /// Paths are compared without `.`/`..`, then with symlinks resolved (a mount given through a
    /// link still matches a file named by its real path, and the other way round).
    pub fn uri_for(&self, path: &Path, run_dir: &Path) -> String {
        let path = normalize(path);
        if let Ok(rel) = path.strip_prefix(normalize(run_dir)) {
            return format!("./{}", slashed(rel));
        }
        let under = |table: &[(String, PathBuf)], path: &Path| {
            table
                .iter()
                .find_map(|(name, root)| path.strip_prefix(root).ok().map(|rel| format!("{name}://{}", slashed(rel))))
        };
        if let Some(uri) = under(&self.table, &path) {
            return uri;
        }
        if !self.real.is_empty()
            && let Ok(real) = std::fs::canonicalize(&path)
            && let Some(uri) = under(&self.real, &real)
        {
            return uri;
        }
        path.to_string_lossy().into_owned()
    }

    /// Refuse a mount inside `run_dir`: files there are already recorded relative to it.
    pub(crate) fn check_outside(&self, run_dir: &Path) -> Result<()> {
        let run_dir = normalize(run_dir);
        match self.table.iter().find(|(_, root)| root.starts_with(&run_dir)) {
            Some((name, root)) => Err(Error::InvalidMount {
                name: name.clone(),
                reason: format!(
                    "{} is inside the run directory {}, whose files are already recorded relative to it (`./...`); \
                     mount a directory outside it",
                    root.display(),
                    run_dir.display()
                ),
            }),
            None => Ok(()),
        }
    }

    /// Where `uri` is on this machine: `./` URIs against `run_dir`, `name://` URIs through this
    /// table (an unknown name is an error naming the fix), absolute ones as they are.
    pub fn resolve(&self, uri: &str, run_dir: &Path) -> Result<PathBuf> {
        let Some((name, rel)) = split_mount(uri) else { return resolve_uri(uri, run_dir) };
        let Some((_, root)) = self.table.iter().find(|(n, _)| n == name) else {
            return Err(Error::InvalidMount {
                name: name.to_owned(),
                reason: format!(
                    "`{uri}` was recorded under it and this tracker does not have it; \
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
        let dir = tempfile::tempdir().unwrap();
        let (a, sub, b) = (dir.path().join("a"), dir.path().join("a/sub"), dir.path().join("b"));
        for d in [&sub, &b] {
            std::fs::create_dir_all(d).unwrap();
        }
        let mut mounts = Mounts::default();
        mounts.add("inputs", &a).unwrap();
        mounts.add("deep", &sub).unwrap();
        let run_dir = Path::new("/work/runs");
        assert_eq!(mounts.uri_for(&a.join("x/y.csv"), run_dir), "inputs://x/y.csv");
        assert_eq!(mounts.uri_for(&a.join("x/../x/./y.csv"), run_dir), "inputs://x/y.csv", "normalized");
        assert_eq!(mounts.uri_for(&sub.join("z.csv"), run_dir), "deep://z.csv", "the innermost mount wins");
        assert_eq!(mounts.uri_for(Path::new("/work/runs/outputs/o.bin"), run_dir), "./outputs/o.bin");
        assert_eq!(mounts.uri_for(Path::new("/elsewhere/r.csv"), run_dir), "/elsewhere/r.csv");
        assert!(!is_portable("/elsewhere/r.csv") && is_portable("inputs://x") && is_portable("./o"));
        // Through a symlink: the link's target is the mount.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&b, &link).unwrap();
        std::fs::create_dir_all(b.join("x")).unwrap();
        std::fs::write(b.join("x/y.csv"), "v\n1\n").unwrap();
        let mut here = Mounts::default();
        here.add("inputs", &link).unwrap();
        assert_eq!(here.uri_for(&b.join("x/y.csv"), run_dir), "inputs://x/y.csv");
        assert_eq!(here.resolve("inputs://x/y.csv", run_dir).unwrap(), link.join("x/y.csv"));
        let unknown = here.resolve("deep://z.csv", run_dir).unwrap_err().to_string();
        assert!(unknown.contains(".mount(\"deep\""), "{unknown}");
        assert!(here.resolve("inputs://../escape", run_dir).is_err(), "a mount URI never leaves its mount");
    }

    #[test]
    fn bad_mounts_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.csv");
        std::fs::write(&file, "x").unwrap();
        let mut m = Mounts::default();
        for bad in ["", "Inputs", "1x", "a b", "a:b", "a/b", "file", "s3", "http"] {
            assert!(m.add(bad, dir.path()).is_err(), "{bad:?}");
        }
        assert!(
            m.add("gone", &dir.path().join("missing")).unwrap_err().to_string().contains("not an existing directory")
        );
        assert!(m.add("afile", &file).is_err(), "a file is not a mount");
        m.add("inputs", dir.path()).unwrap();
        assert!(m.add("inputs", dir.path()).unwrap_err().to_string().contains("twice"));
        assert!(m.add("again", dir.path()).unwrap_err().to_string().contains("already mounted as `inputs`"));
        assert!(m.check_outside(&dir.path().join("runs")).is_ok());
        let inner = dir.path().join("runs/raw");
        std::fs::create_dir_all(&inner).unwrap();
        let mut inside = Mounts::default();
        inside.add("raw", &inner).unwrap();
        assert!(
            inside
                .check_outside(&dir.path().join("runs"))
                .unwrap_err()
                .to_string()
                .contains("inside the run directory")
        );
    }
}
