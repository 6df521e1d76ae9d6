//! The audit log (issue 17): identity-svc records every security event in its database, in the
//! transaction of the change it records, and `GET /v1/audit_events` lists them for admins and
//! system keys. Real services, real HTTP, the table read back with SQL where the test must see
//! what is stored.

mod api;
mod events;
mod sign_ins;

use ashgate_testkit::collector::deps::sqlx;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::base64::Engine as _;
use ashgate_testkit::gateway::deps::base64::engine::general_purpose::STANDARD;
use ashgate_testkit::identity::ADMIN_SECRET;
use serde_json::Value;

/// `GlobalID(node_type, id)` as the REST routes write it.
pub fn gid(node_type: &str, id: i64) -> String {
    STANDARD.encode(format!("{node_type}:{id}"))
}

/// The id a GlobalID names.
pub fn id_of(global_id: &str) -> i64 {
    let decoded = String::from_utf8(STANDARD.decode(global_id).unwrap()).unwrap();
    decoded.split_once(':').unwrap().1.parse().unwrap()
}

/// `GET /v1/audit_events<query>` with `credential`: (status, body text).
pub async fn get(fixture: &GatewayFixture, credential: &str, query: &str) -> (u16, String) {
    let response = GatewayFixture::client()
        .get(fixture.url(&format!("/v1/audit_events{query}")))
        .bearer_auth(credential)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The page of `GET /v1/audit_events<query>` with `credential`, which must be a 200.
pub async fn page(fixture: &GatewayFixture, credential: &str, query: &str) -> Value {
    let (status, body) = get(fixture, credential, query).await;
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Every event of `event_type`, newest first (read with the admin secret).
pub async fn of_type(fixture: &GatewayFixture, event_type: &str) -> Vec<Value> {
    let page = page(fixture, ADMIN_SECRET, &format!("?event_type={event_type}&limit=1000")).await;
    page["data"].as_array().unwrap().clone()
}

/// Polls until there are events of `event_type` (some are written after the answer, by a
/// background task), then returns them.
pub async fn wait_for(fixture: &GatewayFixture, event_type: &str) -> Vec<Value> {
    for _ in 0..100 {
        let events = of_type(fixture, event_type).await;
        if !events.is_empty() {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {event_type} event within 5 s");
}

/// What an event says, without what differs between runs (id and times), checked for shape:
/// an id of type AuditEvent, ISO times, `last_time` not before `time`.
pub fn facts(event: &Value) -> Value {
    let mut event = event.clone();
    let object = event.as_object_mut().unwrap();
    let id = object.remove("id").unwrap();
    let decoded = String::from_utf8(STANDARD.decode(id.as_str().unwrap()).unwrap()).unwrap();
    assert!(decoded.starts_with("AuditEvent:"), "{decoded}");
    let time = object.remove("time").unwrap();
    let last = object.remove("last_time").unwrap();
    let (time, last) = (time.as_str().unwrap(), last.as_str().unwrap());
    assert!(time.ends_with("+00:00") && time.len() == 32, "{time}");
    assert!(last >= time, "{last} < {time}");
    event
}

/// The facts of `events` with `count` taken out, and the counts summed: an aggregated event
/// may span two rows when a minute ends between its repeats.
pub fn aggregated(events: &[Value]) -> (Vec<Value>, i64) {
    assert!(!events.is_empty() && events.len() <= 2, "one row a minute: {events:#?}");
    let mut total = 0;
    let mut seen = Vec::new();
    for event in events {
        let mut facts = facts(event);
        total += facts["count"].as_i64().unwrap();
        facts.as_object_mut().unwrap().remove("count");
        if !seen.contains(&facts) {
            seen.push(facts);
        }
    }
    (seen, total)
}

/// The text columns of a stored row.
type StoredRow =
    (i64, String, String, Option<String>, Option<String>, Option<String>, String, Option<String>);

/// Every stored audit row, its text columns, read with SQL.
pub async fn stored_rows(fixture: &GatewayFixture) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(fixture.identity.database.url.expose()).await.unwrap();
    let rows: Vec<StoredRow> =
        sqlx::query_as(
            "SELECT id, event_type, actor_type, actor, subject_type, subject, detail, client_addr FROM audit_events",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.into_iter().map(|row| format!("{row:?}")).collect()
}

/// Asserts that no stored event holds any of `secrets`.
pub async fn assert_no_secret_stored(fixture: &GatewayFixture, secrets: &[&str]) {
    let rows = stored_rows(fixture).await;
    assert!(rows.len() >= 3, "the scan must have rows to scan: {rows:#?}");
    for secret in secrets {
        assert!(secret.len() >= 8, "too short to scan for: {secret:?}");
        for row in &rows {
            assert!(!row.contains(secret), "a stored event holds a secret: {row}");
        }
    }
}
