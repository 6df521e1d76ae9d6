//! `GET /v1/audit_events` as a client sees it: who may read it (admins and system keys; 403
//! for members, viewers and their keys), cursor paging, the filters and their 422s, the settings
//! view; and the table behind it: append-only, pruned after the retention by a background task.

use ashgate_proto::identity as pb;
use ashgate_testkit::collector::deps::sqlx;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::{ADMIN_SECRET, bearer, test_env};
use serde_json::{Value, json};

use super::{get, gid, page};
use crate::support::{admin_cookies, login_cookies, status_text};

const ADMIN_ONLY: &str = "Only admin or system users can perform this action.";

/// `count` failed sign-ins, each with its own email (so each is a row of its own).
async fn failures(fixture: &GatewayFixture, count: usize) {
    let mut auth = fixture.identity.auth();
    for n in 0..count {
        let request =
            pb::LoginRequest { email: format!("guess-{n}@example.com"), password: "nope-nope".into() };
        auth.login(request).await.unwrap_err();
    }
}

#[tokio::test]
async fn admins_and_system_keys_only() {
    let fixture = GatewayFixture::start().await;
    let (_, member) = fixture.identity.user_with_role("mona", pb::Role::Member).await;
    let (_, viewer) = fixture.identity.user_with_role("vic", pb::Role::Viewer).await;
    let request = pb::CreateApiKeyRequest { name: "mona-key".into(), ..Default::default() };
    let member_key =
        fixture.identity.keys().create_user_api_key(bearer(request, &member)).await.unwrap().into_inner().key;
    for credential in [&member, &viewer, &member_key] {
        assert_eq!(get(&fixture, credential, "").await, (403, ADMIN_ONLY.to_owned()));
    }
    let response = GatewayFixture::client().get(fixture.url("/v1/audit_events")).send().await.unwrap();
    assert_eq!(status_text(response).await, (401, "Invalid token".to_owned()));
    let openapi: Value = GatewayFixture::client()
        .get(fixture.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["paths"]["/v1/audit_events"]["get"]["tags"], json!(["audit"]));
    // identity-svc refuses them too, whoever asks it directly.
    let mut audit =
        ashgate_proto::identity::audit_service_client::AuditServiceClient::new(fixture.identity.channel());
    let refused =
        audit.list_audit_events(bearer(pb::ListAuditEventsRequest::default(), &member)).await.unwrap_err();
    assert_eq!((refused.code(), refused.message()), (tonic::Code::PermissionDenied, ADMIN_ONLY));

    let admin = fixture.identity.admin_token().await;
    let system_key = fixture.identity.system_key("auditor").await;
    for credential in [&admin, &system_key, &ADMIN_SECRET.to_owned()] {
        let body = page(&fixture, credential, "").await;
        assert!(!body["data"].as_array().unwrap().is_empty());
        assert_eq!(body["next_cursor"], Value::Null);
    }
}

#[tokio::test]
async fn pages_follow_the_cursor_newest_first() {
    let fixture = GatewayFixture::start().await;
    failures(&fixture, 5).await;
    let all =
        page(&fixture, ADMIN_SECRET, "?event_type=sign_in_failed").await["data"].as_array().unwrap().clone();
    assert_eq!(all.len(), 5);
    let names: Vec<&str> = all.iter().map(|e| e["subject"]["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "guess-4@example.com",
            "guess-3@example.com",
            "guess-2@example.com",
            "guess-1@example.com",
            "guess-0@example.com"
        ]
    );

    let mut seen = Vec::new();
    let mut query = "?event_type=sign_in_failed&limit=2".to_owned();
    let mut pages = 0;
    loop {
        let body = page(&fixture, ADMIN_SECRET, &query).await;
        pages += 1;
        seen.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("?event_type=sign_in_failed&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    // 2 + 2 + 1; a full last page would need one more (empty) request.
    assert_eq!(pages, 3);
    assert_eq!(seen, all);
}

#[tokio::test]
async fn filters_by_type_user_and_time() {
    let fixture = GatewayFixture::start().await;
    let (mona, _) = fixture.identity.user_with_role("mona", pb::Role::Member).await;
    let (nick, _) = fixture.identity.user_with_role("nick", pb::Role::Member).await;
    failures(&fixture, 1).await;

    let types = |body: &Value| -> Vec<String> {
        body["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
    };
    // By or about mona: her creation, her password change, her sign-ins; nothing of nick's.
    let body = page(&fixture, ADMIN_SECRET, &format!("?user={}", gid("User", mona))).await;
    assert_eq!(
        types(&body),
        ["sign_in_succeeded", "password_changed", "sign_in_succeeded", "user_created"],
        "{body:#}"
    );
    for event in body["data"].as_array().unwrap() {
        assert!(event["user"] == gid("User", mona) || event["actor"]["id"] == gid("User", mona));
        assert_ne!(event["user"], gid("User", nick));
    }
    // Types repeat or come comma-separated. (The oldest failure is the fixture's first try of
    // the admin's password, before its forced change.)
    let expected = ["sign_in_failed", "user_created", "user_created", "sign_in_failed"];
    let body = page(&fixture, ADMIN_SECRET, "?event_type=user_created&event_type=sign_in_failed").await;
    assert_eq!(types(&body), expected);
    let body = page(&fixture, ADMIN_SECRET, "?event_type=user_created,sign_in_failed").await;
    assert_eq!(types(&body), expected);

    // Time: start inclusive, end exclusive.
    let newest = &page(&fixture, ADMIN_SECRET, "?event_type=sign_in_failed").await["data"][0];
    let time = newest["time"].as_str().unwrap().to_owned();
    let at = |query: String| {
        let fixture = &fixture;
        async move { page(fixture, ADMIN_SECRET, &query).await }
    };
    let encoded = time.replace('+', "%2B");
    let names = |body: Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["subject"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let from = at(format!("?event_type=sign_in_failed&start_time={encoded}")).await;
    assert_eq!(names(from), ["guess-0@example.com"]);
    let before = at(format!("?event_type=sign_in_failed&end_time={encoded}")).await;
    assert_eq!(names(before), ["admin@localhost"]);
    assert!(types(&at("?start_time=2200-01-01T00:00:00Z".into()).await).is_empty());
    assert!(types(&at("?end_time=2000-01-01".into()).await).is_empty());
}

#[tokio::test]
async fn bad_filters_are_422_with_the_reason() {
    let fixture = GatewayFixture::start().await;
    let plain = [
        ("?event_type=bogus", "Invalid event_type values: ['bogus']"),
        ("?event_type=user_created,Nope", "Invalid event_type values: ['Nope']"),
        ("?cursor=garbage", "Invalid cursor"),
        (&format!("?cursor={}", gid("User", 3)), "Invalid cursor"),
        ("?user=garbage", "Invalid User GlobalID format: garbage"),
        (
            "?start_time=2024-01-02T00:00:00Z&end_time=2024-01-01T00:00:00Z",
            "start_time must be before end_time",
        ),
    ];
    for (query, message) in plain {
        assert_eq!(get(&fixture, ADMIN_SECRET, query).await, (422, message.to_owned()), "{query}");
    }
    let typed = [
        (
            "?start_time=tomorrow",
            "datetime_parsing",
            "start_time",
            "Input should be a valid datetime",
            "tomorrow",
        ),
        ("?end_time=13:00", "datetime_parsing", "end_time", "Input should be a valid datetime", "13:00"),
        ("?limit=0", "greater_than", "limit", "Input should be greater than 0", "0"),
        ("?limit=1001", "less_than_equal", "limit", "Input should be less than or equal to 1000", "1001"),
        (
            "?limit=ten",
            "int_parsing",
            "limit",
            "Input should be a valid integer, unable to parse string as an integer",
            "ten",
        ),
    ];
    for (query, kind, field, msg, input) in typed {
        let (status, body) = get(&fixture, ADMIN_SECRET, query).await;
        assert_eq!(status, 422, "{query}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"detail": [{"type": kind, "loc": ["query", field], "msg": msg, "input": input}]}),
            "{query}"
        );
    }
    // identity-svc's own checks, for callers that skip the gateway.
    let mut audit =
        ashgate_proto::identity::audit_service_client::AuditServiceClient::new(fixture.identity.channel());
    let cases = [
        (
            pb::ListAuditEventsRequest { event_types: vec!["bogus".into()], ..Default::default() },
            "Unknown event type: bogus",
        ),
        (pb::ListAuditEventsRequest { cursor: "-4".into(), ..Default::default() }, "Invalid cursor"),
        (
            pb::ListAuditEventsRequest { start_time_ms: 2, end_time_ms: 1, ..Default::default() },
            "start_time must be before end_time",
        ),
    ];
    for (request, message) in cases {
        let status = audit.list_audit_events(bearer(request, ADMIN_SECRET)).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (tonic::Code::InvalidArgument, message));
    }
}

#[tokio::test]
async fn with_authentication_off_there_is_no_log_to_read() {
    let fixture = GatewayFixture::start_with(false, |env| env).await;
    let response = GatewayFixture::client().get(fixture.url("/v1/audit_events")).send().await.unwrap();
    assert_eq!(
        status_text(response).await,
        (
            403,
            "This action requires authentication to be enabled. Set the PHOENIX_ENABLE_AUTH environment variable to true."
                .to_owned()
        )
    );
}

#[tokio::test]
async fn admins_browse_it_in_settings_members_do_not() {
    let fixture = GatewayFixture::start().await;
    let admin = admin_cookies(&fixture).await;
    failures(&fixture, 3).await;
    let get_page = |path: &str, cookies: &str| {
        GatewayFixture::client().get(fixture.url(path)).header("cookie", cookies.to_owned()).send()
    };
    let settings = get_page("/settings", &admin).await.unwrap().text().await.unwrap();
    assert!(settings.contains("/settings/audit"), "settings link to the audit view");
    let response = get_page("/settings/audit?event_type=sign_in_failed&limit=2", &admin).await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert_eq!(html.matches("<tr data-type=\"sign_in_failed\">").count(), 2, "{html}");
    assert!(html.contains("guess-2@example.com") && html.contains("guess-1@example.com"));
    assert!(!html.contains("guess-0@example.com"));
    let older = html.split("id=\"older-events\"").next().unwrap().rsplit("href=\"").next().unwrap();
    let older = older.split('"').next().unwrap().replace("&amp;", "&");
    let html =
        get_page(&older.replace(&fixture.config.root_path, ""), &admin).await.unwrap().text().await.unwrap();
    assert!(html.contains("guess-0@example.com"), "{html}");
    assert!(!html.contains("id=\"older-events\""));
    let response = get_page("/settings/audit?event_type=bogus", &admin).await.unwrap();
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("Invalid event_type values: [&#39;bogus&#39;]"), "{html}");

    fixture.identity.user_with_role("mona", pb::Role::Member).await;
    let member = login_cookies(&fixture, "mona@example.com", "user-password-1").await;
    let response = get_page("/settings/audit", &member).await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains(ADMIN_ONLY));
}

/// Events past `ASHGATE_AUDIT_RETENTION_DAYS` are deleted by a background task (which runs
/// when a replica starts, then hourly); rows are append-only otherwise.
#[tokio::test]
async fn old_events_are_pruned_and_rows_never_change() {
    let fixture = GatewayFixture::start().await;
    failures(&fixture, 1).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(fixture.identity.database.url.expose()).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let day = 86_400_000;
    for (name, at) in [("two-days-old", now - 2 * day), ("half-a-day-old", now - day / 2)] {
        sqlx::query(
            "INSERT INTO audit_events (event_type, occurred_at, last_at, count, actor_type, subject_type, subject, outcome, detail) \
             VALUES ('sign_in_failed', $1, $1, 1, 'none', 'sign_in_name', $2, 'failure', '{}')",
        )
        .bind(at)
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
    }
    let subjects = |pool: sqlx::AnyPool| async move {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT subject FROM audit_events WHERE event_type = 'sign_in_failed' ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>()
    };
    assert_eq!(subjects(pool.clone()).await, ["guess-0@example.com", "two-days-old", "half-a-day-old"]);

    // The facts of a row cannot be changed, nor its count lowered.
    for sql in [
        "UPDATE audit_events SET detail = '{\"method\":\"forged\"}'",
        "UPDATE audit_events SET actor = 'someone else'",
        "UPDATE audit_events SET count = 0",
    ] {
        let error = sqlx::query(sql).execute(&pool).await.unwrap_err().to_string();
        assert!(error.contains("audit events are append-only"), "{sql}: {error}");
    }

    let replica = fixture.identity.replica(|env| env.with("ASHGATE_AUDIT_RETENTION_DAYS", "1")).await;
    let mut pruned = false;
    for _ in 0..100 {
        if subjects(pool.clone()).await == ["guess-0@example.com", "half-a-day-old"] {
            pruned = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(pruned, "{:?}", subjects(pool.clone()).await);
    drop(replica);
    pool.close().await;
}

#[test]
fn the_retention_is_a_whole_number_of_days() {
    for bad in ["0", "-1", "ninety", "36501"] {
        let env = test_env("sqlite::memory:", "t").with("ASHGATE_AUDIT_RETENTION_DAYS", bad);
        let error = ashgate_identity::IdentityConfig::from_env(&env).unwrap_err().to_string();
        let expected = if bad.parse::<u64>().is_ok() {
            "ASHGATE_AUDIT_RETENTION_DAYS: must be between 1 and 36500"
        } else {
            "ASHGATE_AUDIT_RETENTION_DAYS: must be a whole number"
        };
        assert_eq!(error, expected, "{bad}");
    }
    let env = test_env("sqlite::memory:", "t").with("ASHGATE_AUDIT_RETENTION_DAYS", "7");
    let config = ashgate_identity::IdentityConfig::from_env(&env).unwrap();
    assert_eq!(config.audit_retention, std::time::Duration::from_secs(7 * 86_400));
}

/// A change and its event commit together: while the event cannot be written, the change is
/// refused and nothing of it remains; a change that fails writes no event.
#[tokio::test]
async fn a_change_and_its_event_commit_together() {
    let fixture = GatewayFixture::start().await;
    let admin = fixture.identity.admin_token().await;
    let create = |username: &'static str| {
        let email = format!("{username}-{}@example.com", email_number());
        let body = json!({"user": {"email": email, "username": username,
                                   "role": "MEMBER", "auth_method": "LOCAL", "password": "initial-pass-1"}});
        GatewayFixture::client().post(fixture.url("/v1/users")).bearer_auth(&admin).json(&body).send()
    };
    let created = || async { super::of_type(&fixture, "user_created").await.len() };
    assert_eq!(status_text(create("gina").await.unwrap()).await.0, 201);
    assert_eq!(created().await, 1);
    // A conflict (the username; each email is new): no user, no event.
    assert_eq!(status_text(create("gina").await.unwrap()).await, (409, "Username already exists".to_owned()));
    assert_eq!(created().await, 1);

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(fixture.identity.database.url.expose()).await.unwrap();
    sqlx::query("ALTER TABLE audit_events RENAME TO audit_events_away").execute(&pool).await.unwrap();
    let refused = status_text(create("hugo").await.unwrap()).await;
    sqlx::query("ALTER TABLE audit_events_away RENAME TO audit_events").execute(&pool).await.unwrap();
    pool.close().await;
    assert_eq!(refused, (500, "Internal Server Error".to_owned()));
    let users =
        GatewayFixture::client().get(fixture.url("/v1/users")).bearer_auth(&admin).send().await.unwrap();
    let users: Value = users.json().await.unwrap();
    let names: Vec<&str> =
        users["data"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "gina"], "the user whose event could not be written is not there");
    assert_eq!(status_text(create("hugo").await.unwrap()).await.0, 201);
    assert_eq!(created().await, 2);
}

/// A different email each time (a conflict on the username alone).
fn email_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The gateway checks `event_type` against its own list: it must be identity-svc's.
#[test]
fn the_gateway_knows_every_event_type() {
    let identity: Vec<&str> = ashgate_identity::audit::EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(identity, ashgate_testkit::gateway::deps::ashgate_gateway::routes::audit::EVENT_TYPES);
    for name in identity {
        assert_eq!(ashgate_identity::audit::EventType::parse(name).map(|t| t.as_str()), Some(name));
    }
}
