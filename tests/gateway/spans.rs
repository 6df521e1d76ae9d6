//! `POST /v1/traces` on the gateway (forwarded to collector-svc) and the span read path.

use ashgate_proto::identity::Role;
use ashgate_testkit::gateway::GatewayFixture;
use serde_json::{Value, json};

use crate::support::{assert_401, status_text};

/// One OTLP/JSON export with one LLM span (and an event) in project `project`.
pub fn otlp_json(project: &str) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "openinference.project.name", "value": {"stringValue": project}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "name": "llm-call",
            "kind": 1,
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000001000000000",
            "attributes": [
                {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
                {"key": "llm.model_name", "value": {"stringValue": "gpt-4o"}},
                {"key": "llm.token_count.prompt", "value": {"intValue": "12"}}
            ],
            "events": [{"name": "first-token", "timeUnixNano": "1700000000500000000"}],
            "status": {"code": 1}
        }]}]
    }]})
}

#[tokio::test]
async fn traces_forwarded_and_read_back() {
    let fixture = GatewayFixture::start().await;
    let key = fixture.identity.system_key("exporter").await;
    let (_, viewer) = fixture.identity.user_with_role("vic", Role::Viewer).await;
    let client = GatewayFixture::client();
    let traces = fixture.url("/v1/traces");

    // Unauthenticated and viewer exports are refused by the collector, with Phoenix's answers.
    let anonymous = client.post(&traces).json(&otlp_json("quickstart")).send().await.unwrap();
    assert_401(anonymous, "Invalid token").await;
    let (status, _) =
        status_text(client.post(&traces).bearer_auth(&viewer).json(&otlp_json("q")).send().await.unwrap())
            .await;
    assert_eq!(status, 403);
    let (status, _) = status_text(
        client
            .post(&traces)
            .bearer_auth(&key)
            .header("content-type", "text/csv")
            .body("a,b")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 415);

    let sent = client.post(&traces).bearer_auth(&key).json(&otlp_json("quickstart")).send().await.unwrap();
    assert_eq!(sent.status(), 200, "{:?}", sent.text().await);
    assert_eq!(fixture.collector.span_count().await, 1);

    // Projects and spans in Phoenix's shapes; every role may read.
    let projects: Value = client
        .get(fixture.url("/v1/projects"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let project = projects["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "quickstart")
        .expect("project")
        .clone();
    assert_eq!(projects["next_cursor"], Value::Null);
    let by_name: Value = client
        .get(fixture.url("/v1/projects/quickstart/spans"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let span = &by_name["data"][0];
    assert_eq!(span["name"], "llm-call");
    assert_eq!(
        span["context"],
        json!({"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174"})
    );
    assert_eq!(span["span_kind"], "LLM");
    assert_eq!(span["parent_id"], Value::Null);
    assert_eq!(span["start_time"], "2023-11-14T22:13:20.000000+00:00");
    assert_eq!(span["end_time"], "2023-11-14T22:13:21.000000+00:00");
    assert_eq!(span["status_code"], "OK");
    assert_eq!(span["attributes"]["llm.model_name"], "gpt-4o");
    assert!(span["attributes"].get("openinference.span.kind").is_none());
    assert_eq!(span["events"][0]["name"], "first-token");
    assert_eq!(span["events"][0]["timestamp"], "2023-11-14T22:13:20.500000+00:00");
    assert_eq!(by_name["next_cursor"], Value::Null);
    let by_id = fixture.url(&format!("/v1/projects/{}/spans", project["id"].as_str().unwrap()));
    let by_id: Value = client.get(by_id).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(by_id["data"], by_name["data"]);
    let window = fixture.url("/v1/projects/quickstart/spans?start_time=2024-01-01T00:00:00Z");
    let empty: Value = client.get(window).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(empty["data"], json!([]));

    // Errors.
    let missing = client.get(fixture.url("/v1/projects/nope/spans")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(status_text(missing).await, (404, "Project with name nope not found".to_owned()));
    for bad in [
        "/v1/projects/quickstart/spans?limit=0",
        "/v1/projects/quickstart/spans?start_time=yesterday",
        "/v1/projects?limit=0",
    ] {
        let (status, _) =
            status_text(client.get(fixture.url(bad)).bearer_auth(&key).send().await.unwrap()).await;
        assert_eq!(status, 422, "{bad}");
    }
    // Phoenix matches trace ids exactly: one that is no trace's finds nothing.
    let none: Value = client
        .get(fixture.url("/v1/projects/quickstart/spans?trace_id=xyz"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["data"], json!([]));
    assert_401(client.get(fixture.url("/v1/projects")).send().await.unwrap(), "Invalid token").await;
}

#[tokio::test]
async fn unreachable_collector_is_503_and_failover_works() {
    // The first collector address refuses connections; the second is the real one.
    let dead = format!("http://127.0.0.1:{}", ashgate_testkit::collector::free_port());
    let fixture = GatewayFixture::start_with(true, |env| env).await;
    let real = format!("http://{}", fixture.collector.http_addr);
    let failover = GatewayFixture::start_with(true, move |env| {
        env.with("ASHGATE_COLLECTOR_HTTP_URLS", format!("{dead},{real}"))
    })
    .await;
    // `failover` forwards to `fixture`'s collector, which trusts `fixture`'s identity only: a key
    // of `failover`'s identity passes the gateway's own check and is refused by that collector
    // (its own 401), proof that the export got through.
    let client = GatewayFixture::client();
    let key = failover.identity.system_key("failover").await;
    let through =
        client.post(failover.url("/v1/traces")).bearer_auth(&key).json(&otlp_json("x")).send().await.unwrap();
    assert_401(through, "Invalid token").await;
    let only_dead = format!("http://127.0.0.1:{}", ashgate_testkit::collector::free_port());
    let nowhere =
        GatewayFixture::start_with(true, move |env| env.with("ASHGATE_COLLECTOR_HTTP_URLS", only_dead)).await;
    let key = nowhere.identity.system_key("nowhere").await;
    let refused =
        client.post(nowhere.url("/v1/traces")).bearer_auth(&key).json(&otlp_json("x")).send().await.unwrap();
    assert_eq!(status_text(refused).await, (503, "Collector unavailable, retry later".to_owned()));
}
