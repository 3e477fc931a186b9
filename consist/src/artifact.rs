//! Artifacts: the files and values a run reads or writes, with their content hash and producer.

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How an artifact's bytes are laid out, i.e. how to load it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Driver {
    /// Apache Parquet table (polars `DataFrame` outputs).
    Parquet,
    /// CSV table.
    Csv,
    /// JSON document.
    Json,
    /// A typed Rust value encoded by the value codec (see `meta.codec`).
    Bincode,
    /// Any other file.
    File,
    /// A directory (a Zarr store, a shapefile set, a model's output folder), identified by its
    /// tree of files (see [`crate::StepContext::log_dir`]).
    Directory,
}

impl Driver {
    /// The driver name as stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Parquet => "parquet",
            Driver::Csv => "csv",
            Driver::Json => "json",
            Driver::Bincode => "bincode",
            Driver::File => "file",
            Driver::Directory => "directory",
        }
    }

    /// Guess the driver of a file from its extension.
    pub fn from_path(path: &Path) -> Driver {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("parquet") | Some("pq") => Driver::Parquet,
            Some("csv") => Driver::Csv,
            Some("json") => Driver::Json,
            Some("bin") => Driver::Bincode,
            _ => Driver::File,
        }
    }

    /// Parse a stored driver name; unknown names become [`Driver::File`].
    pub fn parse(name: &str) -> Driver {
        match name {
            "parquet" => Driver::Parquet,
            "csv" => Driver::Csv,
            "json" => Driver::Json,
            "bincode" => Driver::Bincode,
            "directory" => Driver::Directory,
            _ => Driver::File,
        }
    }
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file or value recorded in the provenance store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Unique id (UUID text).
    pub id: String,
    /// Logical name, e.g. `cleaned`; the key a step declared it under.
    pub key: String,
    /// Portable location: `./path` relative to the producing run directory, or an absolute path.
    pub uri: String,
    /// Absolute path of the file on this machine.
    pub path: PathBuf,
    /// How to load it.
    pub driver: Driver,
    /// blake3 of the bytes (hex), when known.
    pub hash: Option<String>,
    /// Id of the run that produced it (`None` for raw input files).
    pub run_id: Option<String>,
    /// Signature of the producing run: what a consumer hashes instead of the bytes (Merkle link).
    pub producer_signature: Option<String>,
    /// Free-form metadata (codec, rust type, row count...).
    #[serde(default)]
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

impl Artifact {
    /// Record a file under `key` at `path`, recorded as `uri` (see [`crate::Mounts::uri_for`]).
    pub(crate) fn for_file(key: &str, path: &Path, uri: String, driver: Driver, hash: Option<String>) -> Artifact {
        Artifact {
            id: uuid::Uuid::new_v4().to_string(),
            key: key.to_owned(),
            uri,
            path: path.to_path_buf(),
            driver,
            hash,
            run_id: None,
            producer_signature: None,
            meta: serde_json::Map::new(),
            created_at: Utc::now(),
        }
    }

    /// The identity this artifact contributes to a consumer's input hash.
    pub(crate) fn input_identity(&self) -> Option<String> {
        match (&self.producer_signature, &self.hash) {
            (Some(sig), _) => Some(format!("run:{sig}:{}", self.key)),
            (None, Some(hash)) => Some(format!("blake3:{hash}")),
            (None, None) => None,
        }
    }
}

/// `./relative/path` when `path` lies under `base`, else the absolute path as text.
pub fn uri_for(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) => format!("./{}", rel.to_string_lossy().replace('\\', "/")),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}

/// Resolve a URI produced by [`uri_for`] against the run directory it is relative to.
///
/// A relative URI must stay inside `base`: one with a `..` component, a root or a drive prefix
/// after `./`, or a NUL byte is refused, so a tampered or merged record can never make consist
/// copy or read a file outside the run directory through a relative URI. Absolute URIs are taken
/// as they are (raw inputs live anywhere).
pub fn resolve_uri(uri: &str, base: &Path) -> crate::Result<PathBuf> {
    let refuse = |reason: &str| crate::Error::UnsafePath {
        kind: "artifact URI",
        value: uri.escape_debug().to_string(),
        reason: format!(
            "{reason}; URIs are `./path/inside/the/run/dir`, `mount://path/inside/the/mount` or an absolute path"
        ),
    };
    if uri.contains('\0') {
        return Err(refuse("it contains a NUL byte"));
    }
    match uri.strip_prefix("./") {
        Some(rel) => {
            let rel = Path::new(rel);
            if rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
                Ok(base.join(rel))
            } else {
                Err(refuse("it leaves the run directory (`..`, or a root after `./`)"))
            }
        }
        None if Path::new(uri).is_absolute() => Ok(PathBuf::from(uri)),
        None => Err(refuse("it is neither relative to the run directory nor absolute")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        let base = Path::new("/data/runs");
        let inside = Path::new("/data/runs/outputs/r1/x.parquet");
        assert_eq!(uri_for(inside, base), "./outputs/r1/x.parquet");
        assert_eq!(resolve_uri(&uri_for(inside, base), base).unwrap(), inside);
        let outside = Path::new("/elsewhere/raw.csv");
        assert_eq!(uri_for(outside, base), "/elsewhere/raw.csv");
        assert_eq!(resolve_uri(&uri_for(outside, base), base).unwrap(), outside);
    }

    #[test]
    fn relative_uris_that_leave_the_run_dir_are_refused() {
        let base = Path::new("/data/runs");
        for bad in ["./../etc/passwd", "./a/../../x", ".//abs", "./a\0b", "relative/x", "../x"] {
            let err = resolve_uri(bad, base).unwrap_err().to_string();
            assert!(err.starts_with("artifact URI `"), "{bad}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn relative_uris_resolve_back(parts in proptest::collection::vec("[a-zA-Z0-9_.-]{1,8}", 1..5)) {
            let base = Path::new("/data/runs");
            let path = parts.iter().filter(|p| *p != "." && *p != "..").fold(base.to_path_buf(), |acc, p| acc.join(p));
            let uri = uri_for(&path, base);
            proptest::prop_assert!(uri.starts_with("./") || path == base);
            proptest::prop_assert_eq!(resolve_uri(&uri, base).unwrap(), path);
        }

        #[test]
        fn a_resolved_relative_uri_never_leaves_the_run_dir(rel in "[a-z./\\\\\\x00]{0,16}") {
            let base = Path::new("/data/runs");
            if let Ok(path) = resolve_uri(&format!("./{rel}"), base) {
                proptest::prop_assert!(path.starts_with(base));
                proptest::prop_assert!(path.components().all(|c| c != Component::ParentDir));
            }
        }
    }

    #[test]
    fn drivers_follow_extensions() {
        assert_eq!(Driver::from_path(Path::new("a.PARQUET")), Driver::Parquet);
        assert_eq!(Driver::from_path(Path::new("a.csv")), Driver::Csv);
        assert_eq!(Driver::from_path(Path::new("a")), Driver::File);
        for d in [Driver::Parquet, Driver::Csv, Driver::Json, Driver::Bincode, Driver::File] {
            assert_eq!(Driver::parse(d.as_str()), d);
        }
    }
}
