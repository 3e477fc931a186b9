//! Run ids and signatures that become file names, checked before any path is built from them.
//!
//! A run id names a snapshot (`<run_id>.json`), a pending-queue entry, a purge marker, a merged
//! copy and an output directory; a signature names a signature-index entry and a claim. Both
//! arrive from places a user does not control: another host's rows in a shared PostgreSQL
//! catalog, a DuckDB file or a run dir someone handed over, a catalog being merged. Whatever they
//! hold, an id is used as a path only once [`run_id`] or [`signature`] accepted it, so no
//! catalog or snapshot can make consist touch a file outside the directory it meant.

use std::fmt::Display;

use crate::error::{Error, Result};
use crate::run::RunRecord;

/// Longest accepted run id, in bytes (it becomes a file name with `.json` and a temporary
/// suffix, which must stay under the 255 bytes file systems allow).
pub(crate) const RUN_ID_LEN: usize = 200;

/// Longest accepted signature (consist's are 64 hex digits, as are Python Consist's).
const SIGNATURE_LEN: usize = 128;

/// Why `id` cannot be a run id, or `None` when it can: one plain file-name component, printable,
/// not `.` or `..`, not hidden, without `/`, `\` or the temporary-file mark `.tmp.`, at most
/// [`RUN_ID_LEN`] bytes.
pub(crate) fn run_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("it is empty")
    } else if id.contains(['/', '\\']) {
        Some("it contains a path separator (`/` or `\\`)")
    } else if id.starts_with('.') {
        Some("it starts with `.` (`.`, `..` and hidden names are not run ids)")
    } else if id.chars().any(char::is_control) {
        Some("it contains a control character (NUL, newline, escape...)")
    } else if id.contains(crate::files::atomic::TMP_MARK) {
        Some("it contains `.tmp.`, which marks consist's temporary files")
    } else if id.len() > RUN_ID_LEN {
        Some("it is longer than 200 bytes")
    } else {
        None
    }
}

/// Whether `name` may name one file in a directory consist writes (a plain run id would).
pub(crate) fn is_plain(name: &str) -> bool {
    run_id_problem(name).is_none()
}

/// Why `signature` cannot be a signature, or `None`: 1 to 128 hex digits.
pub(crate) fn signature_problem(signature: &str) -> Option<&'static str> {
    if signature.is_empty() {
        Some("it is empty")
    } else if signature.len() > SIGNATURE_LEN {
        Some("it is longer than 128 characters")
    } else if !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some("it is not made of hex digits")
    } else {
        None
    }
}

/// `id`, once checked to be usable as a run id; else an error naming where it came from.
pub(crate) fn run_id<'a>(id: &'a str, source: &dyn Display) -> Result<&'a str> {
    match run_id_problem(id) {
        None => Ok(id),
        Some(reason) => Err(unsafe_id("run id", id, source, reason)),
    }
}

/// `signature`, once checked to be usable as a file name; else an error naming its source.
pub(crate) fn signature<'a>(signature: &'a str, source: &dyn Display) -> Result<&'a str> {
    match signature_problem(signature) {
        None => Ok(signature),
        Some(reason) => Err(unsafe_id("signature", signature, source, reason)),
    }
}

/// Check the ids of a record read from `source` (a snapshot file, a catalog): its run id, its
/// parent's, its signature (a run recorded without one, as Python Consist may, has none) and
/// the producing runs of its artifacts.
pub(crate) fn check_record(record: &RunRecord, source: &dyn Display) -> Result<()> {
    let run = &record.run;
    run_id(&run.id, source)?;
    if let Some(parent) = &run.parent_run_id {
        run_id(parent, source)?;
    }
    if !run.signature.is_empty() {
        signature(&run.signature, source)?;
    }
    for artifact in record.inputs.iter().chain(&record.outputs) {
        if let Some(producer) = &artifact.run_id {
            run_id(producer, source)?;
        }
    }
    Ok(())
}

/// Check every record read from `source`; the first bad one is the error.
pub(crate) fn check_records(records: &[RunRecord], source: &dyn Display) -> Result<()> {
    records.iter().try_for_each(|r| check_record(r, source))
}

fn unsafe_id(kind: &'static str, value: &str, source: &dyn Display, reason: &str) -> Error {
    let shown: String = value.chars().take(120).collect::<String>().escape_debug().to_string();
    Error::UnsafeId {
        kind,
        value: shown,
        origin: source.to_string(),
        reason: format!(
            "{reason}; consist names files after it, so it refuses the record and touched nothing: remove or \
             correct that record where it came from"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_and_signatures_are_accepted() {
        for id in ["square_0495aff7", "beta_0.3-1a2b3c4d_1234abcd", "day 3 (SIR)_00ff00ff", "ü_12345678"] {
            assert_eq!(run_id_problem(id), None, "{id}");
        }
        let sig = blake3::hash(b"x").to_hex().to_string();
        assert_eq!(signature_problem(&sig), None);
    }

    #[test]
    fn ids_that_could_name_another_file_are_refused_with_their_source() {
        let long = "r".repeat(201);
        for bad in ["", ".", "..", ".hidden", "/etc/passwd", "../../x", "a/b", "a\\b", "nul\0", "esc\u{1b}[2J", &long] {
            let err = run_id(bad, &"catalog.duckdb").unwrap_err().to_string();
            assert!(err.contains("run id `"), "{err}");
            assert!(err.contains("catalog.duckdb"), "the source is named: {err}");
            assert!(err.contains("touched nothing"), "{err}");
        }
        assert!(run_id("x.tmp.1.2", &"s").is_err());
        for bad in ["", "../x", "abc/def", "zz", &"a".repeat(129)] {
            assert!(signature(bad, &"s").is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn an_accepted_run_id_names_one_file_in_its_directory(id in "\\PC{0,16}|[./\\\\a-z]{0,8}") {
            if run_id_problem(&id).is_none() {
                let dir = std::path::Path::new("/cat/pending");
                for name in [id.clone(), format!("{id}.json")] {
                    let joined = dir.join(&name);
                    proptest::prop_assert_eq!(joined.parent(), Some(dir));
                    proptest::prop_assert_eq!(joined.file_name().and_then(|n| n.to_str()), Some(name.as_str()));
                }
            }
        }

        #[test]
        fn an_accepted_signature_is_plain_hex(sig in "\\PC{0,8}|[0-9a-f./]{1,70}") {
            if signature_problem(&sig).is_none() {
                proptest::prop_assert!(sig.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
    }
}
