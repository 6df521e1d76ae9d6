//! `SpanQueryService`: projects, filters, paging and its errors.

use ashgate_proto::collector::span_query_service_client::SpanQueryServiceClient;
use ashgate_proto::collector::{ListProjectsRequest, QuerySpansRequest};
use tonic::Code;

use crate::{collector, export_request, spans, trace_client, trace_hex};

#[tokio::test]
async fn projects_and_span_paging() {
    let collector = collector().await;
    let mut otlp = trace_client(&collector).await;
    otlp.export(export_request(Some("alpha"), spans(1, 150, 1_000_000))).await.unwrap();
    otlp.export(export_request(Some("beta"), spans(2, 5, 1_000_000))).await.unwrap();
    otlp.export(export_request(Some("alpha"), spans(3, 10, 9_000_000_000))).await.unwrap();
    let mut client = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();

    let page = client
        .list_projects(ListProjectsRequest { limit: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.projects.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["alpha"]);
    assert!(page.projects[0].created_at_unix_nano > 0);
    let page = client
        .list_projects(ListProjectsRequest { cursor: page.next_cursor, limit: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.projects[0].name, "beta");
    assert_eq!(page.next_cursor, "");
    let beta_id = page.projects[0].id;

    // 160 alpha spans in pages of 70, newest first, no repeats.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let request = QuerySpansRequest { project: "alpha".into(), cursor, limit: 70, ..Default::default() };
        let page = client.query_spans(request).await.unwrap().into_inner();
        seen.extend(page.spans.iter().map(|s| s.id));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(seen.len(), 160);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));

    // Default limit is 100.
    let page = client
        .query_spans(QuerySpansRequest { project: "alpha".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page.into_inner().spans.len(), 100);

    // By numeric id, by trace id (any case), by time range.
    let request = QuerySpansRequest { project: beta_id.to_string(), ..Default::default() };
    assert_eq!(client.query_spans(request).await.unwrap().into_inner().spans.len(), 5);
    let request = QuerySpansRequest {
        project: "alpha".into(),
        trace_id: trace_hex(3).to_uppercase(),
        ..Default::default()
    };
    let spans = client.query_spans(request).await.unwrap().into_inner().spans;
    assert_eq!(spans.len(), 10);
    assert!(spans.iter().all(|s| s.trace_id == trace_hex(3) && s.project == "alpha"));
    let request = QuerySpansRequest {
        project: "alpha".into(),
        start_time_unix_nano: 1_000_000 + 10_000,
        end_time_unix_nano: 1_000_000 + 20_000,
        ..Default::default()
    };
    assert_eq!(client.query_spans(request).await.unwrap().into_inner().spans.len(), 10);
}

#[tokio::test]
async fn query_errors() {
    let collector = collector().await;
    trace_client(&collector).await.export(export_request(Some("alpha"), spans(1, 1, 1_000))).await.unwrap();
    let mut client = SpanQueryServiceClient::connect(collector.grpc_endpoint()).await.unwrap();
    let cases = [
        (
            QuerySpansRequest { project: "nope".into(), ..Default::default() },
            Code::NotFound,
            "Project not found",
        ),
        (
            QuerySpansRequest { project: "999".into(), ..Default::default() },
            Code::NotFound,
            "Project not found",
        ),
        (
            QuerySpansRequest { project: "alpha".into(), cursor: "garbage".into(), ..Default::default() },
            Code::InvalidArgument,
            "Invalid cursor: not a cursor returned by this query",
        ),
        (
            QuerySpansRequest { project: "alpha".into(), limit: 1001, ..Default::default() },
            Code::InvalidArgument,
            "Invalid limit: must be between 1 and 1000",
        ),
        (
            QuerySpansRequest { project: "alpha".into(), trace_id: "xyz".into(), ..Default::default() },
            Code::InvalidArgument,
            "Invalid trace_id: must be 32 hexadecimal characters",
        ),
        (QuerySpansRequest::default(), Code::InvalidArgument, "Invalid project: must not be empty"),
    ];
    for (request, code, message) in cases {
        let status = client.query_spans(request.clone()).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (code, message), "{request:?}");
    }
    let status = client
        .list_projects(ListProjectsRequest { cursor: "c3BhbnM6MQ".into(), limit: 0 })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "Invalid cursor: not a cursor returned by this query")
    );
}
