//! The span read path (reference §11): `GET /v1/projects` and
//! `GET /v1/projects/{project_identifier}/spans`, answered from collector-svc's
//! `SpanQueryService` in Phoenix's shapes (attributes flattened to dotted keys,
//! `openinference.span.kind` lifted into `span_kind`, ISO timestamps, GlobalIDs).

use ashgate_proto::collector as pb;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::caller::Caller;
use crate::error::{ApiError, ApiResult};
use crate::global_id;
use crate::routes::Params;
use crate::state::AppState;
use crate::timestamp::{iso_from_nanos, parse_iso_nanos};

/// Query of `GET /v1/projects`.
#[derive(Debug, Default, Deserialize)]
pub struct ProjectsQuery {
    cursor: Option<String>,
    limit: Option<String>,
    /// Accepted for compatibility (ashgate has no experiment projects).
    #[allow(dead_code)]
    include_experiment_projects: Option<String>,
}

/// Query of `GET /v1/projects/{project_identifier}/spans`.
#[derive(Debug, Default, Deserialize)]
pub struct SpansQuery {
    cursor: Option<String>,
    limit: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    trace_id: Option<String>,
}

fn limit(raw: Option<&str>) -> ApiResult<u32> {
    crate::routes::Page { cursor: None, limit: raw.map(str::to_owned) }.limit(1000)
}

fn request_with_bearer<T>(message: T, caller: &Caller) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(std::time::Duration::from_secs(30));
    if let Some(bearer) = &caller.0.context.bearer
        && let Ok(value) = tonic::metadata::MetadataValue::try_from(format!("Bearer {bearer}"))
    {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// `GET /v1/projects`: `{"data": [{id, name, description}], "next_cursor"}`.
#[tracing::instrument(skip_all)]
pub async fn list_projects(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ProjectsQuery>,
) -> ApiResult<Json<Value>> {
    let limit = limit(query.limit.as_deref())?;
    let cursor = query.cursor.unwrap_or_default();
    let request = request_with_bearer(pb::ListProjectsRequest { cursor, limit }, &caller);
    let reply = state.collector.spans().list_projects(request).await.map_err(invalid_cursor)?.into_inner();
    let data: Vec<Value> = reply
        .projects
        .into_iter()
        .map(|p| {
            let description = (!p.description.is_empty()).then_some(p.description);
            json!({"name": p.name, "description": description, "id": global_id::encode(global_id::PROJECT, p.id)})
        })
        .collect();
    let next_cursor = (!reply.next_cursor.is_empty()).then_some(reply.next_cursor);
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})))
}

fn invalid_cursor(status: tonic::Status) -> ApiError {
    match status.code() {
        tonic::Code::InvalidArgument => ApiError::Unprocessable("Invalid cursor".into()),
        _ => status.into(),
    }
}

/// What collector-svc is asked for: a project name, or the numeric id of a Project GlobalID.
fn project_selector(identifier: &str) -> ApiResult<String> {
    match global_id::decode(identifier) {
        Some((node_type, id)) if node_type == global_id::PROJECT => {
            id.parse::<i64>().map(|id| id.to_string()).map_err(|_| invalid_project(identifier))
        }
        Some(_) => Err(invalid_project(identifier)),
        None => Ok(identifier.to_owned()),
    }
}

fn invalid_project(identifier: &str) -> ApiError {
    ApiError::Unprocessable(format!("Invalid Project identifier: {identifier}"))
}

fn time_param(value: Option<&str>, name: &str) -> ApiResult<i64> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(0),
        Some(raw) => parse_iso_nanos(raw)
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::Unprocessable(format!("{name} is not an ISO 8601 datetime: {raw}"))),
    }
}

/// `GET /v1/projects/{project_identifier}/spans`: `{"data": [Span], "next_cursor"}`.
#[tracing::instrument(skip_all, fields(project = %project_identifier))]
pub async fn list_spans(
    State(state): State<AppState>,
    caller: Caller,
    Path(project_identifier): Path<String>,
    Params(query): Params<SpansQuery>,
) -> ApiResult<Json<Value>> {
    let project = project_selector(&project_identifier)?;
    let by_id = project != project_identifier;
    let trace_id = query.trace_id.unwrap_or_default().trim().to_ascii_lowercase();
    if !trace_id.is_empty() && (trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(ApiError::Unprocessable("trace_id must be 32 hexadecimal characters".into()));
    }
    let request = pb::QuerySpansRequest {
        project,
        start_time_unix_nano: time_param(query.start_time.as_deref(), "start_time")?,
        end_time_unix_nano: time_param(query.end_time.as_deref(), "end_time")?,
        trace_id,
        cursor: query.cursor.unwrap_or_default(),
        limit: limit(query.limit.as_deref())?,
    };
    let reply = match state.collector.spans().query_spans(request_with_bearer(request, &caller)).await {
        Ok(reply) => reply.into_inner(),
        Err(status) if status.code() == tonic::Code::NotFound => {
            return Err(ApiError::NotFound(if by_id {
                format!("Project with ID {project_identifier} not found")
            } else {
                format!("Project with name '{project_identifier}' not found")
            }));
        }
        Err(status) => return Err(invalid_cursor(status)),
    };
    let data: Vec<SpanJson> = reply.spans.into_iter().map(SpanJson::from).collect();
    let next_cursor = (!reply.next_cursor.is_empty()).then_some(reply.next_cursor);
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
    fn project_identifiers() {
        assert_eq!(project_selector("default").unwrap(), "default");
        assert_eq!(project_selector(&global_id::encode("Project", 7)).unwrap(), "7");
        assert!(project_selector(&global_id::encode("User", 7)).is_err());
    }
}
