//! Issue 18.1: a project read by GlobalID must not be hijacked by a project *named* like its id.
//! A member who sends one span into a project called "<id>" used to take over
//! `GET /v1/projects/<GlobalID>/...`, because the GlobalID became the bare string "<id>" and the
//! collector looked that up as a name first. A GlobalID resolves as an id only, a name as a name only.

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::base64::Engine as _;
use ashgate_testkit::gateway::deps::base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::member_with_key;

/// One OTLP/JSON span named `name` in project `project` (distinct trace per `trace`).
fn one_span(project: &str, name: &str, trace: u8) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "openinference.project.name", "value": {"stringValue": project}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{trace:02x}").repeat(16),
            "spanId": "00000000000000a1",
            "name": name,
            "kind": 1,
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000001000000000"
        }]}]
    }]})
}

async fn get_json(fixture: &GatewayFixture, path: &str, key: &str) -> (u16, Value) {
    let response = GatewayFixture::client().get(fixture.url(path)).bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn span_names(body: &Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_project_named_like_an_id_does_not_take_over_that_id() {
    let fixture = GatewayFixture::start().await;
    let system = fixture.identity.system_key("ingest").await;
    let (_, _, member) = member_with_key(&fixture, "mallory").await;
    let client = GatewayFixture::client();
    let traces = fixture.url("/v1/traces");

    let sent = client.post(&traces).bearer_auth(&system).json(&one_span("prod-evals", "real", 1)).send();
    assert_eq!(sent.await.unwrap().status(), 200);
    let (_, projects) = get_json(&fixture, "/v1/projects", &system).await;
    let global_id = projects["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "prod-evals")
        .and_then(|p| p["id"].as_str())
        .unwrap()
        .to_owned();
    let decoded = String::from_utf8(STANDARD.decode(&global_id).unwrap()).unwrap();
    let row_id = decoded.strip_prefix("Project:").unwrap().to_owned();

    // The member names a project after the real project's row id.
    let hijack = client.post(&traces).bearer_auth(&member).json(&one_span(&row_id, "hijack", 2)).send();
    assert_eq!(hijack.await.unwrap().status(), 200);

    // By GlobalID: the real project, however it is named, whoever reads.
    for reader in [&system, &member] {
        let (status, body) = get_json(&fixture, &format!("/v1/projects/{global_id}/spans"), reader).await;
        assert_eq!(status, 200);
        assert_eq!(span_names(&body), ["real"], "GlobalID {global_id} must resolve as an id only");
    }
    // By name: the project with that name, never the one with that id.
    let (status, body) = get_json(&fixture, &format!("/v1/projects/{row_id}/spans"), &system).await;
    assert_eq!(status, 200);
    assert_eq!(span_names(&body), ["hijack"], "the bare name {row_id:?} must resolve as a name only");
    // Digits that name no project are not found, even when they are some project's row id.
    let (_, projects) = get_json(&fixture, "/v1/projects", &system).await;
    let hijack_id = projects["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == row_id.as_str())
        .and_then(|p| p["id"].as_str())
        .unwrap()
        .to_owned();
    let hijack_row = String::from_utf8(STANDARD.decode(&hijack_id).unwrap()).unwrap();
    let hijack_row = hijack_row.strip_prefix("Project:").unwrap().to_owned();
    assert_ne!(hijack_row, row_id);
    let (status, _) = get_json(&fixture, &format!("/v1/projects/{hijack_row}/spans"), &system).await;
    assert_eq!(status, 404, "the bare name {hijack_row:?} names no project");
}
