//! Canonical JSON for any `Serialize` config, the input of the config hash.
//!
//! Rules (stable across processes, machines and versions of this crate; pinned by test vectors):
//! - map and struct keys are sorted (byte order) by [`text`] itself, whatever serde_json map type
//!   a build ends up with (its `preserve_order` feature cannot change a hash); no whitespace;
//! - integers and floats stay distinct: `1` is written `1`, `1.0` is written `1.0`, so changing a
//!   field from `1` to `1.0` changes the hash (they are different Rust types);
//! - floats are written with the shortest representation that round-trips (`ryu`);
//! - NaN and ±infinity are rejected with the path of the offending field, because JSON cannot
//!   represent them and silently mapping them to `null` would make distinct configs collide;
//! - `Option::None` and `()` are `null`; `Some(x)` is `x`, except when `x` is itself `null` or
//!   such a marker (`Some(None)` of an `Option<Option<T>>`, `Some(())`): then `{"$some": x}`, so
//!   that it is not `None`; enums use serde's externally tagged form;
//! - map keys must be strings, integers, chars or bools (written as strings).

use serde::ser::{self, Serialize};
use serde_json::{Map, Number, Value};

/// Why a value could not be canonicalized, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalError {
    /// Dotted path of the offending value (`$` is the root).
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at `{}`", self.reason, self.path)
    }
}

impl std::error::Error for CanonicalError {}

impl ser::Error for CanonicalError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        CanonicalError { path: String::new(), reason: msg.to_string() }
    }
}

/// Convert any `Serialize` value into a JSON value whose serialization is canonical.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, CanonicalError> {
    value.serialize(ValueSer { path: "$".to_owned(), depth: 0 })
}

/// The canonical text of a JSON value: object keys sorted by their bytes, no whitespace, numbers
/// and strings as serde_json writes them. The keys are sorted here rather than by serde_json's map
/// type, so a crate anywhere in the build that enables serde_json's `preserve_order` feature
/// cannot change a hash.
pub fn text(value: &Value) -> String {
    let mut out = String::new();
    write_text(value, &mut out);
    out
}

fn write_text(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_text(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_text(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Deepest nesting a config may have (objects, arrays, options and newtypes each count): deeper
/// values are refused with their path, before any recursion could exhaust the stack, and every
/// accepted config reads back from its JSON snapshot (serde_json stops at 128 levels).
pub const MAX_DEPTH: usize = 64;

/// The key that marks `Some` of a value written `null` (see the module docs).
const SOME: &str = "$some";

struct ValueSer {
    path: String,
    depth: usize,
}

impl ValueSer {
    fn child(&self, key: impl std::fmt::Display) -> Result<ValueSer, CanonicalError> {
        ValueSer { path: format!("{}.{}", self.path, key), depth: self.depth }.deeper()
    }

    /// The same place one level deeper (an option, a newtype): refused past [`MAX_DEPTH`].
    fn deeper(self) -> Result<ValueSer, CanonicalError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.fail(format!(
                "the value is nested more than {MAX_DEPTH} levels deep; flatten it, or pass large structured \
                 data as an input file"
            )));
        }
        Ok(ValueSer { depth: self.depth + 1, ..self })
    }

    fn fail(&self, reason: impl Into<String>) -> CanonicalError {
        CanonicalError { path: self.path.clone(), reason: reason.into() }
    }

    fn float(&self, v: f64) -> Result<Value, CanonicalError> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| self.fail(format!("{v} is not a finite number (JSON has no NaN or infinity)")))
    }

    fn with_path<T>(&self, result: Result<T, CanonicalError>) -> Result<T, CanonicalError> {
        result.map_err(|mut e| {
            if e.path.is_empty() {
                e.path = self.path.clone();
            }
            e
        })
    }
}

/// Collects a sequence or tuple.
struct SeqSer {
    ser: ValueSer,
    items: Vec<Value>,
    variant: Option<&'static str>,
}

/// Collects a map or struct.
struct MapSer {
    ser: ValueSer,
    map: Map<String, Value>,
    pending_key: Option<String>,
    variant: Option<&'static str>,
}

fn tagged(variant: Option<&'static str>, value: Value) -> Value {
    match variant {
        Some(name) => {
            let mut outer = Map::new();
            outer.insert(name.to_owned(), value);
            Value::Object(outer)
        }
        None => value,
    }
}

macro_rules! int_methods {
    ($($name:ident: $ty:ty),*) => {$(
        fn $name(self, v: $ty) -> Result<Value, CanonicalError> {
            Ok(Value::Number(v.into()))
        }
    )*};
}

impl ser::Serializer for ValueSer {
    type Ok = Value;
    type Error = CanonicalError;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = SeqSer;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = MapSer;

    int_methods!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64);

    fn serialize_i128(self, v: i128) -> Result<Value, CanonicalError> {
        i64::try_from(v).map(|v| Value::Number(v.into())).map_err(|_| self.fail("i128 outside the i64 range"))
    }

    fn serialize_u128(self, v: u128) -> Result<Value, CanonicalError> {
        u64::try_from(v).map(|v| Value::Number(v.into())).map_err(|_| self.fail("u128 outside the u64 range"))
    }

    fn serialize_bool(self, v: bool) -> Result<Value, CanonicalError> {
        Ok(Value::Bool(v))
    }

    fn serialize_f32(self, v: f32) -> Result<Value, CanonicalError> {
        // Widen through the shortest decimal form so 0.1f32 hashes as 0.1, not 0.10000000149.
        let widened: f64 = v.to_string().parse().unwrap_or(f64::from(v));
        self.float(if v.is_finite() { widened } else { f64::from(v) })
    }

    fn serialize_f64(self, v: f64) -> Result<Value, CanonicalError> {
        self.float(v)
    }

    fn serialize_char(self, v: char) -> Result<Value, CanonicalError> {
        Ok(Value::String(v.to_string()))
    }

    fn serialize_str(self, v: &str) -> Result<Value, CanonicalError> {
        Ok(Value::String(v.to_owned()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, CanonicalError> {
        Ok(Value::Array(v.iter().map(|b| Value::Number((*b).into())).collect()))
    }

    fn serialize_none(self) -> Result<Value, CanonicalError> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, CanonicalError> {
        let inner = value.serialize(self.deeper()?)?;
        let marker = |v: &Value| v.as_object().is_some_and(|m| m.len() == 1 && m.contains_key(SOME));
        Ok(match inner.is_null() || marker(&inner) {
            true => Value::Object(Map::from_iter([(SOME.to_owned(), inner)])),
            false => inner,
        })
    }

    fn serialize_unit(self) -> Result<Value, CanonicalError> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, CanonicalError> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, CanonicalError> {
        Ok(Value::String(variant.to_owned()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, CanonicalError> {
        value.serialize(self.deeper()?)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, CanonicalError> {
        let inner = value.serialize(self.child(variant)?)?;
        Ok(tagged(Some(variant), inner))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer, CanonicalError> {
        Ok(SeqSer { ser: self, items: Vec::with_capacity(len.unwrap_or(0)), variant: None })
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqSer, CanonicalError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqSer, CanonicalError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqSer, CanonicalError> {
        Ok(SeqSer { ser: self.child(variant)?, items: Vec::with_capacity(len), variant: Some(variant) })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapSer, CanonicalError> {
        Ok(MapSer { ser: self, map: Map::new(), pending_key: None, variant: None })
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<MapSer, CanonicalError> {
        self.serialize_map(None)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<MapSer, CanonicalError> {
        Ok(MapSer { ser: self.child(variant)?, map: Map::new(), pending_key: None, variant: Some(variant) })
    }
}

impl SeqSer {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        let child = self.ser.child(self.items.len())?;
        self.items.push(value.serialize(child)?);
        Ok(())
    }

    fn finish(self) -> Result<Value, CanonicalError> {
        Ok(tagged(self.variant, Value::Array(self.items)))
    }
}

macro_rules! seq_impl {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for SeqSer {
            type Ok = Value;
            type Error = CanonicalError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
                self.push(value)
            }
            fn end(self) -> Result<Value, CanonicalError> {
                self.finish()
            }
        }
    )*};
}

seq_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl MapSer {
    fn insert<T: Serialize + ?Sized>(&mut self, key: String, value: &T) -> Result<(), CanonicalError> {
        let child = self.ser.child(&key)?;
        let value = value.serialize(child)?;
        self.map.insert(key, value);
        Ok(())
    }

    fn finish(self) -> Result<Value, CanonicalError> {
        Ok(tagged(self.variant, Value::Object(self.map)))
    }
}

impl ser::SerializeMap for MapSer {
    type Ok = Value;
    type Error = CanonicalError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CanonicalError> {
        let key = self.ser.with_path(key.serialize(ValueSer { path: self.ser.path.clone(), depth: self.ser.depth }))?;
        self.pending_key = Some(match key {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(self.ser.fail(format!("map key {other} is not a string, integer or bool")));
            }
        });
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        let key = self.pending_key.take().ok_or_else(|| self.ser.fail("map value without a key"))?;
        self.insert(key, value)
    }

    fn end(self) -> Result<Value, CanonicalError> {
        self.finish()
    }
}

macro_rules! struct_impl {
    ($($trait:ident),*) => {$(
        impl ser::$trait for MapSer {
            type Ok = Value;
            type Error = CanonicalError;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), CanonicalError> {
                self.insert(key.to_owned(), value)
            }
            fn end(self) -> Result<Value, CanonicalError> {
                self.finish()
            }
        }
    )*};
}

struct_impl!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;

    /// Canonical JSON text of a value.
    fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, CanonicalError> {
        Ok(text(&to_value(value)?))
    }
    use serde::Serialize;
    use std::collections::{BTreeMap, HashMap};

    /// Computed independently in Python: blake3(b"consist-config-v1" + u64le(len) + json.dumps(
    /// {"z": 4, "é": 3, "b": 2, "a": 1}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)).
    const PINNED_REVERSED_MAP: &str = "9c404d5324d07afa1597442ef56d0299e62922302d855c4d6597b53ff49ac703";

    #[derive(Serialize)]
    struct Params {
        zeta: i64,
        alpha: f64,
        name: String,
        nested: Inner,
        opt: Option<u8>,
    }

    #[derive(Serialize)]
    struct Inner {
        b: Vec<f64>,
        a: bool,
    }

    #[test]
    fn some_of_nothing_is_not_nothing() {
        let texts: Vec<String> = [None, Some(None), Some(Some(None)), Some(Some(Some(1.5)))]
            .iter()
            .map(|v: &Option<Option<Option<f64>>>| text(&to_value(v).unwrap()))
            .collect();
        assert_eq!(texts, ["null", r#"{"$some":null}"#, r#"{"$some":{"$some":null}}"#, "1.5"]);
        assert_eq!(text(&to_value(&Some(())).unwrap()), r#"{"$some":null}"#);
        assert_eq!(text(&to_value(&Some(2u8)).unwrap()), "2", "any other Some is its value, as before");
    }

    #[test]
    fn nesting_past_the_limit_is_an_error_with_its_path_not_a_stack_overflow() {
        // 10,000 levels of arrays, objects and options: each refused at level MAX_DEPTH.
        // Built by moving (the json! macro would serialize each level again, recursively).
        let mut arrays = Value::from(1);
        let mut objects = Value::from(1);
        for _ in 0..10_000 {
            arrays = Value::Array(vec![arrays]);
            objects = Value::Object(Map::from_iter([("k".to_owned(), objects)]));
        }
        let err = to_value(&arrays).unwrap_err();
        assert!(err.reason.contains("more than 64 levels"), "{err}");
        assert!(err.path.starts_with("$.0.0.0"), "{}", &err.path[..20]);
        assert!(to_value(&objects).unwrap_err().path.starts_with("$.k.k.k"));
        #[derive(Serialize)]
        struct Chain(Option<Box<Chain>>);
        let mut chain = Chain(None);
        for _ in 0..10_000 {
            chain = Chain(Some(Box::new(chain)));
        }
        assert!(to_value(&chain).unwrap_err().reason.contains("64 levels"));
        // Dropping 10,000 nested values recurses too: leak them rather than test the drop here.
        std::mem::forget((arrays, objects, chain));
        let mut ok = Value::from(1);
        for _ in 0..MAX_DEPTH - 1 {
            ok = Value::Array(vec![ok]);
        }
        let value = to_value(&ok).unwrap();
        let text = text(&value);
        let back: serde_json::Value = serde_json::from_str(&format!("{{\"run\":{{\"config\":{text}}}}}")).unwrap();
        assert_eq!(back["run"]["config"], value, "an accepted config reads back inside a record");
    }

    #[test]
    fn key_order_of_the_input_never_reaches_the_text_or_the_hash() {
        let entries =
            |keys: [&str; 4], values: [i64; 4]| Ordered(keys.iter().map(|k| k.to_string()).zip(values).collect());
        let forward = entries(["a", "b", "é", "z"], [1, 2, 3, 4]);
        let reverse = entries(["z", "é", "b", "a"], [4, 3, 2, 1]);
        let expected = r#"{"a":1,"b":2,"z":4,"é":3}"#;
        assert_eq!(text(&to_value(&forward).unwrap()), expected);
        assert_eq!(text(&to_value(&reverse).unwrap()), expected);
        // Pinned: the config hash of this map, whatever order it was built in.
        let hash = crate::signature::hash_config_value(&to_value(&reverse).unwrap());
        assert_eq!(hash, crate::signature::hash_config_value(&to_value(&forward).unwrap()));
        assert_eq!(hash, PINNED_REVERSED_MAP);
    }

    #[test]
    fn keys_are_sorted_and_whitespace_free() {
        let p =
            Params { zeta: 1, alpha: 0.5, name: "x".into(), nested: Inner { b: vec![1.0, 2.5], a: true }, opt: None };
        assert_eq!(
            to_string(&p).unwrap(),
            r#"{"alpha":0.5,"name":"x","nested":{"a":true,"b":[1.0,2.5]},"opt":null,"zeta":1}"#
        );
    }

    #[test]
    fn insertion_order_of_maps_is_irrelevant() {
        let mut a = HashMap::new();
        let mut b = BTreeMap::new();
        for (k, v) in [("x", 1), ("a", 2), ("m", 3)] {
            a.insert(k, v);
        }
        for (k, v) in [("m", 3), ("x", 1), ("a", 2)] {
            b.insert(k, v);
        }
        assert_eq!(to_string(&a).unwrap(), to_string(&b).unwrap());
        assert_eq!(to_string(&a).unwrap(), r#"{"a":2,"m":3,"x":1}"#);
    }

    #[test]
    fn integers_and_floats_stay_distinct() {
        assert_eq!(to_string(&1i64).unwrap(), "1");
        assert_eq!(to_string(&1.0f64).unwrap(), "1.0");
        assert_eq!(to_string(&0.1f32).unwrap(), "0.1");
    }

    #[test]
    fn nan_is_rejected_with_its_path() {
        let p = Inner { b: vec![1.0, f64::NAN], a: false };
        let err = to_value(&p).unwrap_err();
        assert_eq!(err.path, "$.b.1");
        assert!(err.reason.contains("NaN"), "{}", err.reason);
        assert!(to_value(&f64::INFINITY).is_err());
    }

    #[test]
    fn enums_are_externally_tagged() {
        #[derive(Serialize)]
        enum Mode {
            Car,
            Bus { fare: u32 },
        }
        assert_eq!(to_string(&vec![Mode::Car, Mode::Bus { fare: 2 }]).unwrap(), r#"["Car",{"Bus":{"fare":2}}]"#);
    }

    /// Serializes its entries as a map in the given order.
    struct Ordered(Vec<(String, i64)>);

    impl Serialize for Ordered {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in &self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }

    proptest::proptest! {
        #[test]
        fn map_insertion_order_never_changes_the_text(entries in proptest::collection::btree_map("[a-z]{1,6}", proptest::prelude::any::<i64>(), 0..12)) {
            let forward: Vec<(String, i64)> = entries.into_iter().collect();
            let mut backward = forward.clone();
            backward.reverse();
            proptest::prop_assert_eq!(to_string(&Ordered(forward)).unwrap(), to_string(&Ordered(backward)).unwrap());
        }

        #[test]
        fn finite_floats_round_trip_and_stay_distinct_from_ints(x in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO, i in proptest::prelude::any::<i64>()) {
            let text = to_string(&x).unwrap();
            proptest::prop_assert_eq!(text.parse::<f64>().unwrap(), x);
            proptest::prop_assert_ne!(to_string(&i).unwrap(), to_string(&(i as f64)).unwrap());
        }
    }

    #[test]
    fn non_scalar_map_keys_are_rejected() {
        let mut m = BTreeMap::new();
        m.insert(vec![1], 2);
        assert!(to_value(&m).is_err());
    }
}
