//! `PHOENIX_DISABLE_BASIC_AUTH` on the gateway refuses password sign-in on every route: the
//! sign-in form's POST used to rely on identity-svc having the same setting, so in a split
//! deployment where only the gateway had it, passwords still signed in through the page.

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::oauth2::{Idp, gateway_for};
use ashgate_testkit::oidc::OidcProvider;
use serde_json::json;

#[tokio::test]
async fn the_sign_in_form_refuses_passwords_when_basic_auth_is_off() {
    let op = OidcProvider::start().await;
    let fixture =
        gateway_for(&op, &[Idp::new("test", &[])], &[], &[("PHOENIX_DISABLE_BASIC_AUTH", "true")]).await;
    let client = GatewayFixture::client();
    let form = client
        .post(fixture.url("/login"))
        .header("origin", fixture.origin())
        .form(&[("email", "admin@localhost"), ("password", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 403);
    assert!(form.headers().get("set-cookie").is_none(), "no session");
    let api = client
        .post(fixture.url("/auth/login"))
        .json(&json!({"email": "admin@localhost", "password": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 403);
}
