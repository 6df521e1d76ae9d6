//! The home page (`/`, and where sign-in lands): where to point exporters, whether
//! authentication is on, the projects with their span counts and latest span; and per project
//! (`/projects/{id}`) its recent spans with Phoenix's span filters, paged. Every role may read
//! it; with authentication off it needs no sign-in, as Phoenix's UI.

use ashgate_proto::collector as pb;
use askama::Template;
use axum::extract::{OriginalUri, Path, State};
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode, Uri};

use crate::caller::ClientAddr;
use crate::global_id;
use crate::pages::session::session;
use crate::pages::{Session, error_page, render};
use crate::routes::read::params::QueryParams;
use crate::routes::read::projects::ProjectIdentifier;
use crate::routes::read::spans::{SPAN_KINDS, STATUS_CODES, span_request};
use crate::state::AppState;
use crate::timestamp::iso_from_nanos;

/// Projects listed on the home page, newest first.
const PROJECTS_SHOWN: u32 = 100;
/// Spans per page of a project.
const SPANS_PER_PAGE: u32 = 50;

/// Where exporters send spans, from the configuration (never from what a request carries).
struct Endpoints {
    /// Base URL of this gateway (`PHOENIX_COLLECTOR_ENDPOINT` for `arize-phoenix-otel`).
    gateway: String,
    /// OTLP/HTTP traces URL.
    http_traces: String,
    /// OTLP/gRPC endpoint.
    grpc: String,
}

fn endpoints(state: &AppState) -> Endpoints {
    let config = &state.config;
    let gateway = match &config.root_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if config.listen.ip().is_unspecified() => {
            format!("http://HOST:{}{}", config.listen.port(), config.root_path)
        }
        None => format!("http://{}{}", config.listen, config.root_path),
    };
    let grpc = config.collector_grpc_urls.first().cloned().unwrap_or_default();
    Endpoints { http_traces: format!("{gateway}/v1/traces"), gateway, grpc }
}

/// One project row.
struct ProjectRow {
    id: String,
    name: String,
    span_count: i64,
    last_span: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    root: &'a str,
    session: Option<&'a Session>,
    auth_enabled: bool,
    endpoints: Endpoints,
    projects: Vec<ProjectRow>,
    more_projects: bool,
}

/// One span row.
struct SpanRow {
    name: String,
    kind: String,
    status: String,
    duration: String,
    start: String,
    trace_id: String,
    span_id: String,
}

/// The filter form's current values.
#[derive(Default)]
struct Filters {
    name: String,
    span_kind: String,
    status_code: String,
    roots: bool,
    trace_id: String,
    attribute: String,
    start_time: String,
    end_time: String,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage<'a> {
    root: &'a str,
    session: Option<&'a Session>,
    project_id: String,
    project_name: String,
    span_count: i64,
    spans: Vec<SpanRow>,
    filters: Filters,
    filtered: bool,
    error: Option<String>,
    next_page: Option<String>,
    kinds: [&'static str; 12],
    statuses: [&'static str; 3],
}

/// Who is looking: nobody in particular with authentication off, else the signed-in session
/// (or the response that sends them to sign in).
async fn viewer(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    client: ClientAddr,
) -> Result<Option<Session>, Response> {
    if !state.config.auth_enabled {
        return Ok(None);
    }
    session(state, &Method::GET, uri, headers, client, false).await.map(Some)
}

fn upstream<T>(message: T, session: Option<&Session>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(std::time::Duration::from_secs(30));
    if let Some(bearer) = session.and_then(|s| s.context.bearer.as_deref())
        && let Ok(value) = tonic::metadata::MetadataValue::try_from(format!("Bearer {bearer}"))
    {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// `2024-01-01 12:00:00 UTC` from Unix nanoseconds.
fn when(nanos: i64) -> String {
    let iso = iso_from_nanos(nanos);
    format!("{} {} UTC", iso.get(..10).unwrap_or_default(), iso.get(11..19).unwrap_or_default())
}

/// A span's duration, in the unit that reads best.
fn duration(nanos: i64) -> String {
    let ms = nanos as f64 / 1_000_000.0;
    if ms < 1.0 {
        format!("{:.0} µs", nanos as f64 / 1_000.0)
    } else if ms < 1_000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1_000.0)
    }
}

/// `GET /`.
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    client: ClientAddr,
) -> Response {
    let viewer = match viewer(&state, &uri, &headers, client).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let request = pb::ListProjectsRequest { limit: PROJECTS_SHOWN, with_stats: true, ..Default::default() };
    let reply = match state.collector.spans().list_projects(upstream(request, viewer.as_ref())).await {
        Ok(reply) => reply.into_inner(),
        Err(status) => return error_page(&state, &status.into()),
    };
    let projects = reply
        .projects
        .into_iter()
        .map(|p| ProjectRow {
            id: global_id::encode(global_id::PROJECT, p.id),
            name: p.name,
            span_count: p.span_count,
            last_span: if p.last_span_start_unix_nano > 0 {
                when(p.last_span_start_unix_nano)
            } else {
                "—".into()
            },
        })
        .collect();
    let page = HomePage {
        root: &state.config.root_path,
        session: viewer.as_ref(),
        auth_enabled: state.config.auth_enabled,
        endpoints: endpoints(&state),
        projects,
        more_projects: reply.next_max_id != 0,
    };
    render(StatusCode::OK, &page)
}

/// `GET /projects/{id}`: the project's spans, newest first, filtered by the form's fields
/// (the same names and rules as `GET /v1/projects/{id}/spans`).
#[tracing::instrument(skip_all, fields(project = %project_id))]
pub async fn show_project(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    client: ClientAddr,
) -> Response {
    let viewer = match viewer(&state, &uri, &headers, client).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let identifier = ProjectIdentifier::parse(&project_id);
    let lookup = pb::GetProjectRequest { project: identifier.selector(), with_stats: true };
    let project = match state.collector.spans().get_project(upstream(lookup, viewer.as_ref())).await {
        Ok(project) => project.into_inner(),
        Err(status) => return error_page(&state, &identifier.status(status)),
    };
    let mut params = QueryParams::from_form_query(uri.query().unwrap_or_default());
    let filters = Filters {
        name: params.one("name").unwrap_or_default().to_owned(),
        span_kind: params.one("span_kind").unwrap_or_default().to_owned(),
        status_code: params.one("status_code").unwrap_or_default().to_owned(),
        roots: params.one("parent_id") == Some("null"),
        trace_id: params.one("trace_id").unwrap_or_default().to_owned(),
        attribute: params.one("attribute").unwrap_or_default().to_owned(),
        start_time: params.one("start_time").unwrap_or_default().to_owned(),
        end_time: params.one("end_time").unwrap_or_default().to_owned(),
    };
    let filtered = params.pairs().iter().any(|(k, _)| k != "cursor" && k != "limit");
    let by_id = ProjectIdentifier::Id(project.id, global_id::encode(global_id::PROJECT, project.id));
    let (spans, next_page, error) = match span_request(&mut params, &by_id) {
        Err(error) => (Vec::new(), None, Some(error.summary())),
        Ok(None) => (Vec::new(), None, None),
        Ok(Some(mut request)) => {
            request.limit = SPANS_PER_PAGE;
            match state.collector.spans().query_spans(upstream(request, viewer.as_ref())).await {
                Err(status) => return error_page(&state, &status.into()),
                Ok(reply) => {
                    let reply = reply.into_inner();
                    let next = (reply.next_max_id != 0).then(|| {
                        let cursor = global_id::encode(global_id::SPAN, reply.next_max_id);
                        let mut query = url::form_urlencoded::Serializer::new(String::new());
                        for (k, v) in params.pairs().iter().filter(|(k, _)| k != "cursor") {
                            query.append_pair(k, v);
                        }
                        query.append_pair("cursor", &cursor);
                        format!("?{}", query.finish())
                    });
                    let rows = reply
                        .spans
                        .into_iter()
                        .map(|s| SpanRow {
                            duration: duration(s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano)),
                            start: when(s.start_time_unix_nano),
                            kind: s.span_kind,
                            status: s.status_code,
                            name: s.name,
                            trace_id: s.trace_id,
                            span_id: s.span_id,
                        })
                        .collect();
                    (rows, next, None)
                }
            }
        }
    };
    let page = ProjectPage {
        root: &state.config.root_path,
        session: viewer.as_ref(),
        project_id: global_id::encode(global_id::PROJECT, project.id),
        project_name: project.name,
        span_count: project.span_count,
        spans,
        filters,
        filtered,
        error,
        next_page,
        kinds: SPAN_KINDS,
        statuses: STATUS_CODES,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_read_well() {
        assert_eq!(duration(250_000), "250 µs");
        assert_eq!(duration(12_340_000), "12.3 ms");
        assert_eq!(duration(2_500_000_000), "2.50 s");
        assert_eq!(when(1_700_000_000_000_000_000), "2023-11-14 22:13:20 UTC");
    }
}
