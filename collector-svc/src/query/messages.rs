//! Stored rows → wire messages.

use ashgate_proto::collector::{Project, Span, Trace, TraceSpan};

use crate::store::{StoredProject, StoredSpan, StoredTrace};

/// A project message (stats are zero unless they were read).
pub fn project(project: StoredProject) -> Project {
    let stats = project.stats.unwrap_or_default();
    Project {
        id: project.id,
        name: project.name,
        description: project.description,
        created_at_unix_nano: project.created_at_unix_nano,
        span_count: stats.span_count,
        last_span_start_unix_nano: stats.last_span_start_unix_nano,
    }
}

/// A span message of project `project`.
pub fn span(s: StoredSpan, project: &str) -> Span {
    Span {
        id: s.id,
        trace_id: s.trace_id,
        span_id: s.span_id,
        parent_span_id: s.parent_span_id,
        name: s.name,
        kind: s.kind,
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        status_code: s.status_code,
        status_message: s.status_message,
        attributes_json: s.attributes_json,
        events_json: s.events_json,
        links_json: s.links_json,
        resource_json: s.resource_json,
        project: project.to_owned(),
        ingested_by_user_id: s.ingested_by_user_id,
        ingested_by_kind: s.ingested_by_kind,
        span_kind: s.span_kind,
    }
}

/// A trace message, with its spans when they were read.
pub fn trace(t: StoredTrace) -> Trace {
    Trace {
        id: t.id,
        trace_id: t.trace_id,
        project_id: t.project_id,
        start_time_unix_nano: t.start_time_unix_nano,
        end_time_unix_nano: t.end_time_unix_nano,
        token_count_prompt: t.token_count_prompt,
        token_count_completion: t.token_count_completion,
        spans: t
            .spans
            .into_iter()
            .map(|s| TraceSpan {
                id: s.id,
                span_id: s.span_id,
                parent_span_id: s.parent_span_id,
                name: s.name,
                span_kind: s.span_kind,
                status_code: s.status_code,
                start_time_unix_nano: s.start_time_unix_nano,
                end_time_unix_nano: s.end_time_unix_nano,
            })
            .collect(),
    }
}
