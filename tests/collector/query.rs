//! `SpanQueryService`: projects, span filters, traces, paging and errors.

use ashgate_proto::collector::span_query_service_client::SpanQueryServiceClient;
use ashgate_proto::collector::{
    AttributeFilter, GetProjectRequest, ListProjectsRequest, ProjectSelector, QuerySpansRequest,
    QueryTracesRequest, TraceSort, attribute_filter, query_spans_request,
};
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::common::v1::{
    AnyValue, KeyValue, KeyValueList, any_value,
};
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::trace::v1::Status;
use tonic::Code;
use tonic::transport::Channel;

use crate::{collector, export_request, kv, span, spans, trace_client, trace_hex};

fn alpha() -> QuerySpansRequest {
    QuerySpansRequest { project: ProjectSelector::by_name("alpha"), ..Default::default() }
}

async fn names(client: &mut SpanQueryServiceClient<Channel>, request: QuerySpansRequest) -> Vec<String> {
    let spans = client.query_spans(request).await.unwrap().into_inner().spans;
    spans.into_iter().map(|s| s.name).collect()
}

#[tokio::test]
async fn projects_and_span_paging() {
    let collector = collector().await;
    let mut otlp = trace_client(&collector).await;
    otlp.export(export_request(Some("alpha"), spans(1, 150, 1_000_000))).await.unwrap();
    otlp.export(export_request(Some("beta"), spans(2, 5, 1_000_000))).await.unwrap();
    otlp.export(export_request(Some("alpha"), spans(3, 10, 9_000_000_000))).await.unwrap();
    let mut client = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();

    // Newest project first, as Phoenix lists them; the next page starts at `next_max_id`.
    let page = client
        .list_projects(ListProjectsRequest { limit: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.projects.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["beta"]);
    assert!(page.projects[0].created_at_unix_nano > 0);
    let page = client
        .list_projects(ListProjectsRequest { max_id: page.next_max_id, limit: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.projects[0].name, "alpha");
    assert_eq!(page.next_max_id, 0);
    let alpha_id = page.projects[0].id;
    let found = client
        .list_projects(ListProjectsRequest {
            name_contains: "ALP".into(),
            with_stats: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .projects;
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].span_count, found[0].last_span_start_unix_nano), (160, 9_000_000_000 + 9_000));
    let by_id = GetProjectRequest { project: ProjectSelector::by_id(alpha_id), with_stats: false };
    let project = client.get_project(by_id).await.unwrap().into_inner();
    assert_eq!((project.name.as_str(), project.span_count), ("alpha", 0));

    // 160 alpha spans in pages of 70, newest first, no repeats.
    let mut seen = Vec::new();
    let mut max_id = 0;
    loop {
        let request = QuerySpansRequest { max_id, limit: 70, ..alpha() };
        let page = client.query_spans(request).await.unwrap().into_inner();
        seen.extend(page.spans.iter().map(|s| s.id));
        if page.next_max_id == 0 {
            break;
        }
        max_id = page.next_max_id;
    }
    assert_eq!(seen.len(), 160);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
    assert_eq!(client.query_spans(alpha()).await.unwrap().into_inner().spans.len(), 100);

    // By id, by trace id (exactly as stored), by time range.
    let request =
        QuerySpansRequest { project: ProjectSelector::by_id(alpha_id), limit: 1000, ..Default::default() };
    assert_eq!(client.query_spans(request).await.unwrap().into_inner().spans.len(), 160);
    let request = QuerySpansRequest { trace_ids: vec![trace_hex(3)], ..alpha() };
    let spans = client.query_spans(request).await.unwrap().into_inner().spans;
    assert_eq!(spans.len(), 10);
    assert!(spans.iter().all(|s| s.trace_id == trace_hex(3) && s.project == "alpha"));
    let request = QuerySpansRequest { trace_ids: vec![trace_hex(3), trace_hex(1)], limit: 1000, ..alpha() };
    assert_eq!(names(&mut client, request).await.len(), 160);
    let request = QuerySpansRequest { trace_ids: vec!["not-a-trace".into()], ..alpha() };
    assert!(names(&mut client, request).await.is_empty());
    let request = QuerySpansRequest {
        start_time_unix_nano: 1_000_000 + 10_000,
        end_time_unix_nano: 1_000_000 + 20_000,
        ..alpha()
    };
    assert_eq!(client.query_spans(request).await.unwrap().into_inner().spans.len(), 10);
}

fn typed(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn attribute(key: &str, value: attribute_filter::Value) -> AttributeFilter {
    AttributeFilter { key: key.into(), value: Some(value) }
}

#[tokio::test]
async fn span_filters() {
    let collector = collector().await;
    // Trace 7: root "agent" (CHAIN) → child "llm" (LLM, ERROR, tokens) → grandchild "tool" (TOOL).
    let mut root = span(7, 0, 1_000);
    root.name = "agent".into();
    // A prompt longer than the attribute index holds: found by reading spans' JSON.
    let prompt = "Summarise this. ".repeat(20);
    root.attributes =
        vec![kv("openinference.span.kind", "CHAIN"), kv("user.id", "12345"), kv("input.value", &prompt)];
    let mut llm = span(7, 1, 2_000);
    llm.name = "llm".into();
    llm.parent_span_id = root.span_id.clone();
    llm.status = Some(Status { code: 2, message: "boom".into() });
    llm.attributes = vec![
        kv("openinference.span.kind", "llm"),
        typed("llm.token_count.prompt", any_value::Value::IntValue(12)),
        typed("llm.token_count.completion", any_value::Value::IntValue(30)),
        typed("temperature", any_value::Value::DoubleValue(0.5)),
        typed("retries", any_value::Value::IntValue(2)),
        typed("cached", any_value::Value::BoolValue(true)),
        kv("session.id", "sess:abc:1"),
        typed("metadata", any_value::Value::KvlistValue(KeyValueList { values: vec![kv("tier", "gold")] })),
    ];
    let mut tool = span(7, 2, 3_000);
    tool.name = "tool".into();
    tool.parent_span_id = llm.span_id.clone();
    tool.end_time_unix_nano = 5_000_000;
    tool.attributes =
        vec![kv("openinference.span.kind", "TOOL"), typed("retries", any_value::Value::DoubleValue(2.0))];
    let llm_span_id = llm.span_id.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let root_span_id = root.span_id.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut otlp = trace_client(&collector).await;
    otlp.export(export_request(Some("alpha"), vec![root, llm, tool])).await.unwrap();
    // A second trace with one error-free root, to tell the traces apart.
    otlp.export(export_request(Some("alpha"), spans(8, 1, 10_000))).await.unwrap();
    let mut client = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();

    let roots = QuerySpansRequest { parent: Some(query_spans_request::Parent::RootsOnly(true)), ..alpha() };
    assert_eq!(names(&mut client, roots).await, ["span-0", "agent"]);
    let children = QuerySpansRequest {
        parent: Some(query_spans_request::Parent::ParentSpanId(root_span_id)),
        ..alpha()
    };
    assert_eq!(names(&mut client, children).await, ["llm"]);
    let by_span = QuerySpansRequest { span_ids: vec![llm_span_id], ..alpha() };
    assert_eq!(names(&mut client, by_span).await, ["llm"]);
    let by_name = QuerySpansRequest { names: vec!["tool".into(), "agent".into()], ..alpha() };
    assert_eq!(names(&mut client, by_name).await, ["tool", "agent"]);
    let by_kind = QuerySpansRequest { span_kinds: vec!["LLM".into(), "TOOL".into()], ..alpha() };
    assert_eq!(names(&mut client, by_kind).await, ["tool", "llm"]);
    let unknown = QuerySpansRequest { span_kinds: vec!["UNKNOWN".into()], ..alpha() };
    assert_eq!(names(&mut client, unknown).await, ["span-0"]);
    let errors = QuerySpansRequest { status_codes: vec!["ERROR".into()], ..alpha() };
    assert_eq!(names(&mut client, errors).await, ["llm"]);
    let spans = client.query_spans(QuerySpansRequest { names: vec!["llm".into()], ..alpha() }).await.unwrap();
    assert_eq!(spans.into_inner().spans[0].span_kind, "LLM");

    use attribute_filter::Value as V;
    let cases: [(Vec<AttributeFilter>, &[&str]); 13] = [
        (vec![attribute("user.id", V::StringValue("12345".into()))], &["agent"]),
        (vec![attribute("user.id", V::IntValue(12345))], &[]),
        (vec![attribute("retries", V::IntValue(2))], &["tool", "llm"]),
        (vec![attribute("temperature", V::DoubleValue(0.5))], &["llm"]),
        (vec![attribute("cached", V::BoolValue(true))], &["llm"]),
        (vec![attribute("cached", V::BoolValue(false))], &[]),
        (vec![attribute("session.id", V::StringValue("sess:abc:1".into()))], &["llm"]),
        (vec![attribute("retries", V::IntValue(2)), attribute("cached", V::BoolValue(true))], &["llm"]),
        (vec![attribute("llm.model_name", V::StringValue("gpt-test".into()))], &["span-0"]),
        (vec![attribute("metadata.tier", V::StringValue("gold".into()))], &["llm"]),
        (vec![attribute("tier", V::StringValue("gold".into()))], &[]),
        (vec![attribute("input.value", V::StringValue(prompt.clone()))], &["agent"]),
        (
            vec![
                attribute("input.value", V::StringValue(prompt.clone())),
                attribute("user.id", V::StringValue("12345".into())),
            ],
            &["agent"],
        ),
    ];
    for (attributes, expected) in cases {
        let request = QuerySpansRequest { attributes: attributes.clone(), ..alpha() };
        assert_eq!(names(&mut client, request).await, expected, "{attributes:?}");
    }

    // Traces: times widen over the spans, errors and LLM tokens add up.
    let request = QueryTracesRequest { project: ProjectSelector::by_name("alpha"), ..Default::default() };
    let traces = client.query_traces(request.clone()).await.unwrap().into_inner();
    assert_eq!(traces.traces.len(), 2);
    let seven = traces.traces.iter().find(|t| t.trace_id == trace_hex(7)).unwrap();
    assert_eq!((seven.start_time_unix_nano, seven.end_time_unix_nano), (1_000, 5_000_000));
    assert_eq!((seven.token_count_prompt, seven.token_count_completion), (12, 30));
    assert_eq!(traces.traces[0].trace_id, trace_hex(8), "newest start first");
    let errored = QueryTracesRequest { has_error: Some(true), include_spans: true, ..request.clone() };
    let errored = client.query_traces(errored).await.unwrap().into_inner().traces;
    assert_eq!(errored.len(), 1);
    assert_eq!(
        errored[0].spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["agent", "llm", "tool"]
    );
    let slow = QueryTracesRequest { min_latency_nano: Some(1_000_000), ..request.clone() };
    assert_eq!(client.query_traces(slow).await.unwrap().into_inner().traces[0].trace_id, trace_hex(7));
    let by_latency = QueryTracesRequest { sort: TraceSort::Latency.into(), limit: 1, ..request.clone() };
    let page = client.query_traces(by_latency.clone()).await.unwrap().into_inner();
    assert_eq!((page.traces[0].trace_id.as_str(), page.more), (trace_hex(7).as_str(), true));
    let next = QueryTracesRequest {
        after_sort_value: page.next_after_sort_value,
        after_id: page.next_after_id,
        ..by_latency
    };
    let page = client.query_traces(next).await.unwrap().into_inner();
    assert_eq!((page.traces[0].trace_id.as_str(), page.more), (trace_hex(8).as_str(), false));

    // A retried export changes nothing: spans are not duplicated, traces are not counted twice.
    let mut again = span(7, 2, 3_000);
    again.name = "tool".into();
    otlp.export(export_request(Some("alpha"), vec![again])).await.unwrap();
    let traces = client.query_traces(request).await.unwrap().into_inner().traces;
    let seven = traces.iter().find(|t| t.trace_id == trace_hex(7)).unwrap();
    assert_eq!(seven.token_count_prompt, 12);
    let project = client
        .get_project(GetProjectRequest { project: ProjectSelector::by_name("alpha"), with_stats: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(project.span_count, 4);
}

#[tokio::test]
async fn query_errors() {
    let collector = collector().await;
    trace_client(&collector).await.export(export_request(Some("alpha"), spans(1, 1, 1_000))).await.unwrap();
    let mut client = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();
    let cases = [
        (
            QuerySpansRequest { project: ProjectSelector::by_name("nope"), ..Default::default() },
            Code::NotFound,
            "Project not found",
        ),
        (
            QuerySpansRequest { project: ProjectSelector::by_id(999), ..Default::default() },
            Code::NotFound,
            "Project not found",
        ),
        (
            QuerySpansRequest { project: ProjectSelector::by_name("1"), ..Default::default() },
            Code::NotFound,
            "Project not found",
        ),
        (
            QuerySpansRequest { max_id: -5, ..alpha() },
            Code::InvalidArgument,
            "Invalid max_id: must not be negative",
        ),
        (
            QuerySpansRequest { limit: 1001, ..alpha() },
            Code::InvalidArgument,
            "Invalid limit: must be between 1 and 1000",
        ),
        (
            QuerySpansRequest { span_kinds: vec!["llm".into()], ..alpha() },
            Code::InvalidArgument,
            "Invalid span_kinds: holds a value that is not one of the known names",
        ),
        (
            QuerySpansRequest { status_codes: vec!["FAILED".into()], ..alpha() },
            Code::InvalidArgument,
            "Invalid status_codes: holds a value that is not one of the known names",
        ),
        (
            QuerySpansRequest {
                attributes: vec![AttributeFilter { key: "k".into(), value: None }],
                ..alpha()
            },
            Code::InvalidArgument,
            "Invalid attributes: a value must be a string, number or boolean",
        ),
        (
            QuerySpansRequest::default(),
            Code::InvalidArgument,
            "Invalid project: must be a positive id or a name",
        ),
        (
            QuerySpansRequest { project: ProjectSelector::by_id(-1), ..Default::default() },
            Code::InvalidArgument,
            "Invalid project: must be a positive id or a name",
        ),
    ];
    for (request, code, message) in cases {
        let status = client.query_spans(request.clone()).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (code, message), "{request:?}");
    }
    let status =
        client.list_projects(ListProjectsRequest { max_id: -1, ..Default::default() }).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "Invalid max_id: must not be negative")
    );
    let request = QueryTracesRequest {
        project: ProjectSelector::by_name("alpha"),
        min_latency_nano: Some(-1),
        ..Default::default()
    };
    let status = client.query_traces(request).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "Invalid min_latency_nano: must not be negative")
    );
}

/// One export may name any number of projects (one resource each): all are created, each span
/// lands in its own project, and a later export mixing known and new names resolves both (the
/// id cache and the set-based creation agree with the database).
#[tokio::test]
async fn an_export_naming_a_thousand_projects_files_every_span_under_its_own() {
    let collector = collector().await;
    let mut otlp = trace_client(&collector).await;
    let request = |range: std::ops::Range<u64>| {
        let mut request = export_request(None, vec![]);
        request.resource_spans = range
            .flat_map(|i| {
                export_request(Some(&format!("p-{i:04}")), vec![span(i, 0, 1_000 + i)]).resource_spans
            })
            .collect();
        request
    };
    otlp.export(request(0..1_000)).await.unwrap();
    otlp.export(request(500..1_300)).await.unwrap();

    let mut client = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();
    let mut projects = Vec::new();
    let mut max_id = 0;
    loop {
        let page = client
            .list_projects(ListProjectsRequest { max_id, limit: 500, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        projects.extend(page.projects.into_iter().map(|p| (p.name, p.id)));
        if page.next_max_id == 0 {
            break;
        }
        max_id = page.next_max_id;
    }
    assert_eq!(projects.len(), 1_300);
    for i in [0, 499, 500, 999, 1_000, 1_299] {
        let name = format!("p-{i:04}");
        let request = QuerySpansRequest { project: ProjectSelector::by_name(&name), ..Default::default() };
        let spans = client.query_spans(request).await.unwrap().into_inner().spans;
        // Spans of 500..1000 were sent twice: stored once.
        assert_eq!(spans.len(), 1, "{name}");
        assert_eq!(spans[0].trace_id, trace_hex(i), "{name}");
    }
}

/// Spans stored before the attribute index existed (or by a collector that predates it, during
/// a rolling upgrade) have no index rows: attribute filters still find them, merged newest first
/// with indexed spans, across pages, beside the other filters.
#[tokio::test]
async fn attribute_filters_find_spans_stored_before_the_index() {
    use ashgate_testkit::collector::deps::sqlx::{self, AnyPool, Executor as _};
    use attribute_filter::Value as V;

    let collector = collector().await;
    let mut otlp = trace_client(&collector).await;
    let tagged = |trace: u64| {
        let mut span = span(trace, 0, 1_000 * trace);
        span.attributes = vec![kv("user.id", "u-1"), kv("openinference.span.kind", "LLM")];
        span
    };
    otlp.export(export_request(Some("alpha"), vec![tagged(1), tagged(2), tagged(3)])).await.unwrap();
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(collector.database.url.expose()).await.unwrap();
    let indexed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM span_attributes").fetch_one(&pool).await.unwrap();
    assert_eq!(indexed, 6, "two values for each of three spans");
    pool.execute("DELETE FROM span_attributes").await.unwrap();
    pool.execute("UPDATE spans SET attributes_indexed = 0").await.unwrap();
    otlp.export(export_request(Some("alpha"), vec![tagged(4), tagged(5), span(6, 0, 6_000)])).await.unwrap();

    let mut client = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();
    let request = QuerySpansRequest {
        attributes: vec![attribute("user.id", V::StringValue("u-1".into()))],
        limit: 2,
        ..alpha()
    };
    let mut traces = Vec::new();
    let mut max_id = 0;
    loop {
        let page =
            client.query_spans(QuerySpansRequest { max_id, ..request.clone() }).await.unwrap().into_inner();
        traces.push(page.spans.iter().map(|s| s.trace_id.clone()).collect::<Vec<_>>());
        if page.next_max_id == 0 {
            break;
        }
        max_id = page.next_max_id;
    }
    let expected = [vec![trace_hex(5), trace_hex(4)], vec![trace_hex(3), trace_hex(2)], vec![trace_hex(1)]];
    assert_eq!(traces, expected);
    let llm = QuerySpansRequest { span_kinds: vec!["LLM".into()], limit: 10, ..request.clone() };
    assert_eq!(names(&mut client, llm).await.len(), 5);
    let other_value = QuerySpansRequest {
        attributes: vec![attribute("user.id", V::StringValue("u-2".into()))],
        ..request.clone()
    };
    assert!(names(&mut client, other_value).await.is_empty());
    let one_trace = QuerySpansRequest { trace_ids: vec![trace_hex(2)], ..request };
    assert_eq!(names(&mut client, one_trace).await.len(), 1);
}
