//! API-key routes (docs/phoenix-compat.md §5): user keys, all users' keys, system keys.

use ashgate_proto::identity::Role;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::ADMIN_SECRET;
use serde_json::{Value, json};

use crate::support::{assert_401, status_text};

#[tokio::test]
async fn user_and_system_keys() {
    let fixture = GatewayFixture::start().await;
    let admin = fixture.identity.admin_token().await;
    let (_, member) = fixture.identity.user_with_role("mo", Role::Member).await;
    let client = GatewayFixture::client();
    let post = |path: &str, token: &str, body: Value| {
        client.post(fixture.url(path)).bearer_auth(token).json(&body).send()
    };
    let get = |path: &str, token: &str| client.get(fixture.url(path)).bearer_auth(token).send();
    let delete = |path: &str, token: &str| client.delete(fixture.url(path)).bearer_auth(token).send();

    // A member's own key.
    let created = post(
        "/v1/user/api_keys",
        &member,
        json!({"data": {"name": " laptop ", "description": "notebook", "expires_at": "2999-01-01T00:00:00"}}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let key = created["data"]["key"].as_str().unwrap().to_owned();
    let key_id = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["name"], "laptop");
    assert_eq!(created["data"]["expires_at"], "2999-01-01T00:00:00.000000+00:00");
    let listed: Value = get("/v1/user/api_keys", &member).await.unwrap().json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(listed["data"][0].get("key").is_none(), "the key is shown once");
    let me: Value = get("/v1/user", &key).await.unwrap().json().await.unwrap();
    assert_eq!(me["data"]["username"], "mo", "the key acts as its owner");
    // API keys cannot create API keys; bad bodies are 422.
    let (status, text) =
        status_text(post("/v1/user/api_keys", &key, json!({"data": {"name": "x"}})).await.unwrap()).await;
    assert_eq!((status, text.as_str()), (403, "API keys cannot create API keys"));
    for bad in [
        json!({"data": {"name": "  "}}),
        json!({"data": {}}),
        json!({"name": "x"}),
        json!({"data": {"name": "x", "expires_at": "2001-01-01T00:00:00Z"}}),
        json!({"data": {"name": "x", "expires_at": "soon"}}),
    ] {
        let (status, _) = status_text(post("/v1/user/api_keys", &member, bad.clone()).await.unwrap()).await;
        assert_eq!(status, 422, "{bad}");
    }

    // Admin views of every user's keys; members are refused.
    let all: Value = get("/v1/users/api_keys?limit=10", &admin).await.unwrap().json().await.unwrap();
    let row = &all["data"][0];
    assert_eq!(row["id"], key_id.as_str());
    assert_eq!(row["user"]["username"], "mo");
    assert_eq!(row["user"]["email"], "mo@example.com");
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(get("/v1/users/api_keys", &member).await.unwrap().status(), 403);
    assert_eq!(status_text(get("/v1/users/api_keys?limit=1001", &admin).await.unwrap()).await.0, 422);

    // System keys: admins and the admin secret; members 403.
    let (status, text) =
        status_text(post("/v1/system/api_keys", &member, json!({"data": {"name": "x"}})).await.unwrap())
            .await;
    assert_eq!((status, text.as_str()), (403, "Only admin or system users can perform this action."));
    let system = post("/v1/system/api_keys", ADMIN_SECRET, json!({"data": {"name": "ci"}})).await.unwrap();
    assert_eq!(system.status(), 201);
    let system: Value = system.json().await.unwrap();
    let system_id = system["data"]["id"].as_str().unwrap().to_owned();
    let system_key = system["data"]["key"].as_str().unwrap().to_owned();
    assert!(system["data"].get("expires_at").is_none() && system["data"].get("description").is_none());
    let listed: Value = get("/v1/system/api_keys", &admin).await.unwrap().json().await.unwrap();
    assert_eq!(listed["data"][0]["id"], system_id.as_str());
    assert_eq!(get("/v1/system/api_keys", &member).await.unwrap().status(), 403);
    let own_of_system: Value = get("/v1/user/api_keys", &system_key).await.unwrap().json().await.unwrap();
    assert_eq!(own_of_system["data"], json!([]), "system principals own no user keys");

    // Deletion: wrong kinds and strangers are 404/422, then the key stops working at once.
    let (status, text) =
        status_text(delete(&format!("/v1/system/api_keys/{key_id}"), &admin).await.unwrap()).await;
    assert_eq!(status, 422, "{text}");
    let (status, _) =
        status_text(delete(&format!("/v1/user/api_keys/{system_id}"), &admin).await.unwrap()).await;
    assert_eq!(status, 422);
    let (_, other) = fixture.identity.user_with_role("eve", Role::Member).await;
    assert_eq!(
        status_text(delete(&format!("/v1/user/api_keys/{key_id}"), &other).await.unwrap()).await,
        (404, "API key not found".to_owned())
    );
    assert_eq!(delete(&format!("/v1/user/api_keys/{key_id}"), &member).await.unwrap().status(), 204);
    assert_401(get("/v1/user", &key).await.unwrap(), "Invalid token").await;
    assert_eq!(delete(&format!("/v1/system/api_keys/{system_id}"), &admin).await.unwrap().status(), 204);
    assert_eq!(
        status_text(delete(&format!("/v1/system/api_keys/{system_id}"), &admin).await.unwrap()).await,
        (404, "System API key not found".to_owned())
    );
    assert_401(get("/v1/user", &system_key).await.unwrap(), "Invalid token").await;
}

#[tokio::test]
async fn api_key_routes_refuse_when_auth_is_disabled() {
    let fixture = GatewayFixture::start_with(false, |env| env).await;
    let client = GatewayFixture::client();
    let expected = "This action requires authentication to be enabled. Set the PHOENIX_ENABLE_AUTH environment variable to true.";
    for response in [
        client.get(fixture.url("/v1/user/api_keys")).send().await.unwrap(),
        client
            .post(fixture.url("/v1/system/api_keys"))
            .json(&json!({"data": {"name": "x"}}))
            .send()
            .await
            .unwrap(),
        client.get(fixture.url("/v1/system/api_keys")).send().await.unwrap(),
    ] {
        assert_eq!(status_text(response).await, (403, expected.to_owned()));
    }
}
