//! What the attribute index holds for a span: one 64-bit hash per scalar attribute value, of
//! its dotted path (`llm.model_name` as one key, or `a.b` for `b` nested in `a`), its type and
//! its value. `GET /v1/projects/{p}/spans?attribute=key:value` finds candidate spans by the hash
//! of what it asks for and then checks each candidate's JSON exactly (see `store::read`), so a
//! collision costs a row read, never a wrong answer; and every span the exact check accepts
//! holds that hash, so the index misses none.
//!
//! Arrays are not searched: an attribute filter matches a string, number or boolean at a key or
//! a path of nested keys. Numbers hash by value (`3`, `3.0` and the double 3 are one number).
//! Strings longer than [`MAX_INDEXED_TEXT`] bytes (prompts, completions, documents: nearly every
//! one unique, so each would cost a random B-tree insert for a filter nobody runs) are not
//! indexed; a filter on such a value reads spans' JSON as it did before the index.
//!
//! The hash is FNV-1a over `path 0x00 tag value`: fixed here, as rows stored by one version are
//! read by the next. Changing it needs a migration that rebuilds `span_attributes`.

use std::fmt::Write as _;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

/// As in `json_text`: values nested deeper are stored as `null`, so they are never matched.
const MAX_DEPTH: usize = 32;

/// Longest string value (in UTF-8 bytes) the index holds: ids, names, models, tags, URLs.
pub const MAX_INDEXED_TEXT: usize = 128;

/// One attribute value as a filter names it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// A string.
    Text(&'a str),
    /// An integer.
    Int(i64),
    /// A double.
    Real(f64),
    /// A boolean.
    Bool(bool),
}

impl Scalar<'_> {
    /// Whether the index holds values like this one.
    pub fn is_indexed(&self) -> bool {
        match self {
            Scalar::Text(s) => s.len() <= MAX_INDEXED_TEXT,
            Scalar::Int(_) | Scalar::Real(_) | Scalar::Bool(_) => true,
        }
    }
}

/// The hash of `value` at dotted `path`, as the index stores it.
pub fn hash(path: &str, value: Scalar<'_>) -> i64 {
    let mut fnv = Fnv::new();
    fnv.bytes(path.as_bytes());
    fnv.bytes(&[0]);
    match value {
        Scalar::Text(s) => {
            fnv.bytes(b"s");
            fnv.bytes(s.as_bytes());
        }
        Scalar::Bool(b) => {
            fnv.bytes(b"b");
            fnv.bytes(if b { b"true" } else { b"false" });
        }
        Scalar::Int(n) => {
            fnv.bytes(b"n");
            let _ = write!(fnv, "{n}");
        }
        Scalar::Real(d) => {
            fnv.bytes(b"n");
            write_number(&mut fnv, d);
        }
    }
    fnv.finish()
}

/// The distinct hashes of a span's OTLP attributes (the values `json_text` writes).
pub fn hashes(attributes: &[KeyValue]) -> Vec<i64> {
    let mut out = Vec::with_capacity(attributes.len());
    let mut path = String::new();
    key_values(attributes, &mut path, 0, &mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// The distinct hashes of attributes stored as JSON text (spans written before the index, and
/// rows built without OTLP). `None` if `json` is not an object.
pub fn hashes_of_json(json: &str) -> Option<Vec<i64>> {
    let serde_json::Value::Object(map) = serde_json::from_str(json).ok()? else { return None };
    let mut out = Vec::with_capacity(map.len());
    let mut path = String::new();
    for (key, value) in &map {
        json_value(key, value, &mut path, &mut out);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

fn key_values(attributes: &[KeyValue], path: &mut String, depth: usize, out: &mut Vec<i64>) {
    for kv in attributes {
        let len = path.len();
        if len > 0 {
            path.push('.');
        }
        path.push_str(&kv.key);
        value(kv.value.as_ref(), path, depth + 1, out);
        path.truncate(len);
    }
}

fn value(value: Option<&AnyValue>, path: &mut String, depth: usize, out: &mut Vec<i64>) {
    if depth > MAX_DEPTH {
        return;
    }
    let scalar = match value.and_then(|v| v.value.as_ref()) {
        None | Some(Value::StringValueStrindex(_) | Value::ArrayValue(_)) => return,
        Some(Value::KvlistValue(list)) => return key_values(&list.values, path, depth + 1, out),
        Some(Value::StringValue(s)) => Scalar::Text(s),
        Some(Value::BoolValue(b)) => Scalar::Bool(*b),
        Some(Value::IntValue(n)) => Scalar::Int(*n),
        Some(Value::DoubleValue(d)) if d.is_finite() => Scalar::Real(*d),
        // Stored as strings (JSON has no NaN or infinities).
        Some(Value::DoubleValue(d)) => return push(out, path, Scalar::Text(&d.to_string())),
        Some(Value::BytesValue(bytes)) => {
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            return push(out, path, Scalar::Text(&text));
        }
    };
    push(out, path, scalar);
}

fn push(out: &mut Vec<i64>, path: &str, scalar: Scalar<'_>) {
    if scalar.is_indexed() {
        out.push(hash(path, scalar));
    }
}

/// Stored JSON needs no depth limit of its own: `json_text` already wrote values past
/// [`MAX_DEPTH`] as `null`, and serde_json refuses nesting deeper than 128.
fn json_value(key: &str, value: &serde_json::Value, path: &mut String, out: &mut Vec<i64>) {
    let len = path.len();
    if len > 0 {
        path.push('.');
    }
    path.push_str(key);
    let scalar = match value {
        serde_json::Value::Null | serde_json::Value::Array(_) => None,
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                json_value(key, value, path, out);
            }
            None
        }
        serde_json::Value::String(s) => Some(Scalar::Text(s)),
        serde_json::Value::Bool(b) => Some(Scalar::Bool(*b)),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Some(Scalar::Int(i)),
            (None, Some(d)) => Some(Scalar::Real(d)),
            (None, None) => None,
        },
    };
    if let Some(scalar) = scalar {
        push(out, path, scalar);
    }
    path.truncate(len);
}

/// A number in one form for every spelling of its value: a whole double that an `i64` holds is
/// written as that integer, any other as Rust writes a double (shortest round trip, no exponent,
/// as `json_text` stores it).
fn write_number(out: &mut impl std::fmt::Write, d: f64) {
    // 2^63: every whole double below it and at least -2^63 converts to i64 exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if d.fract() == 0.0 && (-LIMIT..LIMIT).contains(&d) {
        #[allow(clippy::cast_possible_truncation, reason = "whole and within i64's range, checked above")]
        let n = d as i64;
        let _ = write!(out, "{n}");
    } else {
        let _ = write!(out, "{d}");
    }
}

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> i64 {
        i64::from_ne_bytes(self.0.to_ne_bytes())
    }
}

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    use super::*;
    use crate::decode::json_text::tests::kv;
    use crate::decode::json_text::write_attributes;

    #[test]
    fn the_stored_json_gives_the_same_hashes_as_the_otlp_values() {
        let nested = Value::KvlistValue(KeyValueList {
            values: vec![
                kv("b", Value::StringValue("deep".into())),
                kv("c", Value::KvlistValue(KeyValueList { values: vec![kv("d", Value::IntValue(-4))] })),
            ],
        });
        let attributes = vec![
            kv("user.id", Value::StringValue("user-42".into())),
            kv("count", Value::IntValue(i64::MIN)),
            kv("whole", Value::DoubleValue(3.0)),
            kv("negative zero", Value::DoubleValue(-0.0)),
            kv("tenth", Value::DoubleValue(0.1)),
            kv("tiny", Value::DoubleValue(1e-7)),
            kv("big", Value::DoubleValue(1e19)),
            kv("huge", Value::DoubleValue(1e300)),
            // Doubles that only a correctly rounding parser reads back exactly.
            kv("seventeen digits", Value::DoubleValue(0.300_000_000_000_000_04)),
            kv("smallest", Value::DoubleValue(5e-324)),
            kv("largest", Value::DoubleValue(f64::MAX)),
            kv("nan", Value::DoubleValue(f64::NAN)),
            kv("inf", Value::DoubleValue(f64::NEG_INFINITY)),
            kv("flag", Value::BoolValue(false)),
            kv("bytes", Value::BytesValue(vec![0, 255])),
            kv("quote\"and\\slash\u{1}", Value::StringValue("\u{7f}é\n".into())),
            kv(
                "list",
                Value::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(Value::IntValue(1)) }] }),
            ),
            kv("a", nested),
            kv("prompt", Value::StringValue("x".repeat(MAX_INDEXED_TEXT + 1))),
            kv("short enough", Value::StringValue("é".repeat(MAX_INDEXED_TEXT / 2))),
            kv("long bytes", Value::BytesValue(vec![7; MAX_INDEXED_TEXT])),
        ];
        let mut json = String::new();
        write_attributes(&mut json, &attributes);
        let from_otlp = hashes(&attributes);
        assert_eq!(Some(from_otlp.clone()), hashes_of_json(&json), "{json}");
        // Every scalar once; the array and its element are not searched, nor long strings.
        assert_eq!(from_otlp.len(), 19, "{json}");
        assert!(from_otlp.contains(&hash("short enough", Scalar::Text(&"é".repeat(MAX_INDEXED_TEXT / 2)))));
        assert!(from_otlp.contains(&hash("a.c.d", Scalar::Int(-4))));
        assert!(from_otlp.contains(&hash("a.b", Scalar::Text("deep"))));
        assert!(from_otlp.contains(&hash("nan", Scalar::Text("NaN"))));
        assert!(from_otlp.contains(&hash("bytes", Scalar::Text("AP8="))));
    }

    #[test]
    fn numbers_hash_by_value_and_types_apart() {
        assert_eq!(hash("k", Scalar::Int(3)), hash("k", Scalar::Real(3.0)));
        assert_eq!(hash("k", Scalar::Int(0)), hash("k", Scalar::Real(-0.0)));
        assert_ne!(hash("k", Scalar::Int(3)), hash("k", Scalar::Text("3")));
        assert_ne!(hash("k", Scalar::Bool(true)), hash("k", Scalar::Text("true")));
        assert_ne!(hash("k", Scalar::Real(0.5)), hash("k", Scalar::Int(0)));
        assert_ne!(hash("a.b", Scalar::Int(1)), hash("a", Scalar::Text("b\0n1")));
    }

    #[test]
    fn values_nested_past_the_stored_depth_are_not_indexed() {
        let mut value = Value::StringValue("bottom".into());
        for _ in 0..40 {
            value = Value::KvlistValue(KeyValueList { values: vec![kv("k", value)] });
        }
        let attributes = vec![kv("top", value)];
        let mut json = String::new();
        write_attributes(&mut json, &attributes);
        assert_eq!(hashes(&attributes), Vec::<i64>::new());
        assert_eq!(hashes_of_json(&json), Some(Vec::new()));
        assert_eq!(hashes_of_json("[1]"), None);
    }
}
