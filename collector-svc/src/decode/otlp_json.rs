//! OTLP/JSON (the OTLP spec's JSON mapping: lowerCamelCase keys, hex trace/span ids, 64-bit
//! integers as strings or numbers, enums as integers).
//!
//! `opentelemetry-proto`'s serde derive handles the common shape. Where it is stricter than the
//! protobuf JSON mapping that OTLP/JSON is based on — `null` for a field, an empty `arrayValue`
//! or `kvlistValue` object without `values`, enum names instead of numbers — the body is
//! normalised and decoded again, so well-formed bodies pay nothing extra.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use serde_json::{Map, Value};

use crate::error::Error;

/// Nesting beyond this is refused (serde_json itself stops at 128).
const MAX_DEPTH: usize = 128;

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
pub fn decode_request(body: &[u8]) -> Result<ExportTraceServiceRequest, Error> {
    let first = match serde_json::from_slice(body) {
        Ok(request) => return Ok(request),
        Err(error) => error,
    };
    let invalid = |e: &serde_json::Error| Error::InvalidBody(format!("Invalid OTLP JSON: {e}"));
    let mut value: Value = serde_json::from_slice(body).map_err(|e| invalid(&e))?;
    if !normalise(&mut value, None, 0) {
        return Err(invalid(&first));
    }
    serde_json::from_value(value).map_err(|e| invalid(&e))
}

/// Rewrites `value` in place; returns whether anything changed.
fn normalise(value: &mut Value, key: Option<&str>, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match value {
        Value::Object(map) => {
            let mut changed = false;
            let before = map.len();
            map.retain(|_, v| !v.is_null());
            changed |= map.len() != before;
            if matches!(key, Some("arrayValue" | "kvlistValue")) && !map.contains_key("values") {
                map.insert("values".into(), Value::Array(Vec::new()));
                changed = true;
            }
            changed |=
                enum_name_to_number(map, "kind", |name| SpanKind::from_str_name(name).map(|k| k as i32));
            if key == Some("status") {
                changed |= enum_name_to_number(map, "code", |name| {
                    StatusCode::from_str_name(name).map(|c| c as i32)
                });
            }
            for (k, v) in map.iter_mut() {
                changed |= normalise(v, Some(k), depth + 1);
            }
            changed
        }
        Value::Array(items) => {
            let mut changed = false;
            for item in items.iter_mut() {
                changed |= normalise(item, key, depth + 1);
            }
            changed
        }
        _ => false,
    }
}

fn enum_name_to_number(
    map: &mut Map<String, Value>,
    field: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> bool {
    let Some(number) = map.get(field).and_then(Value::as_str).and_then(&parse) else { return false };
    map.insert(field.to_owned(), Value::from(number));
    true
}

/// The JSON `ExportTraceServiceResponse`: `{}` or `{"partialSuccess": {...}}` (int64 as a
/// string, as the protobuf JSON mapping writes it).
pub fn encode_response(rejected_spans: u64, message: Option<&str>) -> String {
    match message {
        None => "{}".to_owned(),
        Some(message) => serde_json::json!({
            "partialSuccess": { "rejectedSpans": rejected_spans.to_string(), "errorMessage": message }
        })
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value;

    use super::*;

    /// The example from opentelemetry-proto's `examples/trace.json`.
    const SPEC_EXAMPLE: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
      "scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0","attributes":[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},
      "spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173",
      "name":"I'm a server span","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,"kind":2,
      "attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}},{"key":"n","value":{"intValue":"42"}}]}]}]}]}"#;

    #[test]
    fn spec_example_decodes() {
        let request = decode_request(SPEC_EXAMPLE.as_bytes()).unwrap();
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id, hex_bytes("5b8efff798038103d269b633813fc60c"));
        assert_eq!(span.span_id, hex_bytes("eee19b7ec3c1b174"));
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(span.kind, 2);
        let n = span.attributes[1].value.as_ref().unwrap().value.as_ref().unwrap();
        assert_eq!(n, &any_value::Value::IntValue(42));
    }

    #[test]
    fn lenient_forms_decode() {
        let body = r#"{"resourceSpans":[{"resource":null,"scopeSpans":[{"spans":[{
            "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":null,
            "name":"s","kind":"SPAN_KIND_CLIENT","status":{"code":"STATUS_CODE_ERROR","message":"m"},
            "attributes":[{"key":"a","value":{"arrayValue":{}}},{"key":"k","value":{"kvlistValue":{}}},{"key":"none"}]}]}]}]}"#;
        let request = decode_request(body.as_bytes()).unwrap();
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(span.status.as_ref().unwrap().code, StatusCode::Error as i32);
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.attributes.len(), 3);
    }

    #[test]
    fn garbage_is_refused_with_a_message() {
        let error = decode_request(b"{\"resourceSpans\": 5}").unwrap_err();
        assert!(error.to_string().starts_with("Invalid OTLP JSON: invalid type"), "{error}");
        let error = decode_request(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#)
            .unwrap_err();
        assert!(error.to_string().starts_with("Invalid OTLP JSON"), "{error}");
    }

    #[test]
    fn responses() {
        assert_eq!(encode_response(0, None), "{}");
        assert_eq!(
            encode_response(2, Some("bad")),
            r#"{"partialSuccess":{"errorMessage":"bad","rejectedSpans":"2"}}"#
        );
    }

    fn hex_bytes(hex: &str) -> Vec<u8> {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }
}
