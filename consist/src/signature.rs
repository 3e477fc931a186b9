//! Run identity: code, config and input hashes combined into the run signature (blake3).
//!
//! ```text
//! signature = blake3("consist-sig-v1" | model | code_hash | config_hash | input_hash)
//! ```
//! The model name is part of the signature so that two different steps that happen to share a
//! code version, config and inputs can never answer for each other.

use serde::Serialize;

use crate::canonical;
use crate::error::{Error, Result};

/// The code item a cache epoch is listed under (`code changed: cache epoch`).
pub(crate) const CACHE_EPOCH_ITEM: &str = "cache epoch";

/// Hex blake3 of `domain | parts...`, with each part length-prefixed so that concatenations
/// cannot collide (`"ab"+"c"` vs `"a"+"bc"`).
pub(crate) fn hash_parts(domain: &str, parts: &[&[u8]]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(domain.as_bytes());
    for part in parts {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().to_hex().to_string()
}

/// Code identity of a step run without `#[step]`: the model name and an explicit version string.
pub fn code_hash_for_version(version: &str) -> String {
    hash_parts("consist-code-v1", &[version.as_bytes()])
}

/// The canonical JSON of a config and its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalConfig {
    /// Canonical JSON value (sorted keys) as stored in the snapshot.
    pub value: serde_json::Value,
    /// `blake3("consist-config-v1" | canonical JSON text)`, hex.
    pub hash: String,
}

/// Canonicalize and hash a config; `step` names the step in error messages.
pub fn config_hash<T: Serialize + ?Sized>(step: &str, config: &T) -> Result<CanonicalConfig> {
    let value = canonical::to_value(config).map_err(|e| Error::Config {
        step: step.to_owned(),
        path: e.path,
        reason: e.reason,
        fix: "replace NaN/infinity with Option or a finite sentinel, and use string or integer map keys",
    })?;
    let hash = checked_config_hash(step, &value)?;
    Ok(CanonicalConfig { value, hash })
}

/// Largest canonical config text accepted: a config is copied into every run's record, snapshot
/// and database row.
pub const MAX_CONFIG_BYTES: usize = 4 << 20;

/// [`hash_config_value`] of a config no larger than [`MAX_CONFIG_BYTES`]; `step` names the step
/// in the error.
pub(crate) fn checked_config_hash(step: &str, value: &serde_json::Value) -> Result<String> {
    let text = crate::canonical::text(value);
    if text.len() > MAX_CONFIG_BYTES {
        return Err(Error::Config {
            step: step.to_owned(),
            path: "$".to_owned(),
            reason: format!(
                "the config is {:.1} MiB of JSON, over the {} MiB limit",
                text.len() as f64 / (1 << 20) as f64,
                MAX_CONFIG_BYTES >> 20
            ),
            fix: "pass large data (tables, long lists, file contents) as an input file: it is hashed by content \
                  instead of being copied into every run's record",
        });
    }
    Ok(hash_parts("consist-config-v1", &[text.as_bytes()]))
}

/// Hash of a config that is already canonical (a value produced by `crate::canonical`).
pub fn hash_config_value(value: &serde_json::Value) -> String {
    hash_parts("consist-config-v1", &[crate::canonical::text(value).as_bytes()])
}

/// One input's contribution to the input hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputEntry {
    /// The input key (parameter name).
    pub key: String,
    /// `run:<producer signature>:<artifact key>` for an artifact produced by a recorded run
    /// (the Merkle link), `blake3:<hex>` for a file hashed by content, `stat:<size>:<mtime ns>`
    /// for a file under the `fast` strategy.
    pub identity: String,
}

/// Hash of a set of inputs; order of declaration does not matter.
pub fn input_hash(entries: &[InputEntry]) -> String {
    let mut sorted: Vec<&InputEntry> = entries.iter().collect();
    sorted.sort();
    let parts: Vec<&[u8]> = sorted.iter().flat_map(|e| [e.key.as_bytes(), e.identity.as_bytes()]).collect();
    hash_parts("consist-inputs-v1", &parts)
}

/// The run signature.
pub fn signature(model: &str, code_hash: &str, config_hash: &str, input_hash: &str) -> String {
    hash_parts(
        "consist-sig-v1",
        &[model.as_bytes(), code_hash.as_bytes(), config_hash.as_bytes(), input_hash.as_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Cfg {
        value: i64,
        threshold: f64,
    }

    // Fixed vectors, cross-checked with Python `blake3` over the same length-prefixed encoding.
    // If one of these changes, every user's cache is invalidated. Change them only
    // together with the domain strings ("-v1" -> "-v2") and a note in the changelog.
    #[test]
    fn config_hash_vectors_are_stable() {
        let h = config_hash("t", &Cfg { value: 5, threshold: 15.0 }).unwrap();
        assert_eq!(h.value.to_string(), r#"{"threshold":15.0,"value":5}"#);
        assert_eq!(h.hash, "f784cb736962c91bc100fa8aa3d68382f0446fdff9a784556b63be14e8d5cc98");
        let unit = config_hash("t", &()).unwrap();
        assert_eq!(unit.hash, "6bae3dabb43b881688da80a8e81ce6f55b11e55457fc10fff0459f9c0c1823ae");
    }

    #[test]
    fn int_and_float_configs_hash_differently() {
        assert_ne!(config_hash("t", &1i64).unwrap().hash, config_hash("t", &1.0f64).unwrap().hash);
    }

    #[test]
    fn nan_config_is_a_clear_error() {
        let err = config_hash("square", &Cfg { value: 1, threshold: f64::NAN }).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("square") && msg.contains("$.threshold") && msg.contains("NaN"), "{msg}");
    }

    #[test]
    fn a_config_over_the_size_limit_is_a_clear_error() {
        let huge = "x".repeat(10 << 20);
        let err = config_hash("square", &huge).unwrap_err().to_string();
        assert!(err.contains("10.0 MiB") && err.contains("input file"), "{err}");
        assert!(config_hash("square", &"x".repeat(1 << 20)).is_ok(), "1 MiB is fine");
    }

    #[test]
    fn input_hash_ignores_declaration_order() {
        let a = InputEntry { key: "a".into(), identity: "blake3:1".into() };
        let b = InputEntry { key: "b".into(), identity: "run:x:y".into() };
        assert_eq!(input_hash(&[a.clone(), b.clone()]), input_hash(&[b.clone(), a.clone()]));
        let b2 = InputEntry { key: "b".into(), identity: "run:x:z".into() };
        assert_ne!(input_hash(&[a.clone(), b]), input_hash(&[a, b2]));
    }

    #[test]
    fn signature_depends_on_every_part() {
        let base = signature("m", "c", "f", "i");
        assert_ne!(base, signature("n", "c", "f", "i"));
        assert_ne!(base, signature("m", "d", "f", "i"));
        assert_ne!(base, signature("m", "c", "g", "i"));
        assert_ne!(base, signature("m", "c", "f", "j"));
        // length prefixes: moving a byte between parts changes the hash
        assert_ne!(signature("ab", "c", "f", "i"), signature("a", "bc", "f", "i"));
    }
}
