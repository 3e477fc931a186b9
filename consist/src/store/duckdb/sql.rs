//! Read-only SQL over a DuckDB catalog, per-key views over artifact files, and rows of a
//! Parquet/CSV file, with every value converted to JSON.
//!
//! [`DuckDbStore::query`](crate::Store::query) runs on a read-only connection, so a write fails
//! inside DuckDB. Before it runs, every artifact key the SQL mentions gets a temporary view that
//! unions that key's Parquet/CSV files across runs and adds `consist_run_id`,
//! `consist_scenario_id`, `consist_iteration` and `consist_year` (of the producing run): mode
//! shares across all iterations are one query.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::DateTime;
use duckdb::Connection;
use duckdb::arrow::datatypes::DataType;
use duckdb::types::{TimeUnit, Value};
use serde_json::Value as Json;

use super::{DuckDbStore, TABLES};
use crate::artifact::Driver;
use crate::error::{Error, Result};
use crate::store::{ArtifactView, QueryAccess, QueryRows};

impl DuckDbStore {
    /// See [`crate::Store::query`].
    pub(super) fn query_sql(&self, sql: &str, access: QueryAccess) -> Result<QueryRows> {
        // An instance of its own: the query may confine its settings, or change them itself.
        let conn = self.open_private()?;
        let files = view_files(&conn, Some(sql), &self.relocation).map_err(|e| self.db_err(e))?;
        let mut allowed = Vec::new();
        for (key, list) in &files {
            if let Some(view) = view_sql(key, list) {
                conn.execute_batch(&view).map_err(|e| self.db_err(e))?;
                allowed.extend(list.iter().filter(|f| f.path.exists()).map(|f| f.path.to_string_lossy().into_owned()));
            }
        }
        if access == QueryAccess::CatalogOnly {
            conn.execute_batch(&confine(&allowed)).map_err(|e| self.db_err(e))?;
        }
        collect(&conn, sql, &[]).map_err(|e| {
            let message = e.to_string();
            let reason = if message.contains("read-only") || message.contains("read only") {
                format!("queries are read-only and this statement writes: {message}")
            } else if OUTSIDE.iter().any(|m| message.contains(m)) {
                format!(
                    "queries read the catalog only, and this statement reaches outside it (a file, another \
                     database, an extension or a setting); pass `--allow-external` (QueryAccess::External) if \
                     you mean it. DuckDB said: {message}"
                )
            } else {
                format!("the query failed: {message}")
            };
            Error::Query { reason }
        })
    }

    /// See [`crate::Store::artifact_views`].
    pub(super) fn views(&self) -> Result<Vec<ArtifactView>> {
        let conn = self.open_read()?;
        let files = view_files(&conn, None, &self.relocation).map_err(|e| self.db_err(e))?;
        Ok(files
            .iter()
            .map(|(key, list)| ArtifactView {
                view: view_name(key),
                key: key.clone(),
                files: list.len(),
                missing: list.iter().filter(|f| !f.path.exists()).count(),
                runs: list.iter().map(|f| &f.run_id).collect::<BTreeSet<_>>().len(),
            })
            .collect())
    }
}

/// What DuckDB says when a confined query reaches outside the catalog.
const OUTSIDE: [&str; 3] = ["disabled by configuration", "configuration has been locked", "Permission Error"];

/// The settings that confine a connection to its catalog and the `allowed` files (the artifact
/// files of the views), locked so the query itself cannot undo them.
fn confine(allowed: &[String]) -> String {
    let list = allowed.iter().map(|p| quote_text(p)).collect::<Vec<_>>().join(", ");
    format!(
        "SET allowed_paths = [{list}]; SET enable_external_access = false; SET autoinstall_known_extensions = false; \
         SET autoload_known_extensions = false; SET lock_configuration = true;"
    )
}

/// The first `limit` rows of a Parquet or CSV file, read with an in-memory DuckDB.
pub(crate) fn file_rows(path: &Path, driver: Driver, limit: usize) -> Result<QueryRows> {
    read_file(path, driver, &format!("SELECT * FROM {{file}} LIMIT {limit}"))
}

/// The columns of a Parquet or CSV file and their types, as DuckDB reads them.
pub(crate) fn file_schema(path: &Path, driver: Driver) -> Result<Vec<(String, String)>> {
    let described = read_file(path, driver, "DESCRIBE SELECT * FROM {file}")?;
    let text = |v: &Json| v.as_str().unwrap_or_default().to_owned();
    Ok(described.rows.iter().map(|r| (text(&r[0]), text(&r[1]))).collect())
}

/// `sql` with `{file}` standing for the file read by its driver's reader, on the process's
/// DuckDB instance.
fn read_file(path: &Path, driver: Driver, sql: &str) -> Result<QueryRows> {
    let reader = match driver {
        Driver::Parquet => "read_parquet(?)",
        Driver::Csv => "read_csv(?)",
        other => {
            return Err(Error::Query {
                reason: format!("{} is {other}; rows can be read from Parquet or CSV files only", path.display()),
            });
        }
    };
    let unreadable = |e: duckdb::Error| Error::Query { reason: format!("cannot read {}: {e}", path.display()) };
    let conn = super::turn::instance().map_err(unreadable)?;
    collect(&conn, &sql.replace("{file}", reader), &[&path.to_string_lossy().into_owned()]).map_err(unreadable)
}

fn to_json(value: Value) -> Json {
    let micros = |unit: TimeUnit, v: i64| match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1_000,
    };
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::TinyInt(v) => v.into(),
        Value::SmallInt(v) => v.into(),
        Value::Int(v) => v.into(),
        Value::BigInt(v) => v.into(),
        Value::UTinyInt(v) => v.into(),
        Value::USmallInt(v) => v.into(),
        Value::UInt(v) => v.into(),
        Value::UBigInt(v) => v.into(),
        Value::HugeInt(v) => i64::try_from(v).map_or_else(|_| Json::String(v.to_string()), Json::from),
        Value::Float(v) => serde_json::Number::from_f64(f64::from(v)).map_or(Json::Null, Json::Number),
        Value::Double(v) => serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number),
        Value::Decimal(d) => Json::String(d.to_string()),
        Value::Text(s) | Value::Enum(s) => Json::String(s),
        Value::Timestamp(unit, v) => DateTime::from_timestamp_micros(micros(unit, v))
            .map_or(Json::Null, |t| Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))),
        Value::Date32(days) => chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
            .map_or(Json::Null, |d| Json::String(d.to_string())),
        Value::Time64(unit, v) => {
            let us = micros(unit, v);
            chrono::NaiveTime::from_num_seconds_from_midnight_opt(
                (us / 1_000_000) as u32,
                (us % 1_000_000 * 1_000) as u32,
            )
            .map_or(Json::Null, |t| Json::String(t.format("%H:%M:%S%.6f").to_string()))
        }
        Value::Interval { months, days, nanos } => Json::String(format!("P{months}M{days}DT{}S", nanos as f64 / 1e9)),
        Value::UHugeInt(v) => u64::try_from(v).map_or_else(|_| Json::String(v.to_string()), Json::from),
        Value::Blob(bytes) | Value::Geometry(bytes) => Json::String(blob_text(&bytes)),
        Value::List(items) | Value::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Value::Struct(fields) => Json::Object(fields.iter().map(|(k, v)| (k.clone(), to_json(v.clone()))).collect()),
        Value::Map(entries) => Json::Array(
            entries.iter().map(|(k, v)| Json::Array(vec![to_json(k.clone()), to_json(v.clone())])).collect(),
        ),
        Value::Union(value) => to_json(*value),
        // `Value` is non-exhaustive: a type added by a newer duckdb prints in its debug form.
        other => Json::String(format!("{other:?}")),
    }
}

/// Bytes as DuckDB prints a BLOB: printable ASCII as is, others as `\xHH`.
fn blob_text(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

/// How a result column is read.
enum Reader {
    /// Typed `NULL` (e.g. `select NULL as x`): every cell is null.
    Null,
    /// Through duckdb's `Value`.
    Value,
}

/// The reader for a column of Arrow type `ty`, or an error naming the column when duckdb's row
/// reader cannot convert that type (it would panic).
fn reader(name: &str, ty: &DataType) -> duckdb::Result<Reader> {
    if *ty == DataType::Null {
        return Ok(Reader::Null);
    }
    if readable(ty) {
        return Ok(Reader::Value);
    }
    let reason = format!(
        "column `{name}` has type {ty}, which consist query cannot print; cast it in the SQL, e.g. `CAST({name} AS VARCHAR)`"
    );
    Err(duckdb::Error::FromSqlConversionFailure(usize::MAX, duckdb::types::Type::Any, reason.into()))
}

/// Whether duckdb's row reader converts values of Arrow type `ty` (mirrors
/// `Row::value_ref_internal`, which panics on the others).
fn readable(ty: &DataType) -> bool {
    use duckdb::arrow::datatypes::{IntervalUnit, TimeUnit as Unit};
    match ty {
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::FixedSizeBinary(_)
        | DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Timestamp(..)
        | DataType::Date32
        | DataType::Time64(Unit::Microsecond)
        | DataType::Interval(IntervalUnit::MonthDayNano) => true,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::Map(f, _) => {
            readable(f.data_type())
        }
        DataType::Struct(fields) => fields.iter().all(|f| readable(f.data_type())),
        DataType::Union(fields, _) => fields.iter().all(|(_, f)| readable(f.data_type())),
        DataType::Dictionary(key, value) => {
            matches!(**key, DataType::UInt8 | DataType::UInt16 | DataType::UInt32) && readable(value)
        }
        _ => false,
    }
}

/// Run `sql` and collect its rows.
fn collect(conn: &Connection, sql: &str, params: &[&dyn duckdb::ToSql]) -> duckdb::Result<QueryRows> {
    let mut stmt = conn.prepare(sql)?;
    let mut result = stmt.query(params)?;
    let mut rows = Vec::new();
    let mut width = 0;
    let mut readers: Vec<Reader> = Vec::new();
    while let Some(row) = result.next()? {
        if readers.is_empty() {
            let stmt = row.as_ref();
            width = stmt.column_count();
            readers = (0..width)
                .map(|i| reader(&stmt.column_name(i)?.clone(), &stmt.column_type(i)))
                .collect::<duckdb::Result<_>>()?;
        }
        let cells = readers.iter().enumerate().map(|(i, r)| match r {
            Reader::Null => Ok(Json::Null),
            Reader::Value => row.get::<_, Value>(i).map(to_json),
        });
        rows.push(cells.collect::<duckdb::Result<Vec<_>>>()?);
    }
    drop(result);
    let columns = stmt.column_names();
    debug_assert!(rows.is_empty() || columns.len() == width);
    Ok(QueryRows { columns, rows })
}

/// One artifact file for a view, with its producing run's place.
struct ViewFile {
    path: PathBuf,
    driver: Driver,
    run_id: String,
    scenario: Option<String>,
    iteration: Option<i32>,
    year: Option<i32>,
}

/// Parquet/CSV output files by artifact key, from the database (where they are now, if the
/// project moved); only the keys that `sql` mentions when it is given.
fn view_files(
    conn: &Connection,
    sql: Option<&str>,
    relocation: &crate::relocate::Relocation,
) -> duckdb::Result<BTreeMap<String, Vec<ViewFile>>> {
    let mut keys: Vec<String> = Vec::new();
    if let Some(sql) = sql {
        let mut stmt = conn.prepare(r#"SELECT DISTINCT "key" FROM artifact WHERE driver IN ('parquet', 'csv')"#)?;
        let all = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<duckdb::Result<Vec<_>>>()?;
        keys = all.into_iter().filter(|k| sql.contains(k.as_str())).collect();
        if keys.is_empty() {
            return Ok(BTreeMap::new());
        }
    }
    let filter = if sql.is_some() {
        format!(r#" AND a."key" IN ({})"#, keys.iter().map(|k| quote_text(k)).collect::<Vec<_>>().join(", "))
    } else {
        String::new()
    };
    let mut stmt = conn.prepare(&format!(
        r#"SELECT a."key", a.driver, json_extract_string(a.meta, '$.path'), r.id, r.parent_run_id, r.iteration, r."year"
           FROM artifact a JOIN run r ON r.id = a.run_id
           WHERE a.driver IN ('parquet', 'csv'){filter} ORDER BY a."key", r.created_at"#
    ))?;
    let mut by_key: BTreeMap<String, Vec<ViewFile>> = BTreeMap::new();
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            ViewFile {
                driver: Driver::parse(&r.get::<_, String>(1)?),
                path: PathBuf::from(r.get::<_, Option<String>>(2)?.unwrap_or_default()),
                run_id: r.get(3)?,
                scenario: r.get(4)?,
                iteration: r.get(5)?,
                year: r.get(6)?,
            },
        ))
    })?;
    for row in rows {
        let (key, mut file) = row?;
        if let Some(moved) = relocation.path(&file.path) {
            file.path = moved;
        }
        by_key.entry(key).or_default().push(file);
    }
    Ok(by_key)
}

/// The view name of an artifact key: the key itself unless it is a provenance table.
pub(crate) fn view_name(key: &str) -> String {
    if TABLES.contains(&key) { format!("{key}_artifacts") } else { key.to_owned() }
}

/// A quoted SQL identifier.
pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal: the one way a value reaches DuckDB SQL text where a parameter cannot
/// (paths in `ATTACH` and `COPY`, `IN` lists of ids).
pub(super) fn quote_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `CREATE TEMP VIEW` text for one key's existing files (`None` if no file exists).
fn view_sql(key: &str, files: &[ViewFile]) -> Option<String> {
    let mut parts = Vec::new();
    for (driver, reader) in [(Driver::Parquet, "read_parquet"), (Driver::Csv, "read_csv")] {
        let present: Vec<&ViewFile> = files.iter().filter(|f| f.driver == driver && f.path.exists()).collect();
        if present.is_empty() {
            continue;
        }
        let list = present.iter().map(|f| quote_text(&f.path.to_string_lossy())).collect::<Vec<_>>().join(", ");
        let text = |v: &Option<String>| v.as_deref().map_or_else(|| "NULL".to_owned(), quote_text);
        let int = |v: Option<i32>| v.map_or_else(|| "NULL".to_owned(), |i| i.to_string());
        let places = present
            .iter()
            .map(|f| {
                let path = quote_text(&f.path.to_string_lossy());
                let run = quote_text(&f.run_id);
                format!("({path}, {run}, {}, {}, {})", text(&f.scenario), int(f.iteration), int(f.year))
            })
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!(
            "SELECT f.* EXCLUDE (filename), m.consist_run_id, m.consist_scenario_id, \
             CAST(m.consist_iteration AS INTEGER) AS consist_iteration, CAST(m.consist_year AS INTEGER) AS consist_year \
             FROM {reader}([{list}], filename = true, union_by_name = true) f \
             JOIN (VALUES {places}) m(filename, consist_run_id, consist_scenario_id, consist_iteration, consist_year) \
             USING (filename)"
        ));
    }
    (!parts.is_empty()).then(|| {
        format!("CREATE OR REPLACE TEMP VIEW {} AS {}", quote_ident(&view_name(key)), parts.join(" UNION ALL BY NAME "))
    })
}
