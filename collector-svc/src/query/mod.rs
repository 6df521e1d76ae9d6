//! Queries: `ashgate.collector.v1.SpanQueryService`, the read path over the stored spans and
//! traces. Every authenticated role may read. Requests are checked here ([`paging`] holds the
//! shared checks, [`messages`] the conversions to the wire); the SQL lives with the storage
//! ([`crate::store`]).

pub mod messages;
pub mod paging;

use ashgate_proto::collector::span_query_service_server::SpanQueryService;
use ashgate_proto::collector::{
    AttributeFilter, GetProjectRequest, ListProjectsRequest, ListProjectsResponse, Project, ProjectSelector,
    QuerySpansRequest, QuerySpansResponse, QueryTracesRequest, QueryTracesResponse, TraceSort as WireSort,
    attribute_filter, project_selector, query_spans_request,
};
use tonic::{Request, Response, Status};

use crate::auth::Principal;
use crate::decode::convert::SPAN_KINDS;
use crate::error::Error;
use crate::store::{
    AttributeMatch, AttributeValue, ParentFilter, ProjectFilter, ProjectRef, SpanFilter, Store,
    StoredProject, TraceFilter, TraceSort,
};
use paging::{known_values, max_id, page_limit, time_bound, values};

/// Span status codes, as stored.
pub const STATUS_CODES: [&str; 3] = ["UNSET", "OK", "ERROR"];

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

    /// The project a selector names; NOT_FOUND when there is none.
    async fn project(
        &self,
        selector: Option<ProjectSelector>,
        with_stats: bool,
    ) -> Result<StoredProject, Error> {
        let reference = project_ref(selector)?;
        self.store.find_project(&reference, with_stats).await?.ok_or(Error::ProjectNotFound)
    }
}

fn user_id<T>(request: &Request<T>) -> i64 {
    request.extensions().get::<Principal>().map(|p| p.user_id).unwrap_or_default()
}

/// An id, or a name, exactly as sent: a name is never read as an id (issue 18.1).
fn project_ref(selector: Option<ProjectSelector>) -> Result<ProjectRef, Error> {
    let invalid = || Error::Invalid { field: "project", reason: "must be a positive id or a name" };
    match selector.and_then(|s| s.by) {
        Some(project_selector::By::Id(id)) if id > 0 => Ok(ProjectRef::Id(id)),
        Some(project_selector::By::Name(name)) if !name.is_empty() => Ok(ProjectRef::Name(name)),
        _ => Err(invalid()),
    }
}

fn attribute_match(filter: AttributeFilter) -> Result<AttributeMatch, Error> {
    if filter.key.is_empty() {
        return Err(Error::Invalid { field: "attributes", reason: "a key must not be empty" });
    }
    let value = match filter.value {
        Some(attribute_filter::Value::StringValue(s)) => AttributeValue::Text(s),
        Some(attribute_filter::Value::IntValue(n)) => AttributeValue::Int(n),
        Some(attribute_filter::Value::DoubleValue(f)) if f.is_finite() => AttributeValue::Real(f),
        Some(attribute_filter::Value::BoolValue(b)) => AttributeValue::Bool(b),
        _ => {
            return Err(Error::Invalid {
                field: "attributes",
                reason: "a value must be a string, number or boolean",
            });
        }
    };
    Ok(AttributeMatch { key: filter.key, value })
}

fn latency_bound(value: Option<i64>, field: &'static str) -> Result<Option<i64>, Error> {
    match value {
        Some(v) if v < 0 => Err(Error::Invalid { field, reason: "must not be negative" }),
        other => Ok(other),
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
        let filter = ProjectFilter {
            max_id: max_id(request.max_id)?,
            name_contains: Some(request.name_contains).filter(|n| !n.is_empty()),
            limit: page_limit(request.limit)?,
            with_stats: request.with_stats,
        };
        let page = self.store.list_projects(&filter).await?;
        Ok(Response::new(ListProjectsResponse {
            projects: page.projects.into_iter().map(messages::project).collect(),
            next_max_id: page.next_max_id.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = user_id(&request)))]
    async fn get_project(&self, request: Request<GetProjectRequest>) -> Result<Response<Project>, Status> {
        let request = request.into_inner();
        let project = self.project(request.project, request.with_stats).await?;
        Ok(Response::new(messages::project(project)))
    }

    #[tracing::instrument(skip_all, fields(user_id = user_id(&request)))]
    async fn query_spans(
        &self,
        request: Request<QuerySpansRequest>,
    ) -> Result<Response<QuerySpansResponse>, Status> {
        let request = request.into_inner();
        let parent = match request.parent {
            None | Some(query_spans_request::Parent::RootsOnly(false)) => ParentFilter::Any,
            Some(query_spans_request::Parent::RootsOnly(true)) => ParentFilter::Roots,
            Some(query_spans_request::Parent::ParentSpanId(id)) => ParentFilter::Of(id),
        };
        let mut filter = SpanFilter {
            project_id: 0,
            start_time_min: time_bound(request.start_time_unix_nano, "start_time_unix_nano")?,
            start_time_max: time_bound(request.end_time_unix_nano, "end_time_unix_nano")?,
            trace_ids: values(request.trace_ids, "trace_ids")?,
            span_ids: values(request.span_ids, "span_ids")?,
            parent,
            names: values(request.names, "names")?,
            span_kinds: known_values(request.span_kinds, &SPAN_KINDS, "span_kinds")?,
            status_codes: known_values(request.status_codes, &STATUS_CODES, "status_codes")?,
            attributes: request.attributes.into_iter().map(attribute_match).collect::<Result<_, _>>()?,
            max_id: max_id(request.max_id)?,
            limit: page_limit(request.limit)?,
        };
        let project = self.project(request.project, false).await?;
        filter.project_id = project.id;
        let page = self.store.query_spans(&filter).await?;
        Ok(Response::new(QuerySpansResponse {
            spans: page.spans.into_iter().map(|s| messages::span(s, &project.name)).collect(),
            next_max_id: page.next_max_id.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = user_id(&request)))]
    async fn query_traces(
        &self,
        request: Request<QueryTracesRequest>,
    ) -> Result<Response<QueryTracesResponse>, Status> {
        let request = request.into_inner();
        let sort = match WireSort::try_from(request.sort) {
            Ok(WireSort::StartTime) => TraceSort::StartTime,
            Ok(WireSort::Latency) => TraceSort::Latency,
            Err(_) => return Err(Error::Invalid { field: "sort", reason: "is not a known order" }.into()),
        };
        let mut filter = TraceFilter {
            project_id: 0,
            start_time_min: time_bound(request.start_time_unix_nano, "start_time_unix_nano")?,
            start_time_max: time_bound(request.end_time_unix_nano, "end_time_unix_nano")?,
            sort,
            ascending: request.ascending,
            after: (request.after_id != 0).then_some((request.after_sort_value, request.after_id)),
            has_error: request.has_error,
            min_latency: latency_bound(request.min_latency_nano, "min_latency_nano")?,
            max_latency: latency_bound(request.max_latency_nano, "max_latency_nano")?,
            limit: page_limit(request.limit)?,
            include_spans: request.include_spans,
        };
        let project = self.project(request.project, false).await?;
        filter.project_id = project.id;
        let page = self.store.query_traces(&filter).await?;
        let (more, (next_after_sort_value, next_after_id)) =
            (page.next_after.is_some(), page.next_after.unwrap_or_default());
        Ok(Response::new(QueryTracesResponse {
            traces: page.traces.into_iter().map(messages::trace).collect(),
            more,
            next_after_sort_value,
            next_after_id,
        }))
    }
}
