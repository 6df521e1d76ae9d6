//! `POST /auth/ldap/login`, the LDAP form of the sign-in page and LDAP users in the REST routes
//! and settings, against a real directory (`slapd` from the testkit).

use ashgate_runtime::env::Env;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::reqwest;
use ashgate_testkit::ldap::{Slapd, Tls};
use serde_json::{Value, json};

use crate::support::{assert_401, cookie, set_cookies, status_text};

const INVALID: &str = "Invalid username and/or password";

fn with(mut env: Env, pairs: &[(&str, String)]) -> Env {
    for (key, value) in pairs {
        env = env.with(key, value.clone());
    }
    env
}

/// identity-svc using `slapd` over StartTLS (plus `identity_extra`); the gateway with
/// `PHOENIX_LDAP_HOST` (plus `gateway_extra`).
async fn gateway(
    slapd: &Slapd,
    identity_extra: &[(&str, &str)],
    gateway_extra: &[(&str, &str)],
) -> GatewayFixture {
    let mut identity_env = slapd.env(Tls::StartTls, "127.0.0.1");
    identity_env.extend(identity_extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let mut gateway_env = vec![("PHOENIX_LDAP_HOST", "127.0.0.1".to_owned())];
    gateway_env.extend(gateway_extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    GatewayFixture::start_configured(true, |env| with(env, &identity_env), |env| with(env, &gateway_env))
        .await
}

async fn ldap_login(fixture: &GatewayFixture, body: Value) -> reqwest::Response {
    GatewayFixture::client().post(fixture.url("/auth/ldap/login")).json(&body).send().await.unwrap()
}

/// The `Cookie` header of a successful LDAP sign-in.
async fn session(fixture: &GatewayFixture, username: &str) -> String {
    let response =
        ldap_login(fixture, json!({"username": username, "password": format!("{username}-password")})).await;
    assert_eq!(response.status(), 204, "{username}");
    set_cookies(response.headers())
        .iter()
        .map(|c| format!("{}={}", c.name, c.value))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn get_json(fixture: &GatewayFixture, path: &str, cookies: &str) -> Value {
    let response =
        GatewayFixture::client().get(fixture.url(path)).header("cookie", cookies).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn ldap_sign_in_sets_phoenix_cookies_and_rest_shows_ldap_users() {
    let slapd = Slapd::start().await;
    let fixture = gateway(&slapd, &[], &[]).await;
    let response = ldap_login(&fixture, json!({"username": "alice", "password": "alice-password"})).await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 2);
    for name in ["phoenix-access-token", "phoenix-refresh-token"] {
        let c = cookie(&cookies, name);
        assert_eq!(
            (c.attr("httponly"), c.attr("samesite"), c.attr("path")),
            (Some(""), Some("Strict"), Some("/"))
        );
    }
    let alice = format!("phoenix-access-token={}", cookie(&cookies, "phoenix-access-token").value);

    // Phoenix's LDAP user: no password field, no OAuth2 fields.
    let me = get_json(&fixture, "/v1/user", &alice).await;
    let data = me["data"].as_object().unwrap();
    assert_eq!(
        (&data["auth_method"], &data["email"], &data["username"], &data["role"]),
        (&json!("LDAP"), &json!("alice@example.com"), &json!("Alice Admin"), &json!("ADMIN"))
    );
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["auth_method", "created_at", "email", "id", "role", "updated_at", "username"]);

    // Alice is an admin: she sees LDAP users in the list, and can pre-provision one.
    session(&fixture, "bob").await;
    let users = get_json(&fixture, "/v1/users", &alice).await;
    let bob = users["data"].as_array().unwrap().iter().find(|u| u["email"] == "bob@example.com").unwrap();
    assert_eq!((&bob["auth_method"], &bob["role"]), (&json!("LDAP"), &json!("MEMBER")));
    assert!(bob.get("password_needs_reset").is_none());
    let created = GatewayFixture::client()
        .post(fixture.url("/v1/users"))
        .header("cookie", &alice)
        .header("origin", fixture.origin())
        .json(&json!({"user": {"email": "Dave@Example.com", "username": "dave", "role": "VIEWER", "auth_method": "LDAP"}}))
        .send()
        .await
        .unwrap();
    let (status, text) = status_text(created).await;
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (&created["data"]["auth_method"], &created["data"]["email"]),
        (&json!("LDAP"), &json!("dave@example.com"))
    );
    assert!(created["data"].get("password_needs_reset").is_none());

    // The settings page lists LDAP users as such, without a password to reset.
    let page =
        GatewayFixture::client().get(fixture.url("/settings")).header("cookie", &alice).send().await.unwrap();
    let html = page.text().await.unwrap();
    let row =
        html.split("<tr data-email=\"bob@example.com\">").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains("<td>LDAP</td>"), "{row}");
    assert!(!row.contains("/password\""), "no password reset for an LDAP user: {row}");
    assert!(!html.contains("change-password-link"), "an LDAP user has no password of ours to change");
}

#[tokio::test]
async fn ldap_sign_in_errors_have_phoenix_texts() {
    let slapd = Slapd::start().await;
    let fixture = gateway(&slapd, &[], &[]).await;
    for body in [
        json!({}),
        json!({"username": "alice"}),
        json!({"username": "alice", "password": ""}),
        json!({"username": 1, "password": "x"}),
    ] {
        assert_401(ldap_login(&fixture, body.clone()).await, "Username and password required").await;
    }
    for (username, password) in [
        ("alice", "wrong"),
        ("carol", "carol-password"),
        ("*", "alice-password"),
        ("nobody", "x"),
        (" ", "x"),
    ] {
        assert_401(ldap_login(&fixture, json!({"username": username, "password": password})).await, INVALID)
            .await;
    }
    // The directory is gone: a clear 503, not "wrong password".
    drop(slapd);
    let down = ldap_login(&fixture, json!({"username": "alice", "password": "alice-password"})).await;
    assert_eq!(status_text(down).await, (503, "LDAP server unavailable. Please try again later.".into()));
}

#[tokio::test]
async fn ldap_sign_in_shares_the_auth_rate_limit() {
    let slapd = Slapd::start().await;
    let fixture = gateway(&slapd, &[("PHOENIX_DISABLE_RATE_LIMIT", "false")], &[]).await;
    // Phoenix's bucket of 12 per client address (different names: no brute-force lock).
    for i in 0..12 {
        let response = ldap_login(&fixture, json!({"username": format!("user{i}"), "password": "x"})).await;
        assert_eq!(response.status(), 401, "attempt {i}");
    }
    let limited = ldap_login(&fixture, json!({"username": "alice", "password": "alice-password"})).await;
    assert_eq!(status_text(limited).await, (429, "Too Many Requests".into()));
}

#[tokio::test]
async fn without_ldap_there_is_no_route_and_no_form() {
    let fixture = GatewayFixture::start().await;
    let response = ldap_login(&fixture, json!({"username": "alice", "password": "alice-password"})).await;
    assert_eq!(response.status(), 404);
    let page = crate::support::page(&fixture, "/login").await;
    assert!(page.contains("id=\"email\""));
    assert!(!page.contains("ldap"), "{page}");
}

#[tokio::test]
async fn the_sign_in_page_offers_ldap_beside_the_local_form() {
    let slapd = Slapd::start().await;
    let fixture = gateway(&slapd, &[], &[]).await;
    let page = crate::support::page(&fixture, "/login").await;
    for part in
        ["id=\"email\"", "id=\"ldap-form\"", "LDAP Username", "LDAP Password", "action=\"/login/ldap\""]
    {
        assert!(page.contains(part), "{part}");
    }
    let client = GatewayFixture::client();
    let post = |form: &'static [(&'static str, &'static str)]| {
        client.post(fixture.url("/login/ldap")).header("origin", fixture.origin()).form(form).send()
    };
    let wrong = post(&[("username", "bob"), ("password", "nope")]).await.unwrap();
    let (status, html) = status_text(wrong).await;
    assert_eq!(status, 401);
    assert!(html.contains("id=\"ldap-error\">Invalid username and/or password<"), "{html}");
    assert!(html.contains("value=\"bob\""), "the username is kept");
    assert!(!html.contains("nope"), "the password is not");
    let empty = post(&[("username", "bob"), ("password", "")]).await.unwrap();
    assert_eq!(empty.status(), 401);
    let ok = post(&[("username", "bob"), ("password", "bob-password")]).await.unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/settings");
    let cookies = set_cookies(ok.headers());
    let access = format!("phoenix-access-token={}", cookie(&cookies, "phoenix-access-token").value);
    assert_eq!(get_json(&fixture, "/v1/user", &access).await["data"]["email"], "bob@example.com");
}

#[tokio::test]
async fn disabling_basic_auth_hides_only_the_local_form() {
    let slapd = Slapd::start().await;
    let off = [("PHOENIX_DISABLE_BASIC_AUTH", "true")];
    let fixture = gateway(&slapd, &off, &off).await;
    let page = crate::support::page(&fixture, "/login").await;
    assert!(!page.contains("id=\"email\""), "no local form");
    assert!(page.contains("id=\"ldap-form\""));
    assert!(session(&fixture, "bob").await.contains("phoenix-access-token="));
    let local = GatewayFixture::client()
        .post(fixture.url("/auth/login"))
        .json(&json!({"email": "admin@localhost", "password": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 403);
}

#[tokio::test]
async fn a_cross_site_ldap_sign_in_is_refused() {
    let slapd = Slapd::start().await;
    let fixture = gateway(&slapd, &[], &[]).await;
    let client = GatewayFixture::client();
    let credentials = r#"{"username": "alice", "password": "alice-password"}"#;
    // Login CSRF: another site signing the victim's browser into someone else's account.
    for content_type in [None, Some("application/json"), Some("text/plain")] {
        let mut request = client
            .post(fixture.url("/auth/ldap/login"))
            .header("origin", "http://evil.example")
            .body(credentials);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert!(response.headers().get("set-cookie").is_none(), "{content_type:?}");
        assert_eq!(status_text(response).await, (401, "untrusted origin".into()), "{content_type:?}");
    }
    // A form post must say where it comes from.
    let form = client
        .post(fixture.url("/login/ldap"))
        .form(&[("username", "alice"), ("password", "alice-password")])
        .send()
        .await
        .unwrap();
    assert!(form.headers().get("set-cookie").is_none());
    assert_eq!(form.status(), 401);
    // A JSON body must say it is JSON, even from this site.
    let text = client
        .post(fixture.url("/auth/ldap/login"))
        .header("origin", fixture.origin())
        .header("content-type", "text/plain")
        .body(credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
    let same_site = client
        .post(fixture.url("/auth/ldap/login"))
        .header("origin", fixture.origin())
        .header("content-type", "application/json")
        .body(credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status(), 204);
}
