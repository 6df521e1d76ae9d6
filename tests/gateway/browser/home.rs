//! The home page in Chromium (issue 14): with authentication off it opens without sign-in and
//! shows where to send spans and what arrived; a project's page lists its spans, filters them
//! with Phoenix's span filters and pages back; with authentication on, signing in lands there
//! and a viewer may read it.

use ashgate_proto::identity::Role;
use ashgate_testkit::gateway::GatewayFixture;
use serde_json::{Value, json};

use super::webdriver::{Driver, binaries};
use super::{full_page, sign_in};

/// `n` spans of project `project`, one trace each; kinds cycle LLM, CHAIN, TOOL; every fifth errs.
fn export(project: &str, n: u64, first_second: u64) -> Value {
    let kinds = ["LLM", "CHAIN", "TOOL"];
    let names = ["chat-completion", "rag-pipeline", "web-search"];
    let spans: Vec<Value> = (0..n)
        .map(|i| {
            let start = (1_764_230_000 + first_second + i * 7) * 1_000_000_000;
            json!({
                "traceId": format!("{:032x}", 0x5000 + first_second * 1000 + i),
                "spanId": format!("{:016x}", 0x100 + i),
                "name": names[(i % 3) as usize],
                "kind": 1,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + 120_000_000 + i * 35_000_000).to_string(),
                "status": {"code": if i % 5 == 4 { 2 } else { 1 }},
                "attributes": [
                    {"key": "openinference.span.kind", "value": {"stringValue": kinds[(i % 3) as usize]}},
                    {"key": "llm.model_name", "value": {"stringValue": if i % 2 == 0 { "gpt-4o" } else { "claude-3-5-sonnet" }}}
                ]
            })
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "openinference.project.name", "value": {"stringValue": project}}]},
        "scopeSpans": [{"spans": spans}]
    }]})
}

async fn send(fixture: &GatewayFixture, key: Option<&str>, body: &Value) {
    let mut request = GatewayFixture::client().post(fixture.url("/v1/traces")).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

#[tokio::test]
async fn home_page_projects_and_spans_in_chromium() {
    let Some((chromium, chromedriver)) = binaries() else {
        if std::env::var("ASHGATE_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
            eprintln!("browser test skipped: ASHGATE_SKIP_BROWSER_TESTS=1");
            return;
        }
        panic!("chromium and chromedriver are required (apt-get install chromium chromium-driver)");
    };
    // Authentication off (the default): no sign-in, as Phoenix's UI.
    let fixture = GatewayFixture::start_with(false, |env| env).await;
    let driver = Driver::start(&chromedriver).await;
    let browser = driver.session(&chromium).await;
    browser.goto(&fixture.url("/")).await;
    browser.find("#no-projects").await;
    assert_eq!(browser.text("#auth-state").await, "Off: exporters need no key");
    assert_eq!(browser.text("#otlp-http").await, format!("{}/v1/traces", fixture.origin()));
    assert_eq!(browser.text("#otlp-grpc").await, fixture.collector.grpc_endpoint());
    assert!(
        browser
            .text("#setup-phoenix-otel")
            .await
            .contains(&format!("PHOENIX_COLLECTOR_ENDPOINT={}", fixture.origin()))
    );
    full_page(&browser, "12-home-empty").await;

    send(&fixture, None, &export("chatbot", 60, 0)).await;
    send(&fixture, None, &export("rag-eval", 3, 5_000)).await;
    browser.goto(&fixture.url("/")).await;
    let rows = browser.all("#projects tbody tr").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(browser.text("tr[data-project='chatbot'] td.num").await, "60");
    assert_eq!(browser.text("tr[data-project='rag-eval'] td:nth-child(3)").await, "2025-11-27 09:16:54 UTC");
    full_page(&browser, "13-home").await;

    // A project's spans: newest first, 50 a page, then the older ones.
    browser.click("tr[data-project='chatbot'] a").await;
    browser.find("#project-name").await;
    assert_eq!(browser.text("#project-name").await, "chatbot");
    assert_eq!(browser.all("#spans tbody tr").await.len(), 50);
    let first = browser.text("#spans tbody tr:first-child td:nth-child(5)").await;
    assert_eq!(first, "2025-11-27 08:00:13 UTC", "the newest span first");
    assert_eq!(browser.text("#spans tbody tr:first-child td:nth-child(4)").await, "2.19 s");
    full_page(&browser, "14-project-spans").await;
    browser.click("#next-page").await;
    browser.find("#spans").await;
    assert_eq!(browser.all("#spans tbody tr").await.len(), 10);
    assert!(browser.all("#next-page").await.is_empty());

    // Filters: errored LLM spans (i ≡ 0 mod 3 and i ≡ 4 mod 5: i = 9, 24, 39, 54).
    browser.goto(&fixture.url("/")).await;
    browser.click("tr[data-project='chatbot'] a").await;
    browser.select("#f-kind", "LLM").await;
    browser.select("#f-status", "ERROR").await;
    browser.click("#apply-filters").await;
    browser.find("#clear-filters").await;
    let rows = browser
        .script("return [...document.querySelectorAll('#spans tbody tr')].map(r => r.innerText)")
        .await;
    let names: Vec<String> =
        rows.as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.iter().all(|n| n.contains("chat-completion") && n.contains("ERROR")));
    full_page(&browser, "15-project-filtered").await;
    // An attribute filter, and a bad one explained on the page.
    browser.goto(&fixture.url("/")).await;
    browser.click("tr[data-project='chatbot'] a").await;
    browser.fill("#f-attribute", "llm.model_name:claude-3-5-sonnet").await;
    browser.click("#apply-filters").await;
    browser.find("#clear-filters").await;
    assert_eq!(browser.all("#spans tbody tr").await.len(), 30);
    browser.fill("#f-attribute", "no-colon").await;
    browser.click("#apply-filters").await;
    browser.find("#error").await;
    assert_eq!(browser.text("#error").await, "Invalid attribute 'no-colon': expected format 'key:value'");
    browser.quit().await;
}

#[tokio::test]
async fn sign_in_lands_on_the_home_page_for_every_role() {
    let Some((chromium, chromedriver)) = binaries() else {
        if std::env::var("ASHGATE_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
            return;
        }
        panic!("chromium and chromedriver are required (apt-get install chromium chromium-driver)");
    };
    let fixture = GatewayFixture::start().await;
    let key = fixture.identity.system_key("home").await;
    send(&fixture, Some(&key), &export("support-bot", 4, 0)).await;
    // Without a session the home page sends the browser to sign in.
    let anonymous = GatewayFixture::client().get(fixture.url("/")).send().await.unwrap();
    assert_eq!(
        (anonymous.status().as_u16(), anonymous.headers()["location"].to_str().unwrap()),
        (303, "/login")
    );
    fixture.identity.user_with_role("vera", Role::Viewer).await;
    let driver = Driver::start(&chromedriver).await;
    let browser = driver.session(&chromium).await;
    sign_in(&browser, &fixture, "vera@example.com", "user-password-1").await;
    browser.wait_for_path("/").await;
    browser.find("#projects").await;
    assert_eq!(browser.text("#auth-state").await, "On: exporters need an API key");
    assert!(browser.text("#setup-phoenix-otel").await.contains("PHOENIX_API_KEY="));
    assert_eq!(browser.text("tr[data-project='support-bot'] td.num").await, "4");
    full_page(&browser, "16-home-viewer").await;
    browser.click("tr[data-project='support-bot'] a").await;
    browser.find("#project-name").await;
    assert_eq!(browser.all("#spans tbody tr").await.len(), 4);
    browser.quit().await;
}
