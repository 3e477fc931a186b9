//! Where a catalog lives: the one place a location (`runs/provenance.duckdb`, later
//! `postgres://...`) becomes a [`CatalogLocation`], for `Tracker::builder(..).catalog(..)`, the
//! CLI's `--db-path` and the `CONSIST_DB` environment variable alike.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The environment variable that names the catalog when the code or the command line does not.
pub const CATALOG_ENV: &str = "CONSIST_DB";

/// A parsed catalog location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogLocation {
    /// An embedded DuckDB file (created on first write).
    DuckDb(PathBuf),
}

impl CatalogLocation {
    /// Parse a location: a file path is a DuckDB catalog; a URL names a server catalog. A URL
    /// whose scheme is not supported is an error naming the accepted forms; a password in it is
    /// never repeated.
    pub fn parse(location: &str) -> Result<CatalogLocation> {
        let trimmed = location.trim();
        if trimmed.is_empty() {
            return Err(unsupported(location, "it is empty"));
        }
        match trimmed.split_once("://") {
            None => Ok(CatalogLocation::DuckDb(PathBuf::from(location))),
            Some(("postgres" | "postgresql", _)) => {
                Err(unsupported(location, "PostgreSQL catalogs are not available in this version of consist"))
            }
            Some((scheme, _)) => Err(unsupported(location, &format!("`{scheme}://` is not a catalog scheme"))),
        }
    }

    /// The location named by `CONSIST_DB`, if it is set and not empty.
    pub fn from_env() -> Result<Option<CatalogLocation>> {
        match std::env::var(CATALOG_ENV) {
            Ok(text) if !text.trim().is_empty() => CatalogLocation::parse(&text).map(Some),
            _ => Ok(None),
        }
    }

    /// The DuckDB file, for a DuckDB location.
    pub fn duckdb_path(&self) -> Option<&Path> {
        match self {
            CatalogLocation::DuckDb(path) => Some(path),
        }
    }
}

impl From<PathBuf> for CatalogLocation {
    fn from(path: PathBuf) -> CatalogLocation {
        CatalogLocation::DuckDb(path)
    }
}

impl fmt::Display for CatalogLocation {
    /// The path, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogLocation::DuckDb(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `scheme://user:secret@host/db` -> `scheme://user:***@host/db`: a location as it may be shown.
pub fn redact(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else { return location.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => location.to_owned(),
        },
        None => location.to_owned(),
    }
}

fn unsupported(location: &str, reason: &str) -> Error {
    Error::CatalogLocation { location: redact(location), reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_duckdb_and_urls_are_refused_with_the_accepted_forms() {
        assert_eq!(
            CatalogLocation::parse("runs/provenance.duckdb").unwrap(),
            CatalogLocation::DuckDb("runs/provenance.duckdb".into())
        );
        let pg = CatalogLocation::parse("postgres://alice:s3cret@db.lab/consist").unwrap_err().to_string();
        assert!(pg.contains("postgres://alice:***@db.lab/consist"), "{pg}");
        assert!(!pg.contains("s3cret"), "the password is never shown: {pg}");
        assert!(pg.contains("a path to a DuckDB file"), "{pg}");
        let other = CatalogLocation::parse("s3://bucket/x").unwrap_err().to_string();
        assert!(other.contains("`s3://` is not a catalog scheme"), "{other}");
        assert!(CatalogLocation::parse("  ").is_err());
    }

    #[test]
    fn redaction_keeps_everything_but_the_password() {
        assert_eq!(redact("postgres://u:p@h:5432/db?x=1"), "postgres://u:***@h:5432/db?x=1");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("runs/provenance.duckdb"), "runs/provenance.duckdb");
    }
}
