//! The happy path and what must fail: wrong or missing state, a replayed callback, a provider
//! that misbehaves (nonce, audience, expiry, issuer, signature, no ID token, refusal), unsafe
//! return URLs, unknown providers, and a provider that is down at start-up.

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::oidc::{Consent, OidcProvider};

use super::{
    Idp, callback, gateway_for, login_error, login_request, session_cookies, sign_in, start, whoami,
};
use crate::support::{cookie, page, set_cookies};

const TEST: Idp<'static> = Idp::new("test", &[]);

#[tokio::test]
async fn sign_in_signs_up_a_member_and_sets_phoenix_cookies() {
    let op = OidcProvider::start().await;
    let fixture = gateway_for(&op, &[TEST], &[], &[]).await;

    // The button on the sign-in page.
    let page = page(&fixture, "/login").await;
    assert!(page.contains("Sign in with Test"), "{page}");
    assert!(page.contains("/oauth2/test/login"));

    let started = start(&fixture, "test", Some("/settings?tab=keys")).await;
    let authorize = reqwest_url(&started.authorize_url);
    assert!(started.authorize_url.starts_with(&op.issuer));
    let param = |name: &str| authorize.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"), "PKCE S256 always");
    assert!(param("code_challenge").is_some_and(|c| c.len() >= 43));
    assert_eq!(param("client_id").as_deref(), Some("test-client"));
    assert_eq!(param("redirect_uri"), Some(fixture.url("/oauth2/test/tokens")));
    let scope = param("scope").unwrap();
    assert!(["openid", "email", "profile"].iter().all(|s| scope.split(' ').any(|x| x == *s)), "{scope}");
    for name in ["phoenix-oauth2-state", "phoenix-oauth2-nonce", "phoenix-oauth2-code-verifier"] {
        let c = cookie(&started.cookies, name);
        assert!(!c.value.is_empty(), "{name}");
        assert_eq!(c.attr("httponly"), Some(""), "{name}");
        assert_eq!(c.attr("samesite"), Some("Lax"), "{name}");
        assert_eq!(c.attr("max-age"), Some("900"), "{name}");
        assert_eq!(c.attr("path"), Some("/"), "{name}");
    }
    assert_eq!(
        param("state").as_deref(),
        Some(cookie(&started.cookies, "phoenix-oauth2-state").value.as_str())
    );
    assert_eq!(
        param("nonce").as_deref(),
        Some(cookie(&started.cookies, "phoenix-oauth2-nonce").value.as_str())
    );

    let back = op.authorize(&started.authorize_url, Consent::SignIn("alice", "alice-password")).await;
    assert!(back.starts_with(&fixture.url("/oauth2/test/tokens?")), "{back}");
    let response = callback(&back, &started.cookie_header()).await;
    assert_eq!(response.status(), 302, "{:?}", login_error(&response));
    assert_eq!(super::location(&response), "/settings?tab=keys", "a relative return URL");
    let cookies = set_cookies(response.headers());
    assert_eq!(cookie(&cookies, "phoenix-access-token").attr("samesite"), Some("Strict"));
    for name in ["phoenix-oauth2-state", "phoenix-oauth2-nonce", "phoenix-oauth2-code-verifier"] {
        assert!(cookies.iter().any(|c| c.name == name && c.attr("max-age") == Some("0")), "{name} deleted");
    }
    let me = whoami(&fixture, &session_cookies(&response)).await;
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["username"], "Alice Liddell");
    assert_eq!(me["role"], "VIEWER", "new OAuth2 users are viewers (Phoenix)");
    assert_eq!(me["auth_method"], "OAUTH2");
    assert_eq!(me["oauth2_client_id"], "test-client");
    assert_eq!(me["oauth2_user_id"], "alice");
    assert_eq!(me["profile_picture_url"], "https://example.com/alice.png");

    // The same code again (a replayed callback): the provider refuses it.
    let replay = callback(&back, &started.cookie_header()).await;
    assert_eq!(login_error(&replay).as_deref(), Some("oauth_error"));
    // The browser's own replay carries no OAuth cookies any more.
    assert_eq!(login_error(&callback(&back, "").await).as_deref(), Some("invalid_state"));

    // Signing in again finds the same user.
    let again = sign_in(&fixture, &op, "test", "alice", "alice-password").await;
    assert_eq!(whoami(&fixture, &session_cookies(&again)).await["id"], me["id"]);
}

fn reqwest_url(url: &str) -> ashgate_testkit::gateway::deps::reqwest::Url {
    ashgate_testkit::gateway::deps::reqwest::Url::parse(url).unwrap()
}

#[tokio::test]
async fn wrong_state_and_misbehaving_provider_are_refused() {
    let op = OidcProvider::start().await;
    let fixture = gateway_for(&op, &[TEST], &[], &[]).await;

    // State in the URL that is not the cookie's.
    let started = start(&fixture, "test", None).await;
    let back = op.authorize(&started.authorize_url, Consent::SignIn("alice", "alice-password")).await;
    let mut tampered = reqwest_url(&back);
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .map(|(k, v)| {
            let value = if k == "state" { format!("{v}x") } else { v.into_owned() };
            (k.into_owned(), value)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(
        login_error(&callback(tampered.as_str(), &started.cookie_header()).await).as_deref(),
        Some("invalid_state")
    );
    // A state from another authorization request (cookie and URL disagree).
    let other = start(&fixture, "test", None).await;
    assert_eq!(login_error(&callback(&back, &other.cookie_header()).await).as_deref(), Some("invalid_state"));

    // The provider issues an ID token that must not verify; only that one claim is wrong.
    for (mode, expected) in [
        ("wrong_nonce", "auth_failed"),
        ("wrong_audience", "auth_failed"),
        ("expired", "auth_failed"),
        ("wrong_issuer", "auth_failed"),
        ("bad_signature", "auth_failed"),
        ("no_id_token", "no_oidc_support"),
    ] {
        op.set_mode(mode).await;
        let response = sign_in(&fixture, &op, "test", "alice", "alice-password").await;
        assert_eq!(login_error(&response).as_deref(), Some(expected), "{mode}");
        let cookies = set_cookies(response.headers());
        assert!(cookies.iter().all(|c| !c.name.starts_with("phoenix-access")), "{mode}: no session");
    }
    op.set_mode("").await;

    // The person cancels at the provider: error=access_denied comes back.
    let started = start(&fixture, "test", None).await;
    let back = op.authorize(&started.authorize_url, Consent::Cancel).await;
    assert!(back.contains("error=access_denied"), "{back}");
    assert_eq!(login_error(&callback(&back, &started.cookie_header()).await).as_deref(), Some("auth_failed"));

    // Nobody was signed up by any of that; a good sign-in still works.
    let ok = sign_in(&fixture, &op, "test", "alice", "alice-password").await;
    assert_eq!(ok.status(), 302);

    // Each code has a readable message on the sign-in page.
    for (code, text) in [
        ("invalid_state", "Invalid authentication state"),
        ("auth_failed", "Authentication failed"),
        ("no_oidc_support", "does not appear to support OpenID Connect"),
        ("oauth_error", "Authentication failed. Please try again."),
    ] {
        let page = page(&fixture, &format!("/login?error={code}")).await;
        assert!(page.contains(text), "{code}: {page}");
    }
}

#[tokio::test]
async fn unsafe_return_urls_and_unknown_providers() {
    let op = OidcProvider::start().await;
    let fixture = gateway_for(&op, &[TEST], &[], &[]).await;
    for bad in [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/%2F%2Fevil.example",
        "evil",
        "/\t/evil",
    ] {
        let response = login_request(&fixture, "test", Some(bad)).await;
        assert_eq!(login_error(&response).as_deref(), Some("unsafe_return_url"), "{bad:?}");
    }
    assert!(page(&fixture, "/login?error=unsafe_return_url").await.contains("Invalid return URL"));
    // Unknown providers, at both routes.
    assert_eq!(login_error(&login_request(&fixture, "nope", None).await).as_deref(), Some("unknown_idp"));
    let response = callback(&fixture.url("/oauth2/nope/tokens?code=x&state=y"), "").await;
    assert_eq!(login_error(&response).as_deref(), Some("unknown_idp"));
    assert!(page(&fixture, "/login?error=unknown_idp").await.contains("Unknown identity provider"));
    // No return URL: the start page.
    let response = sign_in(&fixture, &op, "test", "bob", "bob-password").await;
    assert_eq!(super::location(&response), "/");
}

#[tokio::test]
async fn provider_down_at_start_is_retried_not_fatal() {
    // A port with nothing on it yet; the provider comes up there later.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let discovery = format!("http://127.0.0.1:{port}/.well-known/openid-configuration");
    let fixture = GatewayFixture::start_with(true, |env| {
        env.with("PHOENIX_OAUTH2_LATE_CLIENT_ID", "late-client")
            .with("PHOENIX_OAUTH2_LATE_CLIENT_SECRET", super::CLIENT_SECRET)
            .with("PHOENIX_OAUTH2_LATE_OIDC_CONFIG_URL", discovery.as_str())
            .with("PHOENIX_DISABLE_RATE_LIMIT", "true")
    })
    .await;
    // The gateway serves; the button is there and answers with a readable error.
    assert!(page(&fixture, "/login").await.contains("Sign in with Late"));
    let response = login_request(&fixture, "late", None).await;
    assert_eq!(login_error(&response).as_deref(), Some("provider_unavailable"));
    let page = page(&fixture, "/login?error=provider_unavailable").await;
    assert!(page.contains("cannot be reached right now"));

    // Once the provider is up, the same button works.
    let port_text = port.to_string();
    let op = OidcProvider::start_with(&[("OIDC_PORT", port_text.as_str())]).await;
    op.register_client(
        "late-client",
        Some(super::CLIENT_SECRET),
        &fixture.url("/oauth2/late/tokens"),
        "client_secret_basic",
    )
    .await;
    let mut status = 0;
    for _ in 0..50 {
        let response = login_request(&fixture, "late", None).await;
        status = response.status().as_u16();
        if status == 302 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, 302, "discovery succeeds once the provider answers");
    let response = sign_in(&fixture, &op, "late", "alice", "alice-password").await;
    assert_eq!(response.status(), 302, "{:?}", login_error(&response));
}

#[tokio::test]
async fn everything_lives_under_the_root_path() {
    let op = OidcProvider::start().await;
    let fixture = gateway_for(&op, &[TEST], &[], &[("PHOENIX_HOST_ROOT_PATH", "/phoenix")]).await;
    let page = page(&fixture, "/login").await;
    assert!(page.contains("href=\"/phoenix/oauth2/test/login\""), "{page}");
    let started = start(&fixture, "test", Some("/settings")).await;
    let authorize = reqwest_url(&started.authorize_url);
    let redirect_uri =
        authorize.query_pairs().find(|(k, _)| k == "redirect_uri").map(|(_, v)| v.into_owned());
    assert_eq!(redirect_uri, Some(fixture.url("/oauth2/test/tokens")));
    assert!(redirect_uri.unwrap().contains("/phoenix/oauth2/test/tokens"));
    let back = op.authorize(&started.authorize_url, Consent::SignIn("alice", "alice-password")).await;
    let response = callback(&back, &started.cookie_header()).await;
    assert_eq!(response.status(), 302);
    assert_eq!(super::location(&response), "/phoenix/settings");
    let failed = login_request(&fixture, "nope", None).await;
    assert_eq!(failed.status(), 307);
    assert_eq!(super::location(&failed), "/phoenix/login?error=unknown_idp");
}
