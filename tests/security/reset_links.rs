//! Where a password-reset link points is decided by configuration only. A forged `Host` (and a
//! `Referer` naming the same host, both written by the attacker) once made ashgate mail the
//! victim a working link to the attacker's server. Now identity-svc refuses to start with SMTP
//! and without `PHOENIX_ROOT_URL`, and builds every link from it, scheme and sub-path kept.

use ashgate_identity::IdentityConfig;
use ashgate_proto::identity as pb;
use ashgate_runtime::env::Env;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::smtp::SmtpServer;
use serde_json::json;

#[test]
fn smtp_without_a_root_url_does_not_start() {
    let env = Env::from_pairs([
        ("PHOENIX_WORKING_DIR", std::env::temp_dir().join("ashgate-reset-links").display().to_string()),
        ("PHOENIX_ENABLE_AUTH", "true".into()),
        ("PHOENIX_SECRET", "test-secret-0123456789abcdefghijklmnop".into()),
        ("PHOENIX_SMTP_HOSTNAME", "smtp.example.com".into()),
        ("PHOENIX_SMTP_USERNAME", "mailer".into()),
        ("PHOENIX_SMTP_PASSWORD", "mail-password".into()),
    ]);
    let err = IdentityConfig::from_env(&env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "PHOENIX_ROOT_URL: is required when PHOENIX_SMTP_HOSTNAME is set (mailed links are built from it, never from a request)"
    );
    let err = IdentityConfig::from_env(&env.clone().with("PHOENIX_ROOT_URL", "evil.example")).unwrap_err();
    assert_eq!(err.to_string(), "PHOENIX_ROOT_URL: must be an absolute http(s) URL with a host");
    assert!(IdentityConfig::from_env(&env.with("PHOENIX_ROOT_URL", "https://ashgate.example/")).is_ok());
}

#[tokio::test]
async fn a_forged_host_and_referer_do_not_move_the_link() {
    let smtp = SmtpServer::start().await;
    let smtp_env = smtp.env();
    let fixture = GatewayFixture::start_configured(
        true,
        |mut env| {
            for (k, v) in smtp_env {
                env = env.with(k, v);
            }
            env.with("PHOENIX_ROOT_URL", "https://ashgate.example/phoenix/")
        },
        // The gateway lets the forged host through (a proxy in front might), to show that it
        // does not matter.
        |env| env.with("PHOENIX_SMTP_HOSTNAME", "127.0.0.1").with("ASHGATE_ALLOWED_HOSTS", "evil.example"),
    )
    .await;
    fixture.identity.user_with_role("victim", pb::Role::Admin).await;
    let response = GatewayFixture::client()
        .post(fixture.url("/auth/password-reset-email"))
        .header("host", "evil.example")
        .header("referer", "http://evil.example/forgot-password")
        .json(&json!({"email": "victim@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let mails = smtp.wait_for(1).await;
    let link = mails[0].reset_link().expect("a reset link");
    assert!(
        link.starts_with("https://ashgate.example/phoenix/reset-password-with-token?token="),
        "the link must come from PHOENIX_ROOT_URL (https kept, sub-path kept): {link}"
    );
    assert!(!mails[0].html.contains("evil.example") && !mails[0].text.contains("evil.example"));
}
