//! Phoenix's own clients, unchanged, against ashgate (issue 14): the Python
//! `arize-phoenix-client` and the TypeScript `@arizeai/phoenix-client` read back spans that a
//! real OpenTelemetry exporter sent, through every filter of the span and trace reads.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ashgate_testkit::collector::deps::opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use ashgate_testkit::collector::deps::opentelemetry::{InstrumentationScope, KeyValue};
use ashgate_testkit::collector::deps::opentelemetry_http::hyper::HyperClient;
use ashgate_testkit::collector::deps::opentelemetry_otlp::{
    Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _,
};
use ashgate_testkit::collector::deps::opentelemetry_sdk::Resource;
use ashgate_testkit::collector::deps::opentelemetry_sdk::trace::{
    SpanData, SpanEvents, SpanExporter as _, SpanLinks,
};
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::phoenix_clients::{python_client, typescript_client};
use serde_json::{Value, json};

/// 2024-01-01T00:00:00Z.
const T0: u64 = 1_704_067_200;
const TRACE_A: u128 = 0xa1a1_0000_0000_0000_0000_0000_0000_00a1;
const TRACE_B: u128 = 0xb2b2_0000_0000_0000_0000_0000_0000_00b2;

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0) + Duration::from_millis(ms)
}

struct Spec {
    trace: u128,
    id: u64,
    parent: u64,
    name: &'static str,
    start_ms: u64,
    end_ms: u64,
    status: Status,
    attributes: Vec<KeyValue>,
}

fn span(spec: Spec) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(spec.trace),
            SpanId::from(spec.id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: if spec.parent == 0 { SpanId::INVALID } else { SpanId::from(spec.parent) },
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: spec.name.into(),
        start_time: at(spec.start_ms),
        end_time: at(spec.end_ms),
        attributes: spec.attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: spec.status,
        instrumentation_scope: InstrumentationScope::builder("ashgate-tests").build(),
    }
}

/// Trace A: agent (CHAIN, OK) → llm (LLM, ERROR, tokens) → tool (TOOL). Trace B: agent-b.
fn chat_spans() -> Vec<SpanData> {
    let kind = |k: &'static str| KeyValue::new("openinference.span.kind", k);
    vec![
        span(Spec {
            trace: TRACE_A,
            id: 0x1a,
            parent: 0,
            name: "agent",
            start_ms: 0,
            end_ms: 3_000,
            status: Status::Ok,
            attributes: vec![kind("CHAIN"), KeyValue::new("user.id", "12345")],
        }),
        span(Spec {
            trace: TRACE_A,
            id: 0x2b,
            parent: 0x1a,
            name: "llm",
            start_ms: 1_000,
            end_ms: 2_000,
            status: Status::error("rate limited"),
            attributes: vec![
                kind("LLM"),
                KeyValue::new("llm.model_name", "gpt-4o"),
                KeyValue::new("llm.token_count.prompt", 12_i64),
                KeyValue::new("llm.token_count.completion", 30_i64),
                KeyValue::new("temperature", 0.5_f64),
                KeyValue::new("cached", true),
                KeyValue::new("retries", 2_i64),
            ],
        }),
        span(Spec {
            trace: TRACE_A,
            id: 0x3c,
            parent: 0x2b,
            name: "tool",
            start_ms: 1_500,
            end_ms: 1_600,
            status: Status::Unset,
            attributes: vec![kind("TOOL"), KeyValue::new("retries", 3_i64)],
        }),
        span(Spec {
            trace: TRACE_B,
            id: 0x4d,
            parent: 0,
            name: "agent-b",
            start_ms: 10_000,
            end_ms: 10_100,
            status: Status::Ok,
            attributes: vec![kind("CHAIN"), KeyValue::new("user.id", "777")],
        }),
    ]
}

/// Exports with the real OTLP/HTTP exporter to the gateway's `/v1/traces`, with the key.
async fn export(fixture: &GatewayFixture, key: &str, project: &str, spans: Vec<SpanData>) {
    let mut exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(fixture.url("/v1/traces"))
        .with_protocol(Protocol::HttpBinary)
        .with_headers(HashMap::from([("authorization".to_owned(), format!("Bearer {key}"))]))
        .with_http_client(HyperClient::with_default_connector(Duration::from_secs(10), None))
        .build()
        .unwrap();
    let resource = Resource::builder_empty()
        .with_attributes([KeyValue::new("openinference.project.name", project.to_owned())])
        .build();
    exporter.set_resource(&resource);
    exporter.export(spans).await.unwrap();
}

async fn seeded() -> (GatewayFixture, String, String) {
    let fixture = GatewayFixture::start().await;
    let key = fixture.identity.system_key("clients").await;
    export(&fixture, &key, "chat", chat_spans()).await;
    let other = span(Spec {
        trace: 0xc3,
        id: 0x5e,
        parent: 0,
        name: "elsewhere",
        start_ms: 0,
        end_ms: 1,
        status: Status::Unset,
        attributes: vec![],
    });
    export(&fixture, &key, "other", vec![other]).await;
    let projects: Value = GatewayFixture::client()
        .get(fixture.url("/v1/projects"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat_id = projects["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "chat")
        .and_then(|p| p["id"].as_str())
        .unwrap()
        .to_owned();
    (fixture, key, chat_id)
}

/// The names in a result list (of spans or of traces' spans), as a set.
fn names(result: &Value) -> BTreeSet<String> {
    result["ok"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {result}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn hex(id: u64) -> String {
    format!("{id:016x}")
}

#[tokio::test]
async fn python_client_reads_every_filter() {
    let (fixture, key, chat_id) = seeded().await;
    let iso = |ms: u64| {
        let secs = T0 + ms / 1000;
        format!("2024-01-01T00:00:{:02}.{:03}+00:00", secs - T0, ms % 1000)
    };
    let spans = |name: &str, args: Value| json!({"name": name, "call": "spans.get_spans", "args": args});
    let traces = |name: &str, args: Value| json!({"name": name, "call": "traces.get_traces", "args": args});
    let mut plan = vec![
        json!({"name": "list", "call": "projects.list", "args": {}}),
        json!({"name": "get_by_name", "call": "projects.get", "args": {"project_name": "chat"}}),
        json!({"name": "get_by_id", "call": "projects.get", "args": {"project_id": chat_id}}),
        json!({"name": "get_missing", "call": "projects.get", "args": {"project_name": "nope"}}),
    ];
    let p = |extra: Value| {
        let mut args = json!({"project_identifier": "chat"});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        args
    };
    plan.extend([
        spans("all", p(json!({}))),
        spans("by_id", json!({"project_identifier": chat_id})),
        spans("trace", p(json!({"trace_ids": [format!("{TRACE_A:032x}")]}))),
        spans("span", p(json!({"span_ids": [hex(0x2b)]}))),
        spans("roots", p(json!({"parent_id": "null"}))),
        spans("children", p(json!({"parent_id": hex(0x1a)}))),
        spans("name", p(json!({"name": ["tool", "llm"]}))),
        spans("kind", p(json!({"span_kind": "LLM"}))),
        spans("kinds", p(json!({"span_kind": ["tool", "chain"]}))),
        spans("status", p(json!({"status_code": "ERROR"}))),
        spans("attr_string", p(json!({"attributes": {"user.id": "12345"}}))),
        spans("attr_int", p(json!({"attributes": {"retries": 2}}))),
        spans("attr_float", p(json!({"attributes": {"temperature": 0.5}}))),
        spans("attr_bool", p(json!({"attributes": {"cached": true}}))),
        spans("attr_and", p(json!({"attributes": {"llm.model_name": "gpt-4o", "retries": 3}}))),
        spans("start", p(json!({"start_time": iso(5_000)}))),
        spans("end", p(json!({"end_time": iso(1_200)}))),
        spans("window", p(json!({"start_time": iso(1_000), "end_time": iso(1_600)}))),
        spans("limit", p(json!({"limit": 2}))),
        spans("bad_kind", p(json!({"span_kind": "wizard"}))),
        spans("missing", json!({"project_identifier": "nope"})),
        traces("traces", json!({"project_identifier": "chat", "include_spans": true})),
        traces("errored", json!({"project_identifier": "chat", "error": true})),
        traces("clean", json!({"project_identifier": "chat", "error": false})),
        traces("slow", json!({"project_identifier": "chat", "min_latency_ms": 1000})),
        traces("fast", json!({"project_identifier": "chat", "max_latency_ms": 500})),
        traces("by_latency", json!({"project_identifier": "chat", "sort": "latency_ms", "order": "asc"})),
        traces("paged", json!({"project_identifier": "chat", "limit": 1})),
    ]);
    let results = python_client(&fixture.url(""), Some(&key), &json!(plan)).await;
    let r = |name: &str| results[name].clone();

    let listed: BTreeSet<String> =
        r("list")["ok"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
    assert_eq!(listed, set(&["chat", "other"]));
    assert_eq!(r("get_by_name")["ok"], json!({"name": "chat", "description": null, "id": chat_id}));
    assert_eq!(r("get_by_id")["ok"]["name"], "chat");
    assert!(r("get_missing")["error"].as_str().unwrap().contains("404"), "{}", r("get_missing"));

    assert_eq!(names(&r("all")), set(&["agent", "llm", "tool", "agent-b"]));
    assert_eq!(names(&r("by_id")), set(&["agent", "llm", "tool", "agent-b"]));
    assert_eq!(names(&r("trace")), set(&["agent", "llm", "tool"]));
    assert_eq!(names(&r("span")), set(&["llm"]));
    assert_eq!(names(&r("roots")), set(&["agent", "agent-b"]));
    assert_eq!(names(&r("children")), set(&["llm"]));
    assert_eq!(names(&r("name")), set(&["tool", "llm"]));
    assert_eq!(names(&r("kind")), set(&["llm"]));
    assert_eq!(r("kind")["ok"][0]["span_kind"], "LLM");
    assert_eq!(names(&r("kinds")), set(&["tool", "agent", "agent-b"]));
    assert_eq!(names(&r("status")), set(&["llm"]));
    assert_eq!(r("status")["ok"][0]["status_code"], "ERROR");
    assert_eq!(r("status")["ok"][0]["parent_id"], hex(0x1a));
    assert_eq!(names(&r("attr_string")), set(&["agent"]));
    assert_eq!(names(&r("attr_int")), set(&["llm"]));
    assert_eq!(names(&r("attr_float")), set(&["llm"]));
    assert_eq!(names(&r("attr_bool")), set(&["llm"]));
    assert_eq!(names(&r("attr_and")), set(&[]));
    assert_eq!(names(&r("start")), set(&["agent-b"]));
    assert_eq!(names(&r("end")), set(&["agent", "llm"]));
    assert_eq!(names(&r("window")), set(&["llm", "tool"]));
    assert_eq!(r("limit")["ok"].as_array().unwrap().len(), 2);
    let bad = r("bad_kind")["error"].as_str().unwrap().to_owned();
    assert!(bad.contains("422"), "{bad}");
    assert!(r("missing")["error"].as_str().unwrap().contains("404"));

    let trace_ids = |name: &str| -> Vec<String> {
        r(name)["ok"].as_array().unwrap().iter().map(|t| t["trace_id"].as_str().unwrap().to_owned()).collect()
    };
    let (a, b) = (format!("{TRACE_A:032x}"), format!("{TRACE_B:032x}"));
    assert_eq!(trace_ids("traces"), [b.as_str(), a.as_str()], "newest start first");
    assert_eq!(r("traces")["ok"][1]["spans"], json!(["agent", "llm", "tool"]));
    assert_eq!(trace_ids("errored"), [a.as_str()]);
    assert_eq!(trace_ids("clean"), [b.as_str()]);
    assert_eq!(trace_ids("slow"), [a.as_str()]);
    assert_eq!(trace_ids("fast"), [b.as_str()]);
    assert_eq!(trace_ids("by_latency"), [b.as_str(), a.as_str()]);
    assert_eq!(trace_ids("paged"), [b.as_str()]);
}

#[tokio::test]
async fn typescript_client_reads_every_filter() {
    let (fixture, key, chat_id) = seeded().await;
    let chat = json!({"projectName": "chat"});
    let spans = |name: &str, extra: Value| {
        let mut args = json!({"project": chat});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        json!({"name": name, "call": "getSpans", "args": args})
    };
    let plan = json!([
        {"name": "version", "call": "version"},
        spans("all", json!({})),
        spans("paged", json!({"limit": 1})),
        spans("trace", json!({"traceIds": [format!("{TRACE_A:032x}")]})),
        spans("roots", json!({"parentId": null})),
        spans("children", json!({"parentId": hex(0x2b)})),
        spans("name", json!({"name": "agent-b"})),
        spans("kind", json!({"spanKind": ["TOOL", "LLM"]})),
        spans("status", json!({"statusCode": "OK"})),
        spans("attr_string", json!({"attributes": {"user.id": "777"}})),
        spans("attr_number", json!({"attributes": {"retries": 3}})),
        spans("attr_bool", json!({"attributes": {"cached": true, "temperature": 0.5}})),
        spans("window", json!({"startTime": "2024-01-01T00:00:01.000Z", "endTime": "2024-01-01T00:00:01.500Z"})),
        spans("by_id", json!({"project": {"projectId": chat_id}})),
        {"name": "get_project", "call": "GET", "args": {"path": "/v1/projects/{project_identifier}",
            "params": {"path": {"project_identifier": "chat"}}}},
        {"name": "span_id", "call": "GET", "args": {"path": "/v1/projects/{project_identifier}/spans",
            "params": {"path": {"project_identifier": "chat"}, "query": {"span_id": [hex(0x3c)]}}}},
        {"name": "bad_attribute", "call": "GET", "args": {"path": "/v1/projects/{project_identifier}/spans",
            "params": {"path": {"project_identifier": "chat"}, "query": {"attribute": ["nocolon"]}}}},
        {"name": "traces", "call": "getTraces", "args": {"project": chat, "includeSpans": true, "limit": 1}},
        {"name": "by_latency", "call": "getTraces", "args": {"project": chat, "sort": "latency_ms", "order": "desc"}},
    ]);
    let results = typescript_client(&fixture.url(""), Some(&key), &plan).await;
    let r = |name: &str| results[name].clone();

    assert_eq!(r("version")["ok"], json!([20, 11, 0]), "{}", r("version"));
    assert_eq!(names(&r("all")), set(&["agent", "llm", "tool", "agent-b"]));
    let paged = r("paged")["ok"].as_array().unwrap().iter().map(|s| s["name"].clone()).collect::<Vec<_>>();
    assert_eq!(paged.len(), 4, "one span a page, every page followed: {paged:?}");
    assert_eq!(names(&r("trace")), set(&["agent", "llm", "tool"]));
    assert_eq!(names(&r("roots")), set(&["agent", "agent-b"]));
    assert_eq!(names(&r("children")), set(&["tool"]));
    assert_eq!(names(&r("name")), set(&["agent-b"]));
    assert_eq!(names(&r("kind")), set(&["tool", "llm"]));
    assert_eq!(names(&r("status")), set(&["agent", "agent-b"]));
    assert_eq!(names(&r("attr_string")), set(&["agent-b"]));
    assert_eq!(names(&r("attr_number")), set(&["tool"]));
    assert_eq!(names(&r("attr_bool")), set(&["llm"]));
    assert_eq!(names(&r("window")), set(&["llm"]));
    assert_eq!(names(&r("by_id")), set(&["agent", "llm", "tool", "agent-b"]));
    assert_eq!(r("get_project")["ok"]["data"]["data"]["id"], chat_id);
    assert_eq!(r("span_id")["ok"]["data"]["data"][0]["name"], "tool");
    // The client's middleware turns a non-2xx answer into an error naming the status.
    let bad = r("bad_attribute")["error"].as_str().unwrap_or_default().to_owned();
    assert!(bad.ends_with("422 Unprocessable Entity"), "{bad}");
    let traces = r("traces")["ok"].as_array().unwrap().clone();
    assert_eq!(traces.len(), 2, "both pages of one trace each: {traces:?}");
    assert_eq!(traces[1]["spans"], json!(["agent", "llm", "tool"]));
    let by_latency =
        r("by_latency")["ok"].as_array().unwrap().iter().map(|t| t["trace_id"].clone()).collect::<Vec<_>>();
    assert_eq!(by_latency, [json!(format!("{TRACE_A:032x}")), json!(format!("{TRACE_B:032x}"))]);
}
