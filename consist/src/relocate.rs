//! Where a moved project's recorded paths are now. A DuckDB catalog remembers each directory it
//! has been used from (`<db>.consist/homes`, one line each, symlinks resolved). Opened from a
//! new one, a recorded absolute path under an earlier home that no longer exists is looked for
//! at the same place under the current home: `/work/study/runs/outputs/x.parquet` is
//! `/scratch/study-2025/runs/outputs/x.parquet` once the catalog in `/work/study/runs` lives in
//! `/scratch/study-2025/runs`. Only paths under the catalog's own directory move with it. A path
//! found this way is checked against its recorded hash before a step or a load reads it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// How the catalog's earlier homes map onto its current one, most recent first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Relocation {
    shifts: Vec<(PathBuf, PathBuf)>,
}

impl Relocation {
    /// The relocation of the DuckDB catalog at `db` (its homes in `<db>.consist/`).
    pub(crate) fn of(db: &Path) -> Relocation {
        match db.parent() {
            Some(home) => Relocation::note(&crate::layout::catalog_dir(db), home, false),
            None => Relocation::default(),
        }
    }

    /// Read the homes recorded in the state directory `state` (`<db>.consist`) and record `home`
    /// (the database's directory) when it is not the last one. Best effort: a catalog that
    /// cannot be written (read-only) still maps its recorded homes. With `create`, a missing
    /// state directory is created (a tracker about to write there).
    pub(crate) fn note(state: &Path, home: &Path, create: bool) -> Relocation {
        let home =
            std::fs::canonicalize(crate::mounts::normalize(home)).unwrap_or_else(|_| crate::mounts::normalize(home));
        let file = state.join("homes");
        let recorded: Vec<PathBuf> = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect();
        if recorded.last() != Some(&home) && (state.is_dir() || (create && std::fs::create_dir_all(state).is_ok())) {
            let line = format!("{}\n", home.display());
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
                .and_then(|mut f| f.write_all(line.as_bytes()));
            if let Err(e) = appended {
                tracing::debug!(file = %file.display(), error = %e, "could not record the catalog's location");
            }
        }
        let mut shifts: Vec<(PathBuf, PathBuf)> =
            recorded.iter().rev().filter(|old| **old != home).map(|old| (old.clone(), home.clone())).collect();
        shifts.dedup();
        Relocation { shifts }
    }

    /// Where `recorded` is now, when it no longer exists but its moved counterpart does.
    pub(crate) fn path(&self, recorded: &Path) -> Option<PathBuf> {
        if self.shifts.is_empty() || recorded.exists() {
            return None;
        }
        self.shifts
            .iter()
            .filter_map(|(old, new)| recorded.strip_prefix(old).ok().map(|rest| new.join(rest)))
            .find(|candidate| candidate.exists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_used_from_a_new_place_finds_its_recorded_paths_there() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a/runs"), dir.path().join("b/runs"));
        let state = |home: &Path| home.join("provenance.duckdb.consist");
        std::fs::create_dir_all(&a).unwrap();
        assert!(Relocation::note(&state(&a), &a, true).shifts.is_empty());
        std::fs::write(a.join("x.csv"), "1").unwrap();
        std::fs::rename(dir.path().join("a"), dir.path().join("b")).unwrap();
        let moved = Relocation::note(&state(&b), &b, false);
        let (a, b) = (std::fs::canonicalize(dir.path()).unwrap().join("a/runs"), std::fs::canonicalize(&b).unwrap());
        assert_eq!(moved.path(&a.join("x.csv")), Some(b.join("x.csv")));
        assert_eq!(moved.path(&a.with_file_name("elsewhere.csv")), None, "only under the catalog's directory");
        assert_eq!(moved.path(&a.join("gone.csv")), None, "only to a file that is there");
        let homes = std::fs::read_to_string(state(&b).join("homes")).unwrap();
        assert_eq!(homes.lines().count(), 2, "{homes}");
    }
}
