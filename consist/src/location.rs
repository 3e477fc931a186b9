//! Where a catalog lives: the one place a location (`runs/provenance.duckdb`,
//! `postgres://user@host/db`) becomes a [`CatalogLocation`], for `Tracker::builder(..).catalog(..)`,
//! the CLI's `--db-path` and the `CONSIST_DB` environment variable alike. A URL's password is
//! kept for connecting and never shown: `Display` and `Debug` redact it.

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
    /// A PostgreSQL database shared by many processes and hosts (schema created on first use).
    Postgres(PostgresUrl),
}

/// A PostgreSQL connection URL. Shown (`Display`, `Debug`) without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The full URL, password included, for connecting. Never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({})", redact(&self.0))
    }
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
            Some(("postgres" | "postgresql", rest)) if !rest.is_empty() => {
                Ok(CatalogLocation::Postgres(PostgresUrl(trimmed.to_owned())))
            }
            Some(("postgres" | "postgresql", _)) => Err(unsupported(location, "the URL names no server")),
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
            CatalogLocation::Postgres(_) => None,
        }
    }

    /// Where this process keeps the catalog's local state (signature index, pending queue, miss
    /// history) as `<path>.consist/`: beside a DuckDB file; for a server catalog, under the user's
    /// cache directory (`$XDG_CACHE_HOME` or `~/.cache`), one folder per database.
    pub fn state_path(&self) -> PathBuf {
        match self {
            CatalogLocation::DuckDb(path) => path.clone(),
            CatalogLocation::Postgres(url) => {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
                    .unwrap_or_else(std::env::temp_dir);
                let id = &blake3::hash(redact(url.expose()).as_bytes()).to_hex()[..16];
                cache.join("consist").join("postgres").join(id)
            }
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
            CatalogLocation::Postgres(url) => write!(f, "{url}"),
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
    fn paths_are_duckdb_urls_are_postgres_and_passwords_are_never_shown() {
        assert_eq!(
            CatalogLocation::parse("runs/provenance.duckdb").unwrap(),
            CatalogLocation::DuckDb("runs/provenance.duckdb".into())
        );
        let pg = CatalogLocation::parse("postgres://alice:s3cret@db.lab/consist").unwrap();
        let CatalogLocation::Postgres(url) = &pg else { panic!("{pg:?}") };
        assert_eq!(url.expose(), "postgres://alice:s3cret@db.lab/consist");
        for shown in [pg.to_string(), format!("{pg:?}")] {
            assert!(shown.contains("postgres://alice:***@db.lab/consist"), "{shown}");
            assert!(!shown.contains("s3cret"), "the password is never shown: {shown}");
        }
        let state = pg.state_path();
        assert!(!state.to_string_lossy().contains("s3cret"));
        let other_password = CatalogLocation::parse("postgres://alice:other@db.lab/consist").unwrap();
        assert_eq!(other_password.state_path(), state, "one local state per database, whatever the password");
        let empty = CatalogLocation::parse("postgresql://").unwrap_err().to_string();
        assert!(empty.contains("names no server"), "{empty}");
        let other = CatalogLocation::parse("s3://bucket/x").unwrap_err().to_string();
        assert!(other.contains("`s3://` is not a catalog scheme"), "{other}");
        assert!(other.contains("postgres://"), "the accepted forms are named: {other}");
        assert!(CatalogLocation::parse("  ").is_err());
    }

    #[test]
    fn redaction_keeps_everything_but_the_password() {
        assert_eq!(redact("postgres://u:p@h:5432/db?x=1"), "postgres://u:***@h:5432/db?x=1");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("runs/provenance.duckdb"), "runs/provenance.duckdb");
    }
}
