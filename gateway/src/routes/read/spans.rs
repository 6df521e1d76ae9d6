//! `GET /v1/projects/{project_identifier}/spans` with every filter of Phoenix 20.11's
//! `span_search` (`spans.py`): `trace_id`, `span_id`, `name`, `span_kind`, `status_code`
//! (repeatable), `parent_id` (`null` = roots), `attribute=key:value` (repeatable, ANDed),
//! `start_time` (inclusive), `end_time` (exclusive), `limit`, `cursor`. Spans come back in
//! Phoenix's JSON: attributes flattened to dotted keys, `openinference.span.kind` lifted into
//! `span_kind`, ISO timestamps, GlobalIDs.

use ashgate_proto::collector as pb;
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::params::{QueryParams, ReadError, ReadResult, unprocessable};
use super::projects::{ProjectIdentifier, upstream};
use crate::caller::Caller;
use crate::global_id;
use crate::state::AppState;
use crate::timestamp::iso_from_nanos;

pub use ashgate_proto::SPAN_KINDS;
/// Phoenix's span `StatusCode` values.
pub const STATUS_CODES: [&str; 3] = ["UNSET", "OK", "ERROR"];

/// Phoenix's `validate_enum_filter`: upper-cased, each known, else 422
/// "Invalid span_kind values: ['WIZARD']".
pub fn enum_filter(values: Vec<String>, known: &[&str], name: &str) -> ReadResult<Vec<String>> {
    let upper: Vec<String> = values.iter().map(|v| v.to_uppercase()).collect();
    let invalid: Vec<String> =
        upper.iter().filter(|v| !known.contains(&v.as_str())).map(|v| format!("'{v}'")).collect();
    if invalid.is_empty() {
        Ok(upper)
    } else {
        Err(unprocessable(format!("Invalid {name} values: [{}]", invalid.join(", "))))
    }
}

/// Phoenix's `_parse_attribute`: `key:value` split at the first colon, the value read as JSON
/// (a bool, an integer, a float or a string; anything unparseable is a string).
pub fn attribute_filter(raw: &str) -> ReadResult<pb::AttributeFilter> {
    use pb::attribute_filter::Value as V;
    let Some((key, value)) = raw.split_once(':') else {
        return Err(unprocessable(format!("Invalid attribute '{raw}': expected format 'key:value'")));
    };
    if key.is_empty() {
        return Err(unprocessable("Invalid attribute: key must not be empty"));
    }
    if value.is_empty() {
        return Err(unprocessable("Invalid attribute: value must not be empty"));
    }
    let typed = match serde_json::from_str::<Value>(value) {
        Err(_) => V::StringValue(value.to_owned()),
        Ok(Value::Bool(b)) => V::BoolValue(b),
        Ok(Value::String(s)) => V::StringValue(s),
        Ok(Value::Number(n)) => match n.as_i64() {
            Some(i) if !value.contains(['.', 'e', 'E']) => V::IntValue(i),
            _ => V::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        Ok(Value::Null | Value::Array(_) | Value::Object(_)) => {
            return Err(unprocessable(format!(
                "Invalid attribute value '{value}': must be a string, integer, float, or boolean. To match a \
                 string that looks like a number or boolean, JSON-quote the value: `key:\"12345\"`."
            )));
        }
    };
    Ok(pb::AttributeFilter { key: key.to_owned(), value: Some(typed) })
}

/// The row id in a span page cursor (any GlobalID whose id is an integer, as Phoenix reads it).
pub fn cursor_id(raw: &str) -> ReadResult<i64> {
    global_id::decode(raw)
        .and_then(|(_, id)| id.parse::<i64>().ok())
        .ok_or_else(|| unprocessable("Invalid cursor"))
}

/// The filters of a span query (`None`: a cursor no span can follow), checked: FastAPI's JSON 422 for a badly typed parameter,
/// Phoenix's plain 422 for a bad value.
pub fn span_request(
    params: &mut QueryParams,
    project: &ProjectIdentifier,
) -> ReadResult<Option<pb::QuerySpansRequest>> {
    let limit = params.int("limit", 100, 1, Some(1000));
    let start = params.datetime("start_time");
    let end = params.datetime("end_time");
    params.finish()?;
    let parent = match params.one("parent_id") {
        None => None,
        Some("null") => Some(pb::query_spans_request::Parent::RootsOnly(true)),
        Some(id) => Some(pb::query_spans_request::Parent::ParentSpanId(id.to_owned())),
    };
    let mut request = pb::QuerySpansRequest {
        project: project.selector(),
        start_time_unix_nano: start.unwrap_or_default(),
        end_time_unix_nano: end.unwrap_or_default(),
        limit: u32::try_from(limit).unwrap_or(100),
        trace_ids: params.all("trace_id"),
        span_ids: params.all("span_id"),
        names: params.all("name"),
        span_kinds: enum_filter(params.all("span_kind"), &SPAN_KINDS, "span_kind")?,
        status_codes: enum_filter(params.all("status_code"), &STATUS_CODES, "status_code")?,
        parent,
        attributes: params.all("attribute").iter().map(|a| attribute_filter(a)).collect::<Result<_, _>>()?,
        ..Default::default()
    };
    if let Some(raw) = params.one("cursor").filter(|c| !c.is_empty()) {
        match cursor_id(raw)? {
            id if id > 0 => request.max_id = id,
            // Nothing has an id at most 0.
            _ => return Ok(None),
        }
    }
    Ok(Some(request))
}

/// `GET /v1/projects/{project_identifier}/spans`: `{"data": [Span], "next_cursor"}`.
#[tracing::instrument(skip_all, fields(project = %project_identifier))]
pub async fn list_spans(
    State(state): State<AppState>,
    caller: Caller,
    Path(project_identifier): Path<String>,
    mut params: QueryParams,
) -> ReadResult<Json<Value>> {
    let project = ProjectIdentifier::parse(&project_identifier);
    let request = match span_request(&mut params, &project) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(Json(json!({"data": [], "next_cursor": null}))),
        // Phoenix finds the project before it checks values: an unknown project is 404 first.
        Err(error @ ReadError::Api(_)) => {
            let lookup = pb::GetProjectRequest { project: project.selector(), with_stats: false };
            state
                .collector
                .spans()
                .get_project(upstream(lookup, &caller))
                .await
                .map_err(|s| project.status(s))?;
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    let reply = state
        .collector
        .spans()
        .query_spans(upstream(request, &caller))
        .await
        .map_err(|status| project.status(status))?
        .into_inner();
    let data: Vec<SpanJson> = reply.spans.into_iter().map(SpanJson::from).collect();
    let next_cursor = (reply.next_max_id != 0).then(|| global_id::encode(global_id::SPAN, reply.next_max_id));
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})))
}

/// Phoenix's REST `Span`.
#[derive(Debug, Serialize)]
pub struct SpanJson {
    id: String,
    name: String,
    context: Value,
    span_kind: String,
    parent_id: Option<String>,
    start_time: String,
    end_time: String,
    status_code: String,
    status_message: String,
    attributes: Map<String, Value>,
    events: Vec<Value>,
}

impl From<pb::Span> for SpanJson {
    fn from(span: pb::Span) -> Self {
        let mut attributes = Map::new();
        if let Ok(Value::Object(raw)) = serde_json::from_str::<Value>(&span.attributes_json) {
            flatten_into(&mut attributes, "", Value::Object(raw));
        }
        let span_kind = match attributes.remove("openinference.span.kind") {
            Some(Value::String(kind)) => kind,
            Some(other) => other.to_string(),
            None => "UNKNOWN".into(),
        };
        let events = match serde_json::from_str::<Value>(&span.events_json) {
            Ok(Value::Array(events)) => events.into_iter().map(event_json).collect(),
            _ => Vec::new(),
        };
        Self {
            id: global_id::encode(global_id::SPAN, span.id),
            name: span.name,
            context: json!({"trace_id": span.trace_id, "span_id": span.span_id}),
            span_kind,
            parent_id: (!span.parent_span_id.is_empty()).then_some(span.parent_span_id),
            start_time: iso_from_nanos(span.start_time_unix_nano),
            end_time: iso_from_nanos(span.end_time_unix_nano),
            status_code: if span.status_code.is_empty() { "UNSET".into() } else { span.status_code },
            status_message: span.status_message,
            attributes,
            events,
        }
    }
}

/// `{name, time_unix_nano, attributes}` → Phoenix's `{name, timestamp, attributes}`.
fn event_json(event: Value) -> Value {
    let nanos = match event.get("time_unix_nano") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    };
    let name = event.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
    let attributes = match event.get("attributes") {
        Some(Value::Object(a)) => Value::Object(a.clone()),
        _ => Value::Object(Map::new()),
    };
    json!({"name": name, "timestamp": iso_from_nanos(nanos), "attributes": attributes})
}

/// Phoenix's `flatten(..., recurse_on_sequence=True)`: nested objects become dotted keys, and
/// so do lists of objects (`a.0.b`); other lists stay lists.
fn flatten_into(out: &mut Map<String, Value>, prefix: &str, value: Value) {
    let key = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
    match value {
        Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            for (k, v) in map {
                flatten_into(out, &key(&k), v);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            for (i, v) in items.into_iter().enumerate() {
                flatten_into(out, &key(&i.to_string()), v);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_like_phoenix() {
        let mut out = Map::new();
        let value = json!({"llm": {"model_name": "gpt", "input_messages": [{"role": "user"}]}, "tags": ["a", "b"], "x.y": 1});
        flatten_into(&mut out, "", value);
        assert_eq!(out["llm.model_name"], "gpt");
        assert_eq!(out["llm.input_messages.0.role"], "user");
        assert_eq!(out["tags"], json!(["a", "b"]));
        assert_eq!(out["x.y"], 1);
    }

    #[test]
    fn attribute_values_are_typed_as_phoenix_reads_them() {
        use pb::attribute_filter::Value as V;
        let value = |raw: &str| attribute_filter(raw).map(|f| (f.key, f.value.unwrap())).ok();
        assert_eq!(value("user.id:12345"), Some(("user.id".into(), V::IntValue(12345))));
        assert_eq!(value("user.id:\"12345\""), Some(("user.id".into(), V::StringValue("12345".into()))));
        assert_eq!(value("t:0.5"), Some(("t".into(), V::DoubleValue(0.5))));
        assert_eq!(value("t:2.0"), Some(("t".into(), V::DoubleValue(2.0))));
        assert_eq!(value("ok:true"), Some(("ok".into(), V::BoolValue(true))));
        assert_eq!(value("s:sess:abc:1"), Some(("s".into(), V::StringValue("sess:abc:1".into()))));
        for bad in ["nocolon", ":v", "k:", "k:null", "k:[1]", "k:{}"] {
            assert!(attribute_filter(bad).is_err(), "{bad}");
        }
        let Err(ReadError::Api(error)) =
            enum_filter(vec!["wizard".into(), "llm".into()], &SPAN_KINDS, "span_kind")
        else {
            panic!("expected a 422")
        };
        assert_eq!(error.to_string(), "Invalid span_kind values: ['WIZARD']");
    }
}
