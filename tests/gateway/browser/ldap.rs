//! LDAP sign-in in real headless Chromium: the sign-in page shows the LDAP form beside the
//! local form and an OpenID Provider's button; a wrong password is shown under the LDAP form;
//! the right one opens the settings page of an LDAP admin; with `PHOENIX_DISABLE_BASIC_AUTH`
//! only the local form is gone.

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::ldap::{Slapd, Tls};
use ashgate_testkit::oidc::OidcProvider;

use super::full_page;
use super::webdriver::{Browser, Driver, binaries};
use crate::oauth2::{Idp, gateway_for};

async fn ldap_sign_in(browser: &Browser, fixture: &GatewayFixture, username: &str, password: &str) {
    browser.goto(&fixture.url("/login")).await;
    browser.fill("#ldap-username", username).await;
    browser.fill("#ldap-password", password).await;
    browser.click("#ldap-sign-in").await;
}

#[tokio::test]
async fn ldap_sign_in_in_chromium() {
    let Some((chromium, chromedriver)) = binaries() else {
        assert!(
            std::env::var("ASHGATE_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1"),
            "chromium and chromedriver are required (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let slapd = Slapd::start().await;
    let op = OidcProvider::start().await;
    let directory = slapd.env(Tls::StartTls, "127.0.0.1");
    let identity_env: Vec<(&str, &str)> = directory.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let idps = [Idp::new("test", &[("DISPLAY_NAME", "Test OpenID Provider")])];
    let fixture = gateway_for(&op, &idps, &identity_env, &[("PHOENIX_LDAP_HOST", "127.0.0.1")]).await;
    let driver = Driver::start(&chromedriver).await;
    let browser = driver.session(&chromium).await;

    // Local form, then the LDAP form, then the provider's button.
    browser.goto(&fixture.url("/login")).await;
    browser.find("#email").await;
    assert_eq!(browser.text("label[for='ldap-username']").await, "LDAP Username");
    assert_eq!(browser.text("label[for='ldap-password']").await, "LDAP Password");
    assert_eq!(browser.text("a[href='/oauth2/test/login']").await, "Sign in with Test OpenID Provider");
    let order = browser
        .script(
            "const at = s => document.documentElement.innerHTML.indexOf(s); \
             return at('id=\"email\"') < at('id=\"ldap-form\"') && at('id=\"ldap-form\"') < at('/oauth2/test/login')",
        )
        .await;
    assert_eq!(order, serde_json::Value::Bool(true), "local, LDAP, then providers");
    full_page(&browser, "12-sign-in-with-ldap").await;

    // A wrong password: the message under the LDAP form, the username kept.
    ldap_sign_in(&browser, &fixture, "alice", "not-her-password").await;
    assert_eq!(browser.text("#ldap-error").await, "Invalid username and/or password");
    assert_eq!(browser.value("#ldap-username").await, "alice");
    assert_eq!(browser.value("#ldap-password").await, "");
    full_page(&browser, "13-sign-in-ldap-wrong-password").await;

    // Alice is in the directory's admins group: an admin, whose sign-in method is LDAP.
    ldap_sign_in(&browser, &fixture, "alice", "alice-password").await;
    browser.wait_for_path("/settings").await;
    assert!(browser.source().await.contains("alice@example.com"));
    browser.find("#users").await;
    assert_eq!(browser.text("tr[data-email='alice@example.com'] td:nth-child(4)").await, "LDAP");
    assert!(browser.all("#change-password-link").await.is_empty(), "no password of ours to change");
    full_page(&browser, "14-settings-ldap-admin").await;
    browser.click("#sign-out").await;
    browser.wait_for_path("/login").await;
    browser.quit().await;

    // Without password sign-in, the LDAP form stays.
    let off = [("PHOENIX_DISABLE_BASIC_AUTH", "true"), ("PHOENIX_LDAP_HOST", "127.0.0.1")];
    let mut identity_env = identity_env.clone();
    identity_env.push(("PHOENIX_DISABLE_BASIC_AUTH", "true"));
    let ldap_only = gateway_for(&op, &idps, &identity_env, &off).await;
    let browser = driver.session(&chromium).await;
    browser.goto(&ldap_only.url("/login")).await;
    browser.find("#ldap-form").await;
    assert!(browser.all("#email").await.is_empty(), "no local form");
    full_page(&browser, "15-sign-in-ldap-without-basic-auth").await;
    ldap_sign_in(&browser, &ldap_only, "bob", "bob-password").await;
    browser.wait_for_path("/settings").await;
    assert!(browser.source().await.contains("bob@example.com"));
    browser.quit().await;
}
