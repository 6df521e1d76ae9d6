//! The client address behind a proxy. Proxies append the address they saw on the *right* of
//! `X-Forwarded-For`; everything to its left is what the client wrote. ashgate used to take the
//! left-most entry (`ASHGATE_GATEWAY_TRUST_FORWARDED_FOR=true`), so a fake address per request
//! escaped the per-address limits. Now the address is the right-most entry that is not a
//! configured trusted proxy (`ASHGATE_TRUSTED_PROXIES`), or the entry as many hops from the
//! right as `ASHGATE_TRUSTED_PROXY_HOPS` says, and the old switch is refused at start-up.

use ashgate_gateway::GatewayConfig;
use ashgate_proto::identity as pb;
use ashgate_runtime::env::Env;
use ashgate_testkit::gateway::GatewayFixture;
use serde_json::json;

use crate::support::status_text;

const LOCKED: &str = "Too many failed login attempts. Please try again later.";

#[test]
fn the_left_most_switch_is_refused_and_the_new_settings_are_checked() {
    let err = |pairs: &[(&str, &str)]| {
        GatewayConfig::from_env(&Env::from_pairs(pairs.iter().copied())).unwrap_err().to_string()
    };
    assert_eq!(
        err(&[("ASHGATE_GATEWAY_TRUST_FORWARDED_FOR", "true")]),
        "ASHGATE_GATEWAY_TRUST_FORWARDED_FOR: is no longer supported (it trusted the left-most X-Forwarded-For entry, which the client writes): set ASHGATE_TRUSTED_PROXIES or ASHGATE_TRUSTED_PROXY_HOPS"
    );
    assert_eq!(
        err(&[("ASHGATE_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example")]),
        "ASHGATE_TRUSTED_PROXIES: \"proxy.example\" is not an IP address or network (e.g. 10.0.0.0/8)"
    );
    assert_eq!(
        err(&[("ASHGATE_TRUSTED_PROXIES", "10.0.0.0/33")]),
        "ASHGATE_TRUSTED_PROXIES: \"10.0.0.0/33\" is not an IP address or network (e.g. 10.0.0.0/8)"
    );
    assert_eq!(
        err(&[("ASHGATE_TRUSTED_PROXIES", "10.0.0.0/8"), ("ASHGATE_TRUSTED_PROXY_HOPS", "1")]),
        "ASHGATE_TRUSTED_PROXY_HOPS: set either ASHGATE_TRUSTED_PROXIES or ASHGATE_TRUSTED_PROXY_HOPS, not both"
    );
}

async fn attempt(fixture: &GatewayFixture, forwarded_for: &str, password: &str) -> (u16, String) {
    let response = GatewayFixture::client()
        .post(fixture.url("/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": "target@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    status_text(response).await
}

/// The test client connects from 127.0.0.1, which plays the trusted proxy; the proxy appended
/// the real client (198.51.100.x) to whatever the client sent.
async fn spoofing_does_not_escape_the_per_address_lock(setting: (&'static str, &'static str)) {
    let fixture = GatewayFixture::start_with(true, |env| env.with(setting.0, setting.1)).await;
    fixture.identity.user_with_role("target", pb::Role::Member).await;
    for i in 0..5 {
        let spoofed = format!("203.0.113.{i}, 198.51.100.7");
        let answer = attempt(&fixture, &spoofed, "guess").await;
        assert_eq!(answer, (401, "Invalid email and/or password".into()), "{setting:?} guess {i}");
    }
    let spoofed = "192.0.2.99, 198.51.100.7";
    assert_eq!(attempt(&fixture, spoofed, "user-password-1").await, (429, LOCKED.into()), "{setting:?}");
    // Another real client behind the same proxy is not locked out by the first one.
    assert_eq!(attempt(&fixture, "198.51.100.8", "user-password-1").await.0, 204, "{setting:?}");
}

#[tokio::test]
async fn trusted_proxy_networks_take_the_right_most_untrusted_entry() {
    spoofing_does_not_escape_the_per_address_lock(("ASHGATE_TRUSTED_PROXIES", "127.0.0.0/8, ::1")).await;
}

#[tokio::test]
async fn a_number_of_proxy_hops_takes_that_entry_from_the_right() {
    spoofing_does_not_escape_the_per_address_lock(("ASHGATE_TRUSTED_PROXY_HOPS", "1")).await;
}
