//! Compacting a DuckDB catalog: DuckDB never shrinks a file in place, so the file is copied
//! whole and renamed over the old one once every table's row count matches.

use std::path::{Path, PathBuf};

use super::{DuckDbStore, TABLES, sql};
use crate::error::{Error, Result};

impl DuckDbStore {
    /// Rewrite the file without its free blocks (DuckDB never shrinks a file in place): copy
    /// every table into a new file, check the row counts match, and rename it over this one.
    /// The old file stays open, and so locked against writers, until the rename, so no write
    /// can land in it unseen. Returns the sizes before and after, in bytes.
    pub fn compact(&self) -> Result<(u64, u64)> {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let before = size(&self.path);
        let tmp = beside(&self.path, ".compacting");
        let tmp_wal = beside(&tmp, ".wal");
        for leftover in [&tmp, &tmp_wal] {
            let _ = std::fs::remove_file(leftover);
        }
        let conn = self.connect()?;
        let quoted = sql::quote_text(&tmp.to_string_lossy());
        // Attached to the process's instance: detached below whether or not the copy succeeded,
        // so that a failure leaves neither the file open nor its name taken.
        let copy = super::turn::fresh_name("consist_compacted");
        let counted = (|| -> duckdb::Result<Vec<(String, i64, i64)>> {
            conn.execute_batch("FORCE CHECKPOINT;")?;
            let db: String = conn.query_row("SELECT current_database()", [], |r| r.get(0))?;
            conn.execute_batch(&format!(
                "ATTACH {quoted} AS {copy}; COPY FROM DATABASE {} TO {copy};",
                sql::quote_ident(&db)
            ))?;
            let mut counts = Vec::new();
            for table in TABLES {
                let count = |catalog: &str| -> duckdb::Result<i64> {
                    conn.query_row(
                        &format!("SELECT count(*) FROM {}.main.{table}", sql::quote_ident(catalog)),
                        [],
                        |r| r.get(0),
                    )
                };
                counts.push((table.to_owned(), count(&db)?, count(&copy)?));
            }
            Ok(counts)
        })();
        let detached = conn.execute_batch(&format!("DETACH DATABASE IF EXISTS {copy};"));
        let verified =
            counted.and_then(|counts| detached.map(|()| counts)).map_err(|e| self.db_err(e)).and_then(|counts| {
                match counts.iter().find(|(_, old, new)| old != new) {
                    Some((table, old, new)) => Err(Error::Refused(format!(
                        "compaction copied {new} of {old} rows of `{table}`; the database was left as it was"
                    ))),
                    None if tmp_wal.exists() => Err(Error::Refused(
                        "the compacted copy was not checkpointed; the database was left as it was".into(),
                    )),
                    None => Ok(()),
                }
            });
        let renamed = verified.and_then(|()| {
            drop_stale_logs(&self.path);
            std::fs::rename(&tmp, &self.path).map_err(Error::io("replacing", &self.path))
        });
        drop(conn);
        if renamed.is_err() {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(&tmp_wal);
        }
        renamed.map(|()| (before, size(&self.path)))
    }
}

/// Remove the write-ahead logs left beside the old file before the copy is renamed over it: they
/// belong to the old file, and DuckDB refuses to open a file beside another file's log ("WAL does
/// not match database file"). After the checkpoint, a log still there holds nothing DuckDB
/// replays: the tail of a transaction a killed process never committed (DuckDB ignores it at every
/// open, and a checkpoint removes only a log it replayed). Whatever DuckDB did replay is in the
/// copy, whose row counts matched.
fn drop_stale_logs(db: &Path) {
    for suffix in [".wal", ".wal.checkpoint"] {
        let log = beside(db, suffix);
        if let Ok(meta) = std::fs::metadata(&log) {
            tracing::warn!(log = %log.display(), bytes = meta.len(), "removing an uncommitted write-ahead log of the file being compacted");
            let _ = std::fs::remove_file(&log);
        }
    }
}

/// The file beside `db` named as it is plus `suffix` (DuckDB's `.wal`, `.wal.checkpoint`; the
/// copy's `.compacting`).
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}
