//! Queries: `ashgate.collector.v1.SpanQueryService`, the read path over the stored spans.
//! Every authenticated role may read. Requests are checked here ([`cursor`] pages them);
//! the SQL lives with the storage ([`crate::store`]).

pub mod cursor;

use ashgate_proto::collector::span_query_service_server::SpanQueryService;
use ashgate_proto::collector::{
    ListProjectsRequest, ListProjectsResponse, Project, QuerySpansRequest, QuerySpansResponse, Span,
};
use tonic::{Request, Response, Status};

use crate::auth::Principal;
use crate::error::Error;
use crate::query::cursor::{CursorKind, decode_cursor, encode_cursor, page_limit};
use crate::store::{SpanFilter, Store, StoredProject};

/// The span query service.
#[derive(Debug, Clone)]
pub struct SpanQuery {
    store: Store,
}

impl SpanQuery {
    /// Reads from `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn user_id<T>(request: &Request<T>) -> i64 {
    request.extensions().get::<Principal>().map(|p| p.user_id).unwrap_or_default()
}

fn project_message(project: StoredProject) -> Project {
    Project {
        id: project.id,
        name: project.name,
        description: project.description,
        created_at_unix_nano: project.created_at_unix_nano,
    }
}

/// A 32-character hex trace id, lower-cased.
fn trace_id_filter(trace_id: &str) -> Result<Option<String>, Error> {
    if trace_id.is_empty() {
        return Ok(None);
    }
    if trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid { field: "trace_id", reason: "must be 32 hexadecimal characters" });
    }
    Ok(Some(trace_id.to_ascii_lowercase()))
}

fn time_bound(value: i64, field: &'static str) -> Result<Option<i64>, Error> {
    match value {
        0 => Ok(None),
        v if v < 0 => Err(Error::Invalid { field, reason: "must not be negative" }),
        v => Ok(Some(v)),
    }
}

#[tonic::async_trait]
impl SpanQueryService for SpanQuery {
    #[tracing::instrument(skip_all, fields(user_id = user_id(&request)))]
    async fn list_projects(
        &self,
        request: Request<ListProjectsRequest>,
    ) -> Result<Response<ListProjectsResponse>, Status> {
        let request = request.into_inner();
        let limit = page_limit(request.limit)?;
        let after = decode_cursor(CursorKind::Projects, &request.cursor)?.unwrap_or(0);
        let page = self.store.list_projects(after, limit).await?;
        Ok(Response::new(ListProjectsResponse {
            projects: page.projects.into_iter().map(project_message).collect(),
            next_cursor: page
                .next_after_id
                .map(|id| encode_cursor(CursorKind::Projects, id))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = user_id(&request), project = %request.get_ref().project))]
    async fn query_spans(
        &self,
        request: Request<QuerySpansRequest>,
    ) -> Result<Response<QuerySpansResponse>, Status> {
        let request = request.into_inner();
        if request.project.trim().is_empty() {
            return Err(Error::Invalid { field: "project", reason: "must not be empty" }.into());
        }
        let limit = page_limit(request.limit)?;
        let before_id = decode_cursor(CursorKind::Spans, &request.cursor)?;
        let filter_trace = trace_id_filter(&request.trace_id)?;
        let start_min = time_bound(request.start_time_unix_nano, "start_time_unix_nano")?;
        let start_max = time_bound(request.end_time_unix_nano, "end_time_unix_nano")?;
        let project = self.store.find_project(request.project.trim()).await?.ok_or(Error::ProjectNotFound)?;
        let filter = SpanFilter {
            project_id: project.id,
            start_time_min: start_min,
            start_time_max: start_max,
            trace_id: filter_trace,
            before_id,
            limit,
        };
        let page = self.store.query_spans(&filter).await?;
        let spans = page
            .spans
            .into_iter()
            .map(|s| Span {
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
                project: project.name.clone(),
                ingested_by_user_id: s.ingested_by_user_id,
                ingested_by_kind: s.ingested_by_kind,
            })
            .collect();
        Ok(Response::new(QuerySpansResponse {
            spans,
            next_cursor: page
                .next_before_id
                .map(|id| encode_cursor(CursorKind::Spans, id))
                .unwrap_or_default(),
        }))
    }
}
