//! OTLP `ExportTraceServiceRequest` → validated [`SpanRow`]s, as Phoenix assigns projects:
//! resource attribute `openinference.project.name`, else `default`; the HTTP header
//! `x-project-name` overrides it for the whole request.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};

use crate::decode::json_text::{push_hex, write_attributes, write_str};
use crate::decode::rows::{IngestBatch, SpanRow};

/// Resource attribute that names the project (OpenInference).
pub const PROJECT_ATTRIBUTE: &str = "openinference.project.name";
/// Project of spans whose resource names none.
pub const DEFAULT_PROJECT: &str = "default";
/// Span attribute that names the OpenInference span kind.
pub const SPAN_KIND_ATTRIBUTE: &str = "openinference.span.kind";
pub use ashgate_proto::SPAN_KINDS;

/// Who sent an export, as stored with each span.
#[derive(Debug, Clone, Copy)]
pub struct Sender {
    /// The principal's user id.
    pub user_id: i64,
    /// The principal's credential kind name.
    pub kind: &'static str,
}

/// Number of spans in an export, counted before conversion.
pub fn count_spans(request: &ExportTraceServiceRequest) -> usize {
    request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}

/// Converts every span of `request`; invalid spans are counted in `rejected_spans`.
pub fn convert_export(
    request: ExportTraceServiceRequest,
    project_override: Option<&str>,
    sender: Sender,
) -> IngestBatch {
    let mut batch = IngestBatch {
        ingested_by_user_id: sender.user_id,
        ingested_by_kind: sender.kind,
        rows: Vec::with_capacity(count_spans(&request)),
        ..IngestBatch::default()
    };
    let mut project_index: HashMap<String, usize> = HashMap::new();
    for resource_spans in request.resource_spans {
        let attributes = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
        let name = project_override.map(str::to_owned).unwrap_or_else(|| project_name(&attributes));
        let next = batch.projects.len();
        let project = *project_index.entry(name.clone()).or_insert(next);
        if project == next {
            batch.projects.push(name);
        }
        let mut resource_json = String::new();
        write_attributes(&mut resource_json, &attributes);
        let resource = batch.resources.len();
        batch.resources.push(resource_json);
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            match convert_span(span, project, resource) {
                Ok(row) => batch.rows.push(row),
                Err(reason) => {
                    batch.rejected_spans += 1;
                    batch.rejection.get_or_insert_with(|| reason.to_owned());
                }
            }
        }
    }
    batch
}

fn project_name(resource_attributes: &[KeyValue]) -> String {
    resource_attributes
        .iter()
        .find(|kv| kv.key == PROJECT_ATTRIBUTE)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(name) if !name.trim().is_empty() => Some(name.trim().to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| DEFAULT_PROJECT.to_owned())
}

fn valid_id(id: &[u8], len: usize) -> bool {
    id.len() == len && id.iter().any(|b| *b != 0)
}

fn convert_span(span: Span, project: usize, resource: usize) -> Result<SpanRow, &'static str> {
    if !valid_id(&span.trace_id, 16) {
        return Err("trace_id must be 16 bytes, not all zero");
    }
    if !valid_id(&span.span_id, 8) {
        return Err("span_id must be 8 bytes, not all zero");
    }
    if !(span.parent_span_id.is_empty() || span.parent_span_id.len() == 8) {
        return Err("parent_span_id must be empty or 8 bytes");
    }
    let start = i64::try_from(span.start_time_unix_nano).map_err(|_| "start_time_unix_nano out of range")?;
    let end = i64::try_from(span.end_time_unix_nano).map_err(|_| "end_time_unix_nano out of range")?;
    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified).as_str_name();
    let (status_code, status_message) = match span.status {
        Some(status) => (
            match StatusCode::try_from(status.code) {
                Ok(StatusCode::Ok) => "OK",
                Ok(StatusCode::Error) => "ERROR",
                _ => "UNSET",
            },
            status.message,
        ),
        None => ("UNSET", String::new()),
    };
    let mut attributes_json = String::with_capacity(64 * span.attributes.len() + 2);
    write_attributes(&mut attributes_json, &span.attributes);
    let span_kind = span_kind(&span.attributes);
    let tokens = |key: &str| if span_kind == "LLM" { token_count(&span.attributes, key) } else { 0 };
    let (llm_token_count_prompt, llm_token_count_completion) =
        (tokens("llm.token_count.prompt"), tokens("llm.token_count.completion"));
    Ok(SpanRow {
        project,
        trace_id: crate::decode::json_text::hex(&span.trace_id),
        span_id: crate::decode::json_text::hex(&span.span_id),
        parent_span_id: crate::decode::json_text::hex(&span.parent_span_id),
        name: span.name,
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        status_code,
        status_message,
        attributes_json,
        attribute_hashes: crate::decode::attribute_index::hashes(&span.attributes),
        events_json: events_json(&span.events),
        links_json: links_json(&span.links),
        resource,
        span_kind,
        llm_token_count_prompt,
        llm_token_count_completion,
    })
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

/// Phoenix's `SpanKind(value)`: a known kind in any case, else `UNKNOWN`.
fn span_kind(attributes: &[KeyValue]) -> &'static str {
    let Some(Value::StringValue(kind)) = attribute(attributes, SPAN_KIND_ATTRIBUTE) else { return "UNKNOWN" };
    SPAN_KINDS.iter().find(|known| known.eq_ignore_ascii_case(kind.trim())).copied().unwrap_or("UNKNOWN")
}

/// A token count as Phoenix reads it (`int(value)`); anything else counts 0.
fn token_count(attributes: &[KeyValue], key: &str) -> i64 {
    match attribute(attributes, key) {
        Some(Value::IntValue(n)) => *n,
        Some(Value::DoubleValue(d)) if d.is_finite() => *d as i64,
        Some(Value::StringValue(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

fn events_json(events: &[opentelemetry_proto::tonic::trace::v1::span::Event]) -> String {
    let mut out = String::from("[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        write_str(&mut out, &event.name);
        // u64 nanoseconds fit JSON integers exactly as text.
        out.push_str(&format!(",\"time_unix_nano\":{},\"attributes\":", event.time_unix_nano));
        write_attributes(&mut out, &event.attributes);
        out.push('}');
    }
    out.push(']');
    out
}

fn links_json(links: &[opentelemetry_proto::tonic::trace::v1::span::Link]) -> String {
    let mut out = String::from("[");
    for (i, link) in links.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"trace_id\":\"");
        push_hex(&mut out, &link.trace_id);
        out.push_str("\",\"span_id\":\"");
        push_hex(&mut out, &link.span_id);
        out.push_str("\",\"attributes\":");
        write_attributes(&mut out, &link.attributes);
        out.push('}');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status, span::Event};

    use super::*;

    fn string_kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: "op".into(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            attributes: vec![string_kv("llm.model", "m")],
            events: vec![Event { name: "e".into(), time_unix_nano: 15, ..Default::default() }],
            status: Some(Status { code: StatusCode::Error as i32, message: "boom".into() }),
            ..Default::default()
        }
    }

    fn request(resource_attributes: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource { attributes: resource_attributes, ..Default::default() }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    const SENDER: Sender = Sender { user_id: 7, kind: "CREDENTIAL_KIND_SYSTEM_API_KEY" };

    #[test]
    fn converts_fields_and_project() {
        let req = request(vec![string_kv(PROJECT_ATTRIBUTE, "chat")], vec![span(1, 2)]);
        let batch = convert_export(req, None, SENDER);
        assert_eq!(batch.projects, vec!["chat".to_owned()]);
        let row = &batch.rows[0];
        assert_eq!(row.trace_id, "01".repeat(16));
        assert_eq!(row.span_id, "02".repeat(8));
        assert_eq!(row.parent_span_id, "");
        assert_eq!(row.kind, "SPAN_KIND_SERVER");
        assert_eq!((row.status_code, row.status_message.as_str()), ("ERROR", "boom"));
        assert_eq!(row.attributes_json, r#"{"llm.model":"m"}"#);
        assert_eq!(row.events_json, r#"[{"name":"e","time_unix_nano":15,"attributes":{}}]"#);
        assert_eq!(batch.resources[0], r#"{"openinference.project.name":"chat"}"#);
        assert_eq!(batch.ingested_by_user_id, 7);
        assert_eq!((row.span_kind, row.llm_token_count_prompt), ("UNKNOWN", 0));
    }

    #[test]
    fn span_kind_and_llm_token_counts() {
        let mut llm = span(1, 2);
        llm.attributes = vec![
            string_kv(SPAN_KIND_ATTRIBUTE, "llm"),
            KeyValue {
                key: "llm.token_count.prompt".into(),
                value: Some(AnyValue { value: Some(Value::IntValue(12)) }),
                ..Default::default()
            },
            string_kv("llm.token_count.completion", "30"),
        ];
        let mut tool = span(1, 3);
        tool.attributes =
            vec![string_kv(SPAN_KIND_ATTRIBUTE, "TOOL"), string_kv("llm.token_count.prompt", "5")];
        let mut odd = span(1, 4);
        odd.attributes = vec![string_kv(SPAN_KIND_ATTRIBUTE, "wizard")];
        let batch = convert_export(request(vec![], vec![llm, tool, odd]), None, SENDER);
        let got: Vec<_> = batch
            .rows
            .iter()
            .map(|r| (r.span_kind, r.llm_token_count_prompt, r.llm_token_count_completion))
            .collect();
        assert_eq!(got, [("LLM", 12, 30), ("TOOL", 0, 0), ("UNKNOWN", 0, 0)]);
    }

    #[test]
    fn default_project_and_override() {
        let batch = convert_export(request(vec![], vec![span(1, 2)]), None, SENDER);
        assert_eq!(batch.projects, vec![DEFAULT_PROJECT.to_owned()]);
        let req = request(vec![string_kv(PROJECT_ATTRIBUTE, "chat")], vec![span(1, 2)]);
        let batch = convert_export(req, Some("override"), SENDER);
        assert_eq!(batch.projects, vec!["override".to_owned()]);
    }

    #[test]
    fn invalid_spans_are_rejected_not_stored() {
        let mut short = span(1, 3);
        short.trace_id.truncate(8);
        let zero = span(0, 4);
        let mut late = span(1, 5);
        late.end_time_unix_nano = u64::MAX;
        let batch = convert_export(request(vec![], vec![span(1, 2), short, zero, late]), None, SENDER);
        assert_eq!(batch.rows.len(), 1);
        assert_eq!(batch.rejected_spans, 3);
        assert_eq!(
            batch.rejection_message().unwrap(),
            "3 spans rejected; first: trace_id must be 16 bytes, not all zero"
        );
    }
}
