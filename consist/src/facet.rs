//! Facets: selected config fields stored as queryable key/values (`facet_from`), outside the
//! signature; and the dotted flattening of configs that facets and miss explanations share.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::error::{Error, Result};

/// Flatten a canonical config into dotted paths (`zone.count`) of its non-object leaves.
/// A non-object config is one entry under the empty path.
pub fn flatten(config: &Json) -> BTreeMap<String, Json> {
    let mut out = BTreeMap::new();
    flatten_into(config, String::new(), &mut out);
    out
}

fn flatten_into(value: &Json, path: String, out: &mut BTreeMap<String, Json>) {
    match value {
        Json::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                flatten_into(v, p, out);
            }
        }
        _ => {
            out.insert(path, value.clone());
        }
    }
}

/// The value at a dotted `path` of `config` (objects are walked by key).
fn lookup<'a>(config: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(config, |v, part| v.as_object()?.get(part))
}

/// Pick the facet fields `keys` out of `config`; a missing field is an error listing the fields
/// that exist.
pub(crate) fn extract(config: &Json, keys: &[String]) -> Result<BTreeMap<String, Json>> {
    let mut facets = BTreeMap::new();
    for key in keys {
        let value = lookup(config, key).ok_or_else(|| {
            let known: Vec<String> = flatten(config).into_keys().filter(|k| !k.is_empty()).collect();
            let near = crate::names::nearest(key, known.iter().map(String::as_str)).map(str::to_owned);
            Error::UnknownKey {
                kind: "config field named in facet_from",
                key: key.clone(),
                known: known.join(", "),
                near,
            }
        })?;
        facets.insert(key.clone(), value.clone());
    }
    Ok(facets)
}

/// The typed columns of one `run_config_kv` row: `(value_type, value_str, value_num, value_bool)`.
/// `value_json` always holds the canonical JSON text, which is what facet filters compare.
pub(crate) fn typed(value: &Json) -> (&'static str, Option<String>, Option<f64>, Option<bool>) {
    match value {
        Json::Null => ("null", None, None, None),
        Json::Bool(b) => ("bool", None, None, Some(*b)),
        Json::Number(n) if n.is_f64() => ("float", None, n.as_f64(), None),
        Json::Number(n) => ("int", None, n.as_f64(), None),
        Json::String(s) => ("str", Some(s.clone()), None, None),
        Json::Array(_) | Json::Object(_) => ("json", None, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatten_uses_dotted_paths() {
        let flat = flatten(&json!({"a": 1, "b": {"c": [1, 2], "d": {}}}));
        assert_eq!(flat.keys().collect::<Vec<_>>(), ["a", "b.c", "b.d"]);
        assert_eq!(flat["b.c"], json!([1, 2]));
    }

    #[test]
    fn extract_finds_nested_fields_and_names_the_known_ones() {
        let config = json!({"n": 10, "zone": {"count": 5}});
        let facets = extract(&config, &["n".into(), "zone.count".into()]).unwrap();
        assert_eq!(facets["zone.count"], json!(5));
        let err = extract(&config, &["zones".into()]).unwrap_err().to_string();
        assert!(err.contains("`zones`") && err.contains("n, zone.count"), "{err}");
    }
}
