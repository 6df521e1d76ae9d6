//! Writes OTLP attribute values as compact JSON text, without an intermediate `serde_json::Value`
//! (this runs for every span on the ingest path).

use std::fmt::Write as _;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

/// Nesting deeper than this is written as `null`: untrusted input must not overflow the stack.
const MAX_DEPTH: usize = 32;

/// Appends `{"key": value, ...}`.
pub fn write_attributes(out: &mut String, attributes: &[KeyValue]) {
    write_key_values(out, attributes, 0);
}

fn write_key_values(out: &mut String, attributes: &[KeyValue], depth: usize) {
    out.push('{');
    for (i, kv) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &kv.key);
        out.push(':');
        write_value(out, kv.value.as_ref(), depth + 1);
    }
    out.push('}');
}

fn write_value(out: &mut String, value: Option<&AnyValue>, depth: usize) {
    if depth > MAX_DEPTH {
        out.push_str("null");
        return;
    }
    match value.and_then(|v| v.value.as_ref()) {
        None | Some(Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(Value::StringValue(s)) => write_str(out, s),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) if d.is_finite() => {
            let _ = write!(out, "{d}");
        }
        // JSON has no NaN or infinities; keep them readable as strings.
        Some(Value::DoubleValue(d)) => write_str(out, &d.to_string()),
        Some(Value::BytesValue(bytes)) => {
            out.push('"');
            base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
            out.push('"');
        }
        Some(Value::ArrayValue(array)) => {
            out.push('[');
            for (i, item) in array.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, Some(item), depth + 1);
            }
            out.push(']');
        }
        Some(Value::KvlistValue(list)) => write_key_values(out, &list.values, depth + 1),
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// Appends `bytes` as lower-case hex.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(byte & 0x0f), 16).unwrap_or('0'));
    }
}

/// `bytes` as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    use super::*;

    /// One attribute (shared with the attribute index's tests).
    pub(crate) fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }

    #[test]
    fn attributes_are_valid_json() {
        let attributes = vec![
            kv("s", Value::StringValue("a \"quoted\"\n\u{1}é".into())),
            kv("b", Value::BoolValue(true)),
            kv("i", Value::IntValue(-9_007_199_254_740_993)),
            kv("d", Value::DoubleValue(1.5)),
            kv("nan", Value::DoubleValue(f64::NAN)),
            kv("bytes", Value::BytesValue(vec![0, 255])),
            kv(
                "arr",
                Value::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(Value::IntValue(1)) }] }),
            ),
            kv(
                "kv",
                Value::KvlistValue(KeyValueList { values: vec![kv("x", Value::StringValue("y".into()))] }),
            ),
            KeyValue { key: "none".into(), value: None, ..Default::default() },
        ];
        let mut out = String::new();
        write_attributes(&mut out, &attributes);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "s": "a \"quoted\"\n\u{1}é", "b": true, "i": -9_007_199_254_740_993_i64, "d": 1.5, "nan": "NaN",
                "bytes": "AP8=", "arr": [1], "kv": {"x": "y"}, "none": null
            })
        );
    }

    #[test]
    fn deep_nesting_is_cut() {
        let mut value = AnyValue { value: Some(Value::IntValue(1)) };
        for _ in 0..100 {
            value = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![value] })) };
        }
        let mut out = String::new();
        write_attributes(&mut out, &[KeyValue { key: "k".into(), value: Some(value), ..Default::default() }]);
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
        assert!(out.contains("null"));
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x01, 0xab, 0xff]), "01abff");
    }
}
