//! The PostgreSQL schema, created and upgraded by versioned migrations.
//!
//! Migration 1 is the shared Consist schema, the very DDL the DuckDB store runs (its types are
//! PostgreSQL's too: `VARCHAR`, `JSON`, `TIMESTAMP WITH TIME ZONE`, `FLOAT`), so both backends
//! hold the same tables, columns and index names. Migrations are append-only: a released one is
//! never edited; a change is a new entry. The version reached is recorded in
//! `consist_schema_version`, and every migration runs in one transaction under an advisory lock,
//! so processes that start together apply it once.

use postgres::GenericClient;

/// The migrations, in order; migration `n` is `MIGRATIONS[n - 1]`.
const MIGRATIONS: &[&str] = &[include_str!("../duckdb/schema.sql")];

/// Advisory lock key held while migrating (`consist` in ASCII).
const MIGRATION_LOCK: i64 = 0x0063_6f6e_7369_7374;

/// The schema version this build of consist writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Why a database cannot be used as it is.
pub enum MigrationError {
    /// The database was migrated by a newer consist.
    Newer(i32),
    /// A statement failed.
    Db(postgres::Error),
}

impl From<postgres::Error> for MigrationError {
    fn from(e: postgres::Error) -> Self {
        MigrationError::Db(e)
    }
}

/// Bring the schema to [`SCHEMA_VERSION`]; returns the version found before.
pub fn migrate(client: &mut impl GenericClient) -> Result<i32, MigrationError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS consist_schema_version(version INTEGER PRIMARY KEY,
           applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now())",
    )?;
    let found: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM consist_schema_version", &[])?.get(0);
    if found > SCHEMA_VERSION {
        return Err(MigrationError::Newer(found));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        tx.batch_execute(migration)?;
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        tx.execute("INSERT INTO consist_schema_version(version) VALUES ($1)", &[&version])?;
    }
    tx.commit()?;
    Ok(found)
}
