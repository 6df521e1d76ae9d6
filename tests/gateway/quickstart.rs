//! `gateway/quickstart.sh` (curl only) against a real gateway: it creates a system key with the
//! admin secret and sends a trace through `/v1/traces` on the gateway.

use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::ADMIN_SECRET;
use serde_json::Value;

#[tokio::test]
async fn quickstart_script_sends_a_trace() {
    let fixture = GatewayFixture::start().await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway/quickstart.sh");
    let base = fixture.url("");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg(script)
            .env("PHOENIX_URL", base)
            .env("PHOENIX_ADMIN_SECRET", ADMIN_SECRET)
            .output()
            .expect("run quickstart.sh (needs sh and curl)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "quickstart failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(fixture.collector.span_count().await, 1);
    let key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PHOENIX_API_KEY="))
        .expect("the key is printed")
        .to_owned();
    let spans: Value = GatewayFixture::client()
        .get(fixture.url("/v1/projects/quickstart/spans"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spans["data"][0]["name"], "quickstart");
    assert_eq!(spans["data"][0]["span_kind"], "CHAIN");
}
