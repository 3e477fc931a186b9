//! The versioned catalog schema both backends hold, and the rules for moving between versions.
//!
//! Migration 1 is the shared Consist schema (`schema.sql`: Python Consist 0.3.5's tables,
//! columns, types and index names; its types are PostgreSQL's too), so both backends hold the
//! same tables. Migration 2 (`schema_v2.sql`) adds what a catalog shared by many hosts needs:
//! its id, its purge epoch and purged runs, and leases. Migrations are append-only: a released one is never edited; a change is a new
//! entry. The versions applied are recorded in `consist_schema_version`, a table Python Consist
//! ignores. A catalog without that table (written by Python Consist, or by consist before it
//! recorded versions) holds at most migration 1, whose DDL only creates what is missing, so it
//! is brought up to date like any other. A catalog written by a newer consist is refused by name,
//! never written in a shape this build does not know.

use std::fmt::Display;

use crate::error::Error;

/// The migrations, in order; migration `n` is `MIGRATIONS[n - 1]`.
const MIGRATIONS: &[&str] = &[include_str!("schema.sql"), include_str!("schema_v2.sql")];

/// The schema version this build of consist reads and writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Creates the table recording applied migrations (one row each).
pub(crate) const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS consist_schema_version(version INTEGER PRIMARY KEY, \
     applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now())";

/// Reads the version reached (0 when the table is empty).
pub(crate) const READ_VERSION: &str = "SELECT CAST(coalesce(max(version), 0) AS INTEGER) FROM consist_schema_version";

/// Records one applied migration; its one parameter is the version.
pub(crate) const RECORD_VERSION: &str = "INSERT INTO consist_schema_version(version) VALUES ($1)";

/// Reads the catalog's id and purge epoch (migration 2).
pub(crate) const READ_IDENTITY: &str = "SELECT id, purge_epoch FROM consist_catalog LIMIT 1";

/// Which catalog a store holds, and how many purges it has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogIdentity {
    /// Made once, when the catalog was created (or first written by this consist): a catalog
    /// recreated, restored or replaced at the same place has another.
    pub id: String,
    /// Raised by every purge: a host that saw an older one checks its cache entries again.
    pub purge_epoch: i64,
}

/// The migrations a catalog at version `found` still needs, as `(version, DDL)`; an error when
/// the catalog is newer than this build.
pub(crate) fn pending(found: i32, location: &dyn Display) -> Result<Vec<(i32, &'static str)>, Error> {
    if found > SCHEMA_VERSION {
        return Err(too_new(location, found));
    }
    let done = usize::try_from(found).unwrap_or(0);
    Ok(MIGRATIONS
        .iter()
        .enumerate()
        .skip(done)
        .map(|(i, ddl)| (i32::try_from(i + 1).unwrap_or(i32::MAX), *ddl))
        .collect())
}

/// The error for a catalog whose schema a newer consist wrote.
pub(crate) fn too_new(location: &dyn Display, found: i32) -> Error {
    Error::Refused(format!(
        "the catalog {location} has schema version {found}, newer than this consist knows ({SCHEMA_VERSION}); \
         upgrade consist to read or write it"
    ))
}
