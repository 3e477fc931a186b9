//! Names users give to steps and scenarios, and the file-safe slugs derived from them.
//!
//! A name is recorded as given (`beta=0.3`, `day 3 / SIR`): it is what the catalog, the CLI and a
//! scenario's `consist_scenario_id` show. Only run ids and the explanation history, which become
//! file names, use [`slug`], which is injective enough in practice: an altered name gets a hash
//! suffix of the original, so `a/b` and `a_b` never share a slug.

use crate::error::{Error, Result};

/// Longest kept prefix of a name in a slug (before the hash suffix).
const SLUG_LEN: usize = 48;

/// Check a user's step or scenario name: anything printable, not empty.
pub(crate) fn check_name(kind: &'static str, name: &str) -> Result<()> {
    let reason = if name.trim().is_empty() {
        "it is empty; give it a name such as `baseline` or `beta=0.3`"
    } else if name.chars().any(char::is_control) {
        "it contains a control character (newline, tab...); use printable characters only"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName { kind, name: name.to_owned(), reason: reason.to_owned() })
}

/// Longest accepted artifact key, in bytes (it becomes a file name with an extension).
const KEY_LEN: usize = 200;

/// Check an artifact key (`output`, `input`): it names a file in the run's output directory, so
/// it must be one plain path component: not empty, no `/` or `\`, not `.` or `..`, no control
/// character (NUL included), at most [`KEY_LEN`] bytes. A key can therefore never write outside
/// the run's own directory.
pub(crate) fn check_key(kind: &'static str, key: &str) -> Result<()> {
    let reason = if key.is_empty() {
        "it is empty"
    } else if key == "." || key == ".." {
        "it names a directory, not a file"
    } else if key.contains(['/', '\\']) {
        "it contains a path separator (`/` or `\\`)"
    } else if key.chars().any(char::is_control) {
        "it contains a control character (NUL, newline, tab...)"
    } else if key.len() > KEY_LEN {
        "it is longer than 200 bytes"
    } else {
        return Ok(());
    };
    Err(Error::UnsafePath {
        kind,
        value: key.escape_debug().to_string(),
        reason: format!("{reason}; a key names one file in the run's directory: use letters, digits, `_`, `-`, `.`"),
    })
}

/// The key of `known` closest to `key`, if it is one or two edits away (a likely typo).
pub(crate) fn nearest<'k>(key: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    known
        .into_iter()
        .filter(|k| *k != key)
        .map(|k| (strsim::damerau_levenshtein(key, k), k))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, k)| k)
}

/// The error for a key that does not exist, listing the ones that do.
pub(crate) fn unknown_key<'a>(kind: &'static str, key: &str, known: impl Iterator<Item = &'a String>) -> Error {
    let known: Vec<&String> = known.collect();
    let near = nearest(key, known.iter().map(|k| k.as_str())).map(str::to_owned);
    let known = known.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
    Error::UnknownKey { kind, key: key.to_owned(), known, near }
}

/// A file-safe form of `name`: ASCII letters, digits, `_`, `-` and `.` (not leading), at most
/// [`SLUG_LEN`] of them; a name that had to be altered gets `-<8 hex>` of its blake3 hash so two
/// names never share a slug.
pub(crate) fn slug(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' })
        .take(SLUG_LEN)
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out != name {
        out.push('-');
        out.push_str(&blake3::hash(name.as_bytes()).to_hex()[..8]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_likely_typos_only() {
        let known = ["dispatch", "demand", "state"];
        assert_eq!(nearest("dispach", known), Some("dispatch"));
        assert_eq!(nearest("stat", known), Some("state"));
        assert_eq!(nearest("emissions", known), None, "nothing close");
        assert_eq!(nearest("state", known), None, "an exact key is not a typo");
    }

    #[test]
    fn plain_names_are_their_own_slug() {
        assert_eq!(slug("clean_data-2.v1"), "clean_data-2.v1");
    }

    #[test]
    fn altered_names_are_file_safe_and_distinct() {
        for name in ["beta=0.3", "day 3 / SIR", "../etc", ".hidden", "a/b", "a_b-", "ü", &"x".repeat(200)] {
            let s = slug(name);
            assert!(s.len() <= SLUG_LEN + 9, "{s}");
            assert!(!s.starts_with('.'), "{s}");
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')), "{s}");
        }
        assert_ne!(slug("a/b"), slug("a_b"));
        assert_ne!(slug("a/b"), slug("a?b"));
        assert!(slug("beta=0.3").starts_with("beta_0.3-"));
    }

    #[test]
    fn keys_that_could_leave_the_run_directory_are_refused() {
        for good in ["clean", "skims.v2", "od_matrix-1", "list[0]", "ü"] {
            assert!(check_key("output key", good).is_ok(), "{good}");
        }
        let long = "k".repeat(201);
        for bad in ["", ".", "..", "../../../esc", "/etc/passwd", "a/b", "a\\b", "nul\0byte", "line\nbreak", &long] {
            let err = check_key("output key", bad).unwrap_err().to_string();
            assert!(err.starts_with("output key `"), "{err}");
            assert!(err.contains("use letters, digits"), "{err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn an_accepted_key_is_one_normal_path_component(key in "\\PC{0,12}") {
            if check_key("output key", &key).is_ok() {
                let base = std::path::Path::new("/runs/outputs/r1");
                let joined = base.join(format!("{key}.bin"));
                proptest::prop_assert_eq!(joined.parent(), Some(base));
            }
        }
    }

    #[test]
    fn names_are_refused_only_when_empty_or_with_control_characters() {
        assert!(check_name("scenario", "beta=0.3").is_ok());
        assert!(check_name("step", "day 3 / SIR").is_ok());
        for bad in ["", "  ", "a\nb"] {
            let err = check_name("scenario", bad).unwrap_err().to_string();
            assert!(err.contains("scenario name"), "{err}");
        }
    }
}
