//! `/v1/user`, `/v1/users`: Phoenix's shapes, GlobalIDs, role gates and error texts.

use ashgate_proto::identity::Role;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::ADMIN_SECRET;
use serde_json::{Value, json};

use crate::support::{assert_401, status_text};

#[tokio::test]
async fn users_routes() {
    let fixture = GatewayFixture::start().await;
    let admin = fixture.identity.admin_token().await;
    let (_, member) = fixture.identity.user_with_role("mia", Role::Member).await;
    let client = GatewayFixture::client();
    let get = |path: &str, token: &str| client.get(fixture.url(path)).bearer_auth(token).send();

    // Who am I.
    let me: Value = get("/v1/user", &member).await.unwrap().json().await.unwrap();
    let data = &me["data"];
    assert_eq!(data["email"], "mia@example.com");
    assert_eq!(data["username"], "mia");
    assert_eq!(data["role"], "MEMBER");
    assert_eq!(data["auth_method"], "LOCAL");
    assert_eq!(data["password_needs_reset"], false);
    assert!(data["created_at"].as_str().unwrap().ends_with("+00:00"));
    let me_id = data["id"].as_str().unwrap().to_owned();
    assert_401(client.get(fixture.url("/v1/user")).send().await.unwrap(), "Invalid token").await;
    assert_401(get("/v1/user", "not-a-token").await.unwrap(), "Invalid token").await;
    let basic =
        client.get(fixture.url("/v1/user")).header("authorization", "Basic YTpi").send().await.unwrap();
    assert_401(basic, "Invalid token").await;

    // Listing is for admins.
    let denied = get("/v1/users", &member).await.unwrap();
    assert_eq!(
        status_text(denied).await,
        (403, "Only admin or system users can perform this action.".to_owned())
    );
    let page: Value = get("/v1/users?limit=1", &admin).await.unwrap().json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest: Value = get(&format!("/v1/users?cursor={cursor}"), &admin).await.unwrap().json().await.unwrap();
    assert!(rest["data"].as_array().unwrap().iter().any(|u| u["id"] == me_id.as_str()));
    assert_eq!(rest["next_cursor"], Value::Null);
    for bad in ["/v1/users?limit=0", "/v1/users?limit=abc", "/v1/users?cursor=%%%"] {
        let (status, _) = status_text(get(bad, &admin).await.unwrap()).await;
        assert_eq!(status, 422, "{bad}");
    }

    // Create: 201, conflicts 409, SYSTEM 400, bad bodies 422.
    let create = |body: Value, token: &str| {
        client.post(fixture.url("/v1/users")).bearer_auth(token).json(&body).send()
    };
    let new_user = json!({"user": {"email": "Neo@Example.com", "username": "neo", "role": "VIEWER", "auth_method": "LOCAL", "password": "neo-pass-1"}, "send_welcome_email": false});
    let created = create(new_user.clone(), &admin).await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["data"]["email"], "neo@example.com");
    assert_eq!(created["data"]["role"], "VIEWER");
    assert_eq!(created["data"]["password_needs_reset"], true);
    let (status, text) = status_text(create(new_user.clone(), &admin).await.unwrap()).await;
    assert_eq!(status, 409);
    assert!(text == "Username already exists" || text == "Email already exists", "{text}");
    let system =
        json!({"user": {"email": "s@x.io", "username": "s", "role": "SYSTEM", "auth_method": "LOCAL"}});
    assert_eq!(
        status_text(create(system, &admin).await.unwrap()).await,
        (400, "Cannot create users with SYSTEM role".to_owned())
    );
    for bad in [
        json!({}),
        json!({"user": {"email": "x@y.z"}}),
        json!({"user": {"email": 1, "username": "u", "role": "MEMBER", "auth_method": "LOCAL"}}),
        json!({"user": {"email": "x@y.z", "username": "u", "role": "BOSS", "auth_method": "LOCAL"}}),
    ] {
        let (status, _) = status_text(create(bad.clone(), &admin).await.unwrap()).await;
        assert_eq!(status, 422, "{bad}");
    }
    let (status, _) = status_text(create(new_user.clone(), &member).await.unwrap()).await;
    assert_eq!(status, 403);
    let oauth = json!({"user": {"email": "o@idp.io", "username": "oauthy", "role": "MEMBER", "auth_method": "OAUTH2", "oauth2_client_id": "cid", "oauth2_user_id": "sub-1"}});
    let oauth: Value = create(oauth, ADMIN_SECRET).await.unwrap().json().await.unwrap();
    assert_eq!(oauth["data"]["auth_method"], "OAUTH2");
    assert_eq!(oauth["data"]["oauth2_user_id"], "sub-1");
    assert!(oauth["data"].get("password_needs_reset").is_none());

    // Delete by GlobalID.
    let neo_id = created["data"]["id"].as_str().unwrap().to_owned();
    let delete = |id: &str, token: &str| {
        client.delete(fixture.url(&format!("/v1/users/{id}"))).bearer_auth(token).send()
    };
    assert_eq!(delete(&neo_id, &member).await.unwrap().status(), 403);
    assert_eq!(delete(&neo_id, &admin).await.unwrap().status(), 204);
    assert_eq!(status_text(delete(&neo_id, &admin).await.unwrap()).await, (404, "User not found".to_owned()));
    let (status, text) = status_text(delete("garbage", &admin).await.unwrap()).await;
    assert_eq!((status, text.as_str()), (422, "Invalid User GlobalID format: garbage"));
    let admin_id: Value = get("/v1/user", &admin).await.unwrap().json().await.unwrap();
    let (status, _) =
        status_text(delete(admin_id["data"]["id"].as_str().unwrap(), &admin).await.unwrap()).await;
    assert_eq!(status, 403, "the default admin cannot be deleted");
}

#[tokio::test]
async fn must_reset_users_can_only_change_their_password() {
    let fixture = GatewayFixture::start().await;
    let first = fixture.identity.login("admin@localhost", "admin").await;
    let client = GatewayFixture::client();
    // Beyond Phoenix: the API refuses a session that must change its password first.
    let me = client.get(fixture.url("/v1/user")).bearer_auth(&first.access_token).send().await.unwrap();
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["data"]["password_needs_reset"], true, "GET /v1/user still answers");
    for path in ["/v1/users", "/v1/user/api_keys", "/v1/projects"] {
        let response = client.get(fixture.url(path)).bearer_auth(&first.access_token).send().await.unwrap();
        assert_eq!(
            status_text(response).await,
            (403, "You must change your password before continuing.".to_owned()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn operational_routes_and_bad_input() {
    let fixture = GatewayFixture::start().await;
    let client = GatewayFixture::client();
    assert_eq!(
        status_text(client.get(fixture.url("/healthz")).send().await.unwrap()).await,
        (200, "OK".to_owned())
    );
    assert_eq!(
        status_text(client.get(fixture.url("/readyz")).send().await.unwrap()).await,
        (200, "ready".to_owned())
    );
    let metrics = client.get(fixture.url("/metrics")).send().await.unwrap().text().await.unwrap();
    // Requests by route pattern (never the client's own path), method and real status.
    assert!(
        metrics.contains(
            "ashgate_gateway_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("ashgate_gateway_http_request_duration_seconds_count{route=\"/readyz\"} 1"),
        "{metrics}"
    );
    let openapi: Value = client.get(fixture.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(openapi["paths"]["/v1/users"].is_object());
    let (status, text) = status_text(client.get(fixture.url("/nowhere")).send().await.unwrap()).await;
    assert_eq!((status, text.as_str()), (404, "Not Found"));
    // Security headers on pages.
    let login = client.get(fixture.url("/login")).send().await.unwrap();
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    assert!(login.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
    assert_eq!(login.headers()["cache-control"], "no-store");
    // Garbage cookies and headers are no credential, never a 500.
    let odd = client
        .get(fixture.url("/v1/user"))
        .header("cookie", "phoenix-access-token=;;;===")
        .send()
        .await
        .unwrap();
    assert_401(odd, "Invalid token").await;
    let long = client.get(fixture.url("/v1/user")).bearer_auth("x".repeat(5000)).send().await.unwrap();
    assert_401(long, "Invalid token").await;
}
