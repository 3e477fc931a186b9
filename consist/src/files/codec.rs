//! The value codec: how typed Rust outputs are stored as bytes (bincode 2, serde mode).
//!
//! Each value artifact records `codec` and `codec_version` in its metadata, so a later release can
//! switch codecs and still read (or knowingly re-compute) what older releases stored.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Name of the codec recorded in value artifacts.
pub const CODEC: &str = "bincode";
/// Version of the codec crate, pinned exactly in Cargo.toml.
pub const CODEC_VERSION: &str = "2.0.1";

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encode a value for the artifact `key`.
pub(crate) fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|e| Error::Codec { key: key.to_owned(), reason: e.to_string() })
}

/// Decode a value stored by [`encode`]; `meta` is the artifact's metadata, checked first.
pub(crate) fn decode<T: DeserializeOwned>(key: &str, meta: &Map<String, Value>, bytes: &[u8]) -> Result<T> {
    let codec = meta.get("codec").and_then(Value::as_str).unwrap_or(CODEC);
    let version = meta.get("codec_version").and_then(Value::as_str).unwrap_or(CODEC_VERSION);
    if codec != CODEC || version.split('.').next() != CODEC_VERSION.split('.').next() {
        return Err(Error::Codec {
            key: key.to_owned(),
            reason: format!(
                "stored with {codec} {version}, this build reads {CODEC} {CODEC_VERSION}; re-run the step with CacheMode::Overwrite"
            ),
        });
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, config()).map_err(|e| Error::Codec {
        key: key.to_owned(),
        reason: format!("{e} (was the type `{}` changed since it was stored?)", std::any::type_name::<T>()),
    })?;
    if used != bytes.len() {
        return Err(Error::Codec {
            key: key.to_owned(),
            reason: format!(
                "{} trailing bytes: the stored value is not a `{}`",
                bytes.len() - used,
                std::any::type_name::<T>()
            ),
        });
    }
    Ok(value)
}

/// Metadata recorded with a value artifact of type `T`.
pub(crate) fn meta<T: ?Sized>() -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert("codec".into(), CODEC.into());
    meta.insert("codec_version".into(), CODEC_VERSION.into());
    meta.insert("rust_type".into(), std::any::type_name::<T>().into());
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Summary {
        mean: f64,
        count: u32,
        label: String,
    }

    #[test]
    fn values_round_trip() {
        let s = Summary { mean: 35.0, count: 4, label: "x".into() };
        let bytes = encode("summary", &s).unwrap();
        assert_eq!(decode::<Summary>("summary", &meta::<Summary>(), &bytes).unwrap(), s);
    }

    #[test]
    fn foreign_codec_is_refused_with_a_fix() {
        let mut m = meta::<u32>();
        m.insert("codec".into(), "postcard".into());
        let err = decode::<u32>("k", &m, &encode("k", &1u32).unwrap()).unwrap_err().to_string();
        assert!(err.contains("postcard") && err.contains("Overwrite"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error_not_garbage() {
        let bytes = encode("k", &Summary { mean: 1.0, count: 2, label: "abc".into() }).unwrap();
        assert!(decode::<u8>("k", &meta::<u8>(), &bytes).is_err());
    }
}
