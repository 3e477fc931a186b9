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

/// Encode a value for the artifact `key`, checked to read back as itself. bincode does not
/// describe its data, so a type whose serde form depends on what it holds
/// (`skip_serializing_if`, `untagged`, `flatten`, `serde_json::Value`, a hand-written
/// `Serialize`) would decode into another value, a cache hit then returning what the step never
/// returned, or never decode. Such a value is refused, naming the type and the way out.
pub(crate) fn encode<T: Serialize + DeserializeOwned>(key: &str, value: &T) -> Result<Vec<u8>> {
    let bytes = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| Error::Codec { key: key.to_owned(), reason: e.to_string() })?;
    let problem = match bincode::serde::decode_from_slice::<T, _>(&bytes, config()) {
        Err(e) => Some(e.to_string()),
        Ok((_, used)) if used != bytes.len() => Some(format!("{} bytes left over", bytes.len() - used)),
        Ok((back, _)) => (!reads_back(value, &back, &bytes)).then(|| "it decodes into another value".to_owned()),
    };
    match problem {
        None => Ok(bytes),
        Some(problem) => Err(Error::Codec {
            key: key.to_owned(),
            reason: format!(
                "a `{}` does not read back as the value written ({problem}): its serde form \
                 depends on data the codec ({CODEC}) does not record, as \
                 `#[serde(skip_serializing_if)]`, `untagged`, `flatten` or `serde_json::Value` \
                 make it; drop those attributes for this output, or write it as a file \
                 (`ctx.log_file`) or a DataFrame",
                std::any::type_name::<T>()
            ),
        }),
    }
}

/// Encodings larger than this are compared by their bytes only (see [`reads_back`]): the JSON
/// trees of the comparison take ~8 times the value's size.
const JSON_CHECK_LIMIT: usize = 16 << 20;

/// Whether `back`, decoded from `bytes` (the encoding of `value`), is `value`: compared in a
/// self-describing form (JSON: field names and shapes, which bincode does not record), where a
/// map's or set's order of iteration does not count. A value JSON cannot hold (a map keyed by a
/// tuple, an integer beyond 64 bits) or a big one is compared by its encoding again, byte for
/// byte up to the order of a hash map's entries: weaker, as it cannot tell a skipped field.
fn reads_back<T: Serialize>(value: &T, back: &T, bytes: &[u8]) -> bool {
    if bytes.len() <= JSON_CHECK_LIMIT
        && let Ok(a) = serde_json::to_value(value)
    {
        return serde_json::to_value(back).is_ok_and(|b| a == b || same_ignoring_order(&a, &b));
    }
    bincode::serde::encode_to_vec(back, config()).is_ok_and(|again| same_bytes_in_any_order(&again, bytes))
}

/// Whether `a` and `b` hold the same bytes, whatever their order (a `HashMap` decodes with
/// another iteration order, so its entries are encoded again in another order).
fn same_bytes_in_any_order(a: &[u8], b: &[u8]) -> bool {
    let count = |bytes: &[u8]| {
        let mut counts = [0usize; 256];
        bytes.iter().for_each(|&byte| counts[usize::from(byte)] += 1);
        counts
    };
    a.len() == b.len() && (a == b || count(a) == count(b))
}

/// `a` and `b` equal with every array compared as a multiset (a `HashSet` decodes in another
/// order; objects already compare by key).
fn same_ignoring_order(a: &Value, b: &Value) -> bool {
    fn normal(v: &Value) -> Value {
        match v {
            Value::Array(items) => {
                let mut items: Vec<Value> = items.iter().map(normal).collect();
                items.sort_by_cached_key(|item| item.to_string());
                Value::Array(items)
            }
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), normal(v))).collect()),
            other => other.clone(),
        }
    }
    normal(a) == normal(b)
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

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Skippy {
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<u8>,
        a: u64,
        b: u64,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    enum Bound {
        Celsius(f64),
        Named(String),
    }

    #[test]
    fn a_value_that_would_read_back_as_another_is_refused_naming_its_type() {
        // Decoded, this was {note: Some(251), a: 44, b: 1}: a cache hit returned it.
        let err = encode("skippy", &Skippy { note: None, a: 1, b: 300 }).unwrap_err().to_string();
        assert!(
            err.contains("Skippy") && err.contains("skip_serializing_if") && err.contains("another value"),
            "{err}"
        );
        assert!(encode("skippy", &Skippy { note: Some(3), a: 1, b: 300 }).is_ok(), "what reads back is stored");
        for err in [
            encode("bound", &Bound::Celsius(1.5)).unwrap_err(),
            encode("json", &serde_json::json!({"a": 1})).unwrap_err(),
        ] {
            assert!(err.to_string().contains("does not read back"), "{err}");
        }
    }

    #[test]
    fn maps_sets_nan_and_tuple_keys_read_back() {
        let map: std::collections::HashMap<String, f64> = (0..50).map(|i| (format!("zone {i}"), i as f64)).collect();
        let set: std::collections::HashSet<u32> = (0..50).collect();
        let odd: std::collections::HashMap<(u16, u16), f64> = (0..200).map(|i| ((i, i + 1), f64::from(i))).collect();
        assert!(encode("map", &map).is_ok() && encode("set", &set).is_ok() && encode("odd", &odd).is_ok());
        assert!(encode("nan", &vec![f64::NAN, f64::INFINITY]).is_ok());
        let wide: std::collections::HashMap<String, u128> = (0..50).map(|i| (format!("k{i}"), u128::MAX - i)).collect();
        assert!(encode("wide", &wide).is_ok(), "beyond JSON's 64 bits: compared by bytes");
    }

    #[test]
    fn wrong_type_is_an_error_not_garbage() {
        let bytes = encode("k", &Summary { mean: 1.0, count: 2, label: "abc".into() }).unwrap();
        assert!(decode::<u8>("k", &meta::<u8>(), &bytes).is_err());
    }
}
