//! Browser flows of issue 6 in real headless Chromium: sign-in with the test OpenID Provider
//! (button → the provider's form → back signed in), and password recovery (forgot password →
//! the mailed link → new password → sign in).

use ashgate_proto::identity as pb;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::oidc::OidcProvider;
use ashgate_testkit::smtp::SmtpServer;

use super::full_page;
use super::webdriver::{Driver, binaries};
use crate::oauth2::{Idp, gateway_for};

fn browser_binaries() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let found = binaries();
    if found.is_none() {
        assert!(
            std::env::var("ASHGATE_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1"),
            "chromium and chromedriver are required (apt-get install chromium chromium-driver)"
        );
        eprintln!("browser test skipped: ASHGATE_SKIP_BROWSER_TESTS=1");
    }
    found
}

#[tokio::test]
async fn oauth2_sign_in_in_chromium() {
    let Some((chromium, chromedriver)) = browser_binaries() else { return };
    let op = OidcProvider::start().await;
    let idps = [Idp::new("test", &[("DISPLAY_NAME", "Test OpenID Provider")])];
    let fixture = gateway_for(&op, &idps, &[], &[]).await;
    let driver = Driver::start(&chromedriver).await;
    let browser = driver.session(&chromium).await;

    browser.goto(&fixture.url("/login")).await;
    let button = "a[href='/oauth2/test/login']";
    assert_eq!(browser.text(button).await, "Sign in with Test OpenID Provider");
    full_page(&browser, "08-sign-in-with-provider").await;
    browser.click(button).await;
    // The provider's own form.
    browser.find("#login").await;
    assert!(browser.url().await.starts_with(&op.issuer));
    browser.fill("#login", "alice").await;
    browser.fill("#password", "alice-password").await;
    browser.click("#submit").await;
    // Back at the gateway, signed in.
    browser.wait_for_path("/").await;
    browser.find("#projects").await;
    assert!(browser.source().await.contains("alice@example.com"));
    full_page(&browser, "09-signed-in-with-provider").await;
    let cookies = browser.cookies().await;
    assert!(cookies.iter().any(|(n, _)| n == "phoenix-access-token"));
    assert!(!cookies.iter().any(|(n, _)| n.starts_with("phoenix-oauth2-")), "OAuth2 cookies are deleted");

    // Signed out of ashgate, still signed in at the provider: the button signs straight back in.
    browser.click("#sign-out").await;
    browser.wait_for_path("/login").await;
    browser.click(button).await;
    browser.wait_for_path("/").await;
    browser.find("#projects").await;
    // A failure lands on the sign-in page with a readable message.
    browser.click("#sign-out").await;
    browser.wait_for_path("/login").await;
    browser.goto(&fixture.url("/oauth2/test/tokens?error=access_denied")).await;
    browser.wait_for_path("/login").await;
    assert_eq!(
        browser.text("#login-error").await,
        "Authentication failed. Please contact your administrator."
    );
    browser.quit().await;
}

#[tokio::test]
async fn password_recovery_in_chromium() {
    let Some((chromium, chromedriver)) = browser_binaries() else { return };
    let smtp = SmtpServer::start().await;
    let fixture = GatewayFixture::start_with_smtp(smtp.env(), &[]).await;
    fixture.identity.user_with_role("dave", pb::Role::Member).await;
    let driver = Driver::start(&chromedriver).await;
    let browser = driver.session(&chromium).await;

    browser.goto(&fixture.url("/login")).await;
    browser.click("a[href='/forgot-password']").await;
    browser.fill("#email", "dave@example.com").await;
    full_page(&browser, "10-forgot-password").await;
    browser.click("#send-reset").await;
    assert!(browser.text("#forgot-sent").await.contains("on its way"));
    let mails = smtp.wait_for(1).await;
    let link = mails.first().and_then(|m| m.reset_link()).expect("a reset link");

    browser.goto(&link).await;
    browser.fill("#new_password", "dave-new-password").await;
    browser.fill("#confirm_password", "dave-new-password").await;
    full_page(&browser, "11-reset-password").await;
    browser.click("#reset-password").await;
    browser.wait_for_path("/login").await;
    assert!(browser.source().await.contains("Your password was reset"));
    browser.fill("#email", "dave@example.com").await;
    browser.fill("#password", "dave-new-password").await;
    browser.click("#sign-in").await;
    browser.wait_for_path("/").await;
    browser.find("#projects").await;

    // The link is spent.
    browser.goto(&link).await;
    browser.fill("#new_password", "dave-third-password").await;
    browser.fill("#confirm_password", "dave-third-password").await;
    browser.click("#reset-password").await;
    assert!(browser.text("#reset-error").await.contains("invalid, already used or expired"));
    browser.quit().await;
}
