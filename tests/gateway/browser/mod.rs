//! Browser flows in real headless Chromium: first admin sign-in → forced password change →
//! settings → a member and a system key → sign out; the member's view; wrong password; sign-out
//! clears cookies. Screenshots of every page land in `tests/artifacts/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; set `ASHGATE_SKIP_BROWSER_TESTS=1` to skip
//! where they cannot be installed.

mod home;
mod ldap;
mod recovery;
mod webdriver;

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::reqwest;

use webdriver::{Browser, Driver, binaries};

/// Takes a screenshot of the whole page (the window is grown to the page's height first).
pub(crate) async fn full_page(browser: &Browser, name: &str) {
    let height = browser.script("return document.documentElement.scrollHeight").await.as_u64().unwrap_or(900);
    browser.resize(1280, u32::try_from(height.clamp(700, 4000)).unwrap() + 160).await;
    browser.screenshot(name).await;
    browser.resize(1280, 900).await;
}

async fn sign_in(browser: &Browser, fixture: &GatewayFixture, email: &str, password: &str) {
    browser.goto(&fixture.url("/login")).await;
    browser.fill("#email", email).await;
    browser.fill("#password", password).await;
    browser.click("#sign-in").await;
}

async fn change_password(browser: &Browser, current: &str, new: &str) {
    browser.fill("#current_password", current).await;
    browser.fill("#new_password", new).await;
    browser.fill("#confirm_password", new).await;
    browser.click("#change-password").await;
}

fn phoenix_cookies(cookies: &[(String, String)]) -> Vec<String> {
    cookies.iter().filter(|(n, _)| n.starts_with("phoenix-")).map(|(n, _)| n.clone()).collect()
}

#[tokio::test]
async fn sign_in_settings_and_sign_out_in_chromium() {
    let Some((chromium, chromedriver)) = binaries() else {
        if std::env::var("ASHGATE_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
            eprintln!("browser test skipped: ASHGATE_SKIP_BROWSER_TESTS=1");
            return;
        }
        panic!("chromium and chromedriver are required (apt-get install chromium chromium-driver)");
    };
    let fixture = GatewayFixture::start().await;
    let driver = Driver::start(&chromedriver).await;
    let browser = driver.session(&chromium).await;

    // The sign-in page.
    browser.goto(&fixture.url("/")).await;
    browser.wait_for_path("/login").await;
    browser.find("form input#email").await;
    full_page(&browser, "01-sign-in").await;

    // Wrong password: the message appears in the page.
    sign_in(&browser, &fixture, "admin@localhost", "wrong-password").await;
    assert_eq!(browser.text("#login-error").await, "Invalid email and/or password");
    assert_eq!(browser.value("#email").await, "admin@localhost", "the email is kept");
    full_page(&browser, "02-sign-in-wrong-password").await;

    // First sign-in of the default admin: forced password change before anything else.
    sign_in(&browser, &fixture, "admin@localhost", "admin").await;
    browser.wait_for_path("/change-password").await;
    assert_eq!(browser.text("#password-title").await, "Choose a new password");
    browser.goto(&fixture.url("/settings")).await;
    browser.wait_for_path("/change-password").await;
    full_page(&browser, "03-forced-password-change").await;
    change_password(&browser, "admin", "admin").await;
    assert_eq!(browser.text("#password-error").await, "Choose a password different from the current one.");
    change_password(&browser, "admin", "admin-password-9").await;
    browser.wait_for_path("/settings").await;
    assert!(browser.text("#notice").await.starts_with("Your password was changed"));

    // Admin settings: create a member and a system key.
    browser.find("#users").await;
    browser.fill("#new-email", "member@example.com").await;
    browser.fill("#new-username", "member").await;
    browser.select("#new-role", "MEMBER").await;
    browser.fill("#new-password", "member-initial-1").await;
    browser.click("#add-user").await;
    assert!(browser.text("#notice").await.starts_with("User added"));
    assert!(browser.source().await.contains("member@example.com"));

    browser.fill("#system-key-name", "ci-exporter").await;
    browser.fill("#system-key-description", "Traces from CI").await;
    browser.click("#create-system-key-button").await;
    let key = browser.value("#new-key-value").await;
    assert!(key.starts_with("ey") && key.len() > 40, "a JWT is shown once: {key}");
    browser.click_in_page("#copy-key").await;
    // The clipboard write resolves asynchronously; give the page a moment (it says "Copied" for 2 s).
    let mut copied = serde_json::Value::Bool(false);
    for _ in 0..30 {
        copied = browser
            .script("return document.getElementById('copy-key').textContent === 'Copied' || document.activeElement.id === 'new-key-value'")
            .await;
        if copied == serde_json::Value::Bool(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(copied, serde_json::Value::Bool(true), "the copy button copies or selects the key");
    full_page(&browser, "04-settings-admin-new-system-key").await;
    // The key works, and is not shown again.
    let me = reqwest::Client::new().get(fixture.url("/v1/user")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(me.status(), 200);
    browser.goto(&fixture.url("/settings")).await;
    assert!(browser.all("#new-key-value").await.is_empty());
    assert!(!browser.source().await.contains(&key));
    assert!(browser.source().await.contains("ci-exporter"));
    full_page(&browser, "05-settings-admin").await;

    // Sign out: cookies gone, the old session revoked, back at sign-in.
    let cookies = browser.cookies().await;
    let access = cookies
        .iter()
        .find(|(n, _)| n == "phoenix-access-token")
        .map(|(_, v)| v.clone())
        .expect("access cookie");
    assert!(cookies.iter().any(|(n, _)| n == "phoenix-refresh-token"));
    browser.click("#sign-out").await;
    browser.wait_for_path("/login").await;
    assert_eq!(phoenix_cookies(&browser.cookies().await), Vec::<String>::new());
    let old = reqwest::Client::new().get(fixture.url("/v1/user")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(old.status(), 401, "the signed-out session is revoked at once");

    // The member: forced change (REST/page-created users must), then no admin settings.
    sign_in(&browser, &fixture, "member@example.com", "member-initial-1").await;
    browser.wait_for_path("/change-password").await;
    change_password(&browser, "member-initial-1", "member-password-2").await;
    browser.wait_for_path("/settings").await;
    assert!(browser.all("#users").await.is_empty(), "members see no user management");
    assert!(browser.all("#system-keys").await.is_empty(), "members see no system keys");
    assert!(!browser.source().await.contains("System API keys"));
    browser.fill("#key-name", "notebook").await;
    browser.click("#create-user-key-button").await;
    assert!(browser.text("#new-key-title").await.contains("notebook"));
    full_page(&browser, "06-settings-member").await;
    browser.click("#sign-out").await;
    assert_eq!(phoenix_cookies(&browser.cookies().await), Vec::<String>::new());
    full_page(&browser, "07-signed-out").await;

    browser.quit().await;
}
