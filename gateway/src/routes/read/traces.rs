//! `GET /v1/projects/{project_identifier}/traces` (Phoenix 20.11's `list_project_traces`):
//! `start_time`, `end_time`, `sort` (`start_time` | `latency_ms`), `order`, `limit`, `cursor`,
//! `include_spans`, `error`, `min_latency_ms`, `max_latency_ms`. Cursors are Phoenix's
//! `Cursor` strings: base64 of `<rowid>:DATETIME:<iso>` or `<rowid>:FLOAT:<ms>`.

use ashgate_proto::collector as pb;
use axum::Json;
use axum::extract::{Path, State};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::params::{QueryParams, ReadResult, unprocessable};
use super::projects::{ProjectIdentifier, upstream};
use crate::caller::Caller;
use crate::global_id;
use crate::state::AppState;
use crate::timestamp::{iso_from_nanos, parse_iso_nanos};

/// Node type of traces.
const TRACE: &str = "Trace";
const NANOS_PER_MS: f64 = 1_000_000.0;

/// The cursor after a trace sorted by `sort` with this sort value (ns) and id.
fn encode_cursor(sort: pb::TraceSort, value: i64, id: i64) -> String {
    let text = match sort {
        pb::TraceSort::StartTime => {
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(value))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            format!("{id}:DATETIME:{}", at.format(&Rfc3339).unwrap_or_default())
        }
        pb::TraceSort::Latency => format!("{id}:FLOAT:{}", value as f64 / NANOS_PER_MS),
    };
    STANDARD.encode(text)
}

/// (sort value in ns, id) of a cursor made for `sort`; 422 "Invalid cursor" otherwise.
fn decode_cursor(sort: pb::TraceSort, raw: &str) -> ReadResult<(i64, i64)> {
    let invalid = || unprocessable("Invalid cursor");
    let text =
        STANDARD.decode(raw.trim()).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(invalid)?;
    let mut parts = text.splitn(3, ':');
    let (Some(id), Some(kind), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let id = id.parse::<i64>().map_err(|_| invalid())?;
    let value = match (sort, kind) {
        (pb::TraceSort::StartTime, "DATETIME") => parse_iso_nanos(value),
        (pb::TraceSort::Latency, "FLOAT") => {
            value.parse::<f64>().ok().filter(|v| v.is_finite()).map(|ms| (ms * NANOS_PER_MS).round() as i64)
        }
        _ => None,
    };
    Ok((value.ok_or_else(invalid)?, id))
}

fn trace_json(trace: pb::Trace, include_spans: bool) -> Value {
    let spans = include_spans.then(|| {
        trace
            .spans
            .iter()
            .map(|s| {
                json!({
                    "id": global_id::encode(global_id::SPAN, s.id),
                    "span_id": s.span_id,
                    "parent_id": (!s.parent_span_id.is_empty()).then_some(&s.parent_span_id),
                    "name": s.name,
                    "span_kind": s.span_kind,
                    "status_code": s.status_code,
                    "start_time": iso_from_nanos(s.start_time_unix_nano),
                    "end_time": iso_from_nanos(s.end_time_unix_nano),
                })
            })
            .collect::<Vec<_>>()
    });
    json!({
        "id": global_id::encode(TRACE, trace.id),
        "trace_id": trace.trace_id,
        "project_id": global_id::encode(global_id::PROJECT, trace.project_id),
        "start_time": iso_from_nanos(trace.start_time_unix_nano),
        "end_time": iso_from_nanos(trace.end_time_unix_nano),
        "token_count_prompt": trace.token_count_prompt,
        "token_count_completion": trace.token_count_completion,
        "token_count_total": trace.token_count_prompt + trace.token_count_completion,
        "spans": spans,
    })
}

/// `GET /v1/projects/{project_identifier}/traces`: `{"data": [TraceData], "next_cursor"}`.
#[tracing::instrument(skip_all, fields(project = %project_identifier))]
pub async fn list_traces(
    State(state): State<AppState>,
    caller: Caller,
    Path(project_identifier): Path<String>,
    mut params: QueryParams,
) -> ReadResult<Json<Value>> {
    let start = params.datetime("start_time");
    let end = params.datetime("end_time");
    let sort = match params.literal("sort", &["start_time", "latency_ms"], "start_time") {
        "latency_ms" => pb::TraceSort::Latency,
        _ => pb::TraceSort::StartTime,
    };
    let ascending = params.literal("order", &["asc", "desc"], "desc") == "asc";
    let limit = params.int("limit", 100, 1, Some(1000));
    let include_spans = params.boolean("include_spans").unwrap_or(false);
    let has_error = params.boolean("error");
    let min_latency = params.non_negative("min_latency_ms");
    let max_latency = params.non_negative("max_latency_ms");
    params.finish()?;
    let project = ProjectIdentifier::parse(&project_identifier);
    if !params.all("session_identifier").is_empty() {
        return Err(unprocessable("session_identifier is not supported: ashgate keeps no sessions"));
    }
    let after = match params.one("cursor").filter(|c| !c.is_empty()) {
        Some(raw) => Some(decode_cursor(sort, raw)?),
        None => None,
    };
    let to_nanos = |ms: f64| (ms * NANOS_PER_MS).round() as i64;
    let request = pb::QueryTracesRequest {
        project: project.selector(),
        start_time_unix_nano: start.unwrap_or_default(),
        end_time_unix_nano: end.unwrap_or_default(),
        sort: sort.into(),
        ascending,
        limit: u32::try_from(limit).unwrap_or(100),
        after_sort_value: after.map(|a| a.0).unwrap_or_default(),
        after_id: after.map(|a| a.1).unwrap_or_default(),
        has_error,
        min_latency_nano: min_latency.map(to_nanos),
        max_latency_nano: max_latency.map(to_nanos),
        include_spans,
    };
    let reply = state
        .collector
        .spans()
        .query_traces(upstream(request, &caller))
        .await
        .map_err(|status| project.status(status))?
        .into_inner();
    let next_cursor =
        reply.more.then(|| encode_cursor(sort, reply.next_after_sort_value, reply.next_after_id));
    let data: Vec<Value> = reply.traces.into_iter().map(|t| trace_json(t, include_spans)).collect();
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_in_phoenix_format() {
        let cursor = encode_cursor(pb::TraceSort::StartTime, 1_700_000_000_123_456_789, 42);
        let text = String::from_utf8(STANDARD.decode(&cursor).unwrap()).unwrap();
        assert_eq!(text, "42:DATETIME:2023-11-14T22:13:20.123456789Z");
        assert_eq!(
            decode_cursor(pb::TraceSort::StartTime, &cursor).unwrap(),
            (1_700_000_000_123_456_789, 42)
        );
        let cursor = encode_cursor(pb::TraceSort::Latency, 1_234_567, 7);
        assert_eq!(String::from_utf8(STANDARD.decode(&cursor).unwrap()).unwrap(), "7:FLOAT:1.234567");
        assert_eq!(decode_cursor(pb::TraceSort::Latency, &cursor).unwrap(), (1_234_567, 7));
        assert!(decode_cursor(pb::TraceSort::StartTime, &cursor).is_err(), "a latency cursor on a time sort");
        assert!(decode_cursor(pb::TraceSort::Latency, "garbage!").is_err());
    }
}
