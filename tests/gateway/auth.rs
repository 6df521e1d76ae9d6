//! `/auth/login`, `/auth/logout`, `/auth/refresh` with Phoenix's contract.

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::ADMIN_PASSWORD;
use serde_json::json;

use crate::support::{assert_401, cookie, set_cookies, status_text};

#[tokio::test]
async fn login_sets_phoenix_cookies() {
    let fixture = GatewayFixture::start().await;
    fixture.identity.admin_token().await;
    let client = GatewayFixture::client();
    let response = client
        .post(fixture.url("/auth/login"))
        .json(&json!({"email": "Admin@LocalHost ", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 2);
    for (name, max_age) in [("phoenix-access-token", 600), ("phoenix-refresh-token", 7 * 24 * 3600)] {
        let c = cookie(&cookies, name);
        assert!(!c.value.is_empty());
        assert_eq!(c.attr("httponly"), Some(""), "{name}");
        assert_eq!(c.attr("samesite"), Some("Strict"), "{name}");
        assert_eq!(c.attr("path"), Some("/"), "{name}");
        assert_eq!(c.attr("secure"), None, "{name}");
        assert_eq!(c.attr("domain"), None, "{name}");
        let age: i64 = c.attr("max-age").unwrap().parse().unwrap();
        assert!((max_age - 5..=max_age).contains(&age), "{name} max-age {age}");
    }
    // The access cookie authenticates REST calls.
    let access = cookie(&cookies, "phoenix-access-token").value.clone();
    let me = client
        .get(fixture.url("/v1/user"))
        .header("cookie", format!("phoenix-access-token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let body: serde_json::Value = me.json().await.unwrap();
    assert_eq!(body["data"]["email"], "admin@localhost");
    assert_eq!(body["data"]["role"], "ADMIN");
}

#[tokio::test]
async fn login_errors_have_phoenix_texts() {
    let fixture = GatewayFixture::start().await;
    let client = GatewayFixture::client();
    let url = fixture.url("/auth/login");
    for body in [
        json!({}),
        json!({"email": "a@b.c"}),
        json!({"email": "", "password": "x"}),
        json!({"email": 5, "password": "x"}),
    ] {
        assert_401(client.post(&url).json(&body).send().await.unwrap(), "Email and password required").await;
    }
    let wrong = json!({"email": "admin@localhost", "password": "nope"});
    assert_401(client.post(&url).json(&wrong).send().await.unwrap(), "Invalid email and/or password").await;
    let unknown = json!({"email": "ghost@example.com", "password": "nope"});
    assert_401(client.post(&url).json(&unknown).send().await.unwrap(), "Invalid email and/or password").await;
    // Malformed and oversized bodies are clear 4xx, never 500.
    let json_body = |body: Vec<u8>| client.post(&url).header("content-type", "application/json").body(body);
    let (status, text) = status_text(json_body(b"{not json".to_vec()).send().await.unwrap()).await;
    assert_eq!(status, 422, "{text}");
    let (status, _) = status_text(json_body(vec![b' '; 70_000]).send().await.unwrap()).await;
    assert_eq!(status, 413);
    let (status, text) = status_text(client.post(&url).body("{}").send().await.unwrap()).await;
    assert_eq!((status, text.as_str()), (415, "Content-Type must be application/json"));
    // Brute force: after five failures the lock answers 429 with Phoenix's text (a unique
    // email, so a Redis shared between parallel tests locks nobody else).
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let email = format!("locked-{nanos}@example.com");
    let guess = json!({"email": email, "password": "guess"});
    for _ in 0..5 {
        client.post(&url).json(&guess).send().await.unwrap();
    }
    let locked = client.post(&url).json(&guess).send().await.unwrap();
    assert_eq!(
        status_text(locked).await,
        (429, "Too many failed login attempts. Please try again later.".to_owned())
    );
}

#[tokio::test]
async fn refresh_rotates_and_logout_revokes() {
    let fixture = GatewayFixture::start().await;
    fixture.identity.admin_token().await;
    let client = GatewayFixture::client();
    let login = client
        .post(fixture.url("/auth/login"))
        .json(&json!({"email": "admin@localhost", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookies = set_cookies(login.headers());
    let access = cookie(&cookies, "phoenix-access-token").value.clone();
    let refresh = cookie(&cookies, "phoenix-refresh-token").value.clone();

    assert_401(client.post(fixture.url("/auth/refresh")).send().await.unwrap(), "Missing refresh token")
        .await;
    let bogus = client
        .post(fixture.url("/auth/refresh"))
        .header("cookie", "phoenix-refresh-token=garbage")
        .header("origin", fixture.origin())
        .send()
        .await
        .unwrap();
    assert_401(bogus, "Invalid refresh token").await;

    let rotated = client
        .post(fixture.url("/auth/refresh"))
        .header("cookie", format!("phoenix-access-token={access}; phoenix-refresh-token={refresh}"))
        .header("origin", fixture.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 204);
    let new_cookies = set_cookies(rotated.headers());
    let new_access = cookie(&new_cookies, "phoenix-access-token").value.clone();
    let new_refresh = cookie(&new_cookies, "phoenix-refresh-token").value.clone();
    assert_ne!(new_access, access);
    // The old pair is spent.
    let old = client
        .get(fixture.url("/v1/user"))
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_401(old, "Invalid token").await;
    let me = client
        .get(fixture.url("/v1/user"))
        .header("authorization", format!("Bearer {new_access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // Sign-out: 302 to /login, every cookie cleared, the session revoked at once.
    let logout = client
        .get(fixture.url("/auth/logout"))
        .header("cookie", format!("phoenix-access-token={new_access}; phoenix-refresh-token={new_refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 302);
    assert_eq!(logout.headers()["location"], "/login");
    let cleared = set_cookies(logout.headers());
    for name in
        ["phoenix-access-token", "phoenix-refresh-token", "phoenix-oauth2-state", "phoenix-oauth2-nonce"]
    {
        let c = cookie(&cleared, name);
        assert_eq!(c.value, "");
        assert_eq!(c.attr("max-age"), Some("0"));
    }
    let after = client
        .get(fixture.url("/v1/user"))
        .header("cookie", format!("phoenix-access-token={new_access}"))
        .send()
        .await
        .unwrap();
    assert_401(after, "Invalid token").await;
    // Logging out without any credential still redirects.
    let anonymous = client.get(fixture.url("/auth/logout")).send().await.unwrap();
    assert_eq!(anonymous.status(), 302);
}

#[tokio::test]
async fn auth_routes_are_absent_when_auth_is_disabled() {
    let fixture = GatewayFixture::start_with(false, |env| env).await;
    let client = GatewayFixture::client();
    let response = client
        .post(fixture.url("/auth/login"))
        .json(&json!({"email": "a", "password": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let me: serde_json::Value =
        client.get(fixture.url("/v1/user")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me, json!({"data": {"auth_method": "ANONYMOUS"}}));
}

#[tokio::test]
async fn cookies_follow_configuration_and_root_path() {
    let fixture = GatewayFixture::start_with(true, |env| {
        env.with("PHOENIX_USE_SECURE_COOKIES", "true")
            .with("PHOENIX_COOKIES_PATH", "/phoenix")
            .with("PHOENIX_HOST_ROOT_PATH", "/phoenix")
    })
    .await;
    fixture.identity.admin_token().await;
    let client = GatewayFixture::client();
    let login = client
        .post(fixture.url("/auth/login"))
        .json(&json!({"email": "admin@localhost", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 204);
    let cookies = set_cookies(login.headers());
    let access = cookie(&cookies, "phoenix-access-token");
    assert_eq!(access.attr("secure"), Some(""));
    assert_eq!(access.attr("path"), Some("/phoenix"));
    let logout = client.get(fixture.url("/auth/logout")).send().await.unwrap();
    assert_eq!(logout.headers()["location"], "/phoenix/login");
}
