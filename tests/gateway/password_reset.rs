//! Password recovery by email against a real SMTP server (Python `aiosmtpd` with AUTH
//! required, started by the harness): the mail and its link, single use, a second request
//! voiding the first, expiry, AUTH, and a mail server that is down or refuses us.

use std::sync::{Arc, Mutex};

use ashgate_proto::identity as pb;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::smtp::{SMTP_USERNAME, SmtpServer};
use serde_json::json;

use crate::support::{assert_401, login_cookies, page, status_text};

const EMAIL: &str = "carol@example.com";

/// A local user `carol` who has changed her initial password; returns her id.
async fn carol(fixture: &GatewayFixture) -> i64 {
    fixture.identity.user_with_role("carol", pb::Role::Member).await.0
}

async fn request(fixture: &GatewayFixture, body: serde_json::Value) -> (u16, String) {
    let response = GatewayFixture::client()
        .post(fixture.url("/auth/password-reset-email"))
        .header("referer", fixture.url("/forgot-password"))
        .json(&body)
        .send()
        .await
        .unwrap();
    status_text(response).await
}

async fn reset(
    fixture: &GatewayFixture,
    token: &str,
    password: &str,
) -> ashgate_testkit::gateway::deps::reqwest::Response {
    GatewayFixture::client()
        .post(fixture.url("/auth/password-reset"))
        .json(&json!({"token": token, "password": password}))
        .send()
        .await
        .unwrap()
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn the_mailed_link_works_once_and_ends_every_session() {
    let smtp = SmtpServer::start().await;
    let fixture = GatewayFixture::start_with_smtp(smtp.env(), &[]).await;
    carol(&fixture).await;
    let session = login_cookies(&fixture, EMAIL, "user-password-1").await;

    // Validation first, then the same answer for unknown and known emails.
    assert_eq!(request(&fixture, json!({"email": ""})).await, (422, "Email required".into()));
    assert_eq!(request(&fixture, json!({})).await, (422, "Email required".into()));
    assert_eq!(request(&fixture, json!({"email": "ghost@example.com"})).await.0, 204);
    assert_eq!(request(&fixture, json!({"email": "Carol@Example.com"})).await.0, 204);
    let mails = smtp.wait_for(1).await;
    let mail = mails.first().unwrap();
    assert_eq!(mails.len(), 1, "nothing is sent for an unknown email");
    assert_eq!(mail.rcpt_tos, [EMAIL]);
    assert_eq!(mail.mail_from, "ashgate@example.com");
    assert_eq!(mail.auth_user.as_deref(), Some(SMTP_USERNAME), "the mail was sent after AUTH");
    assert!(mail.subject.contains("Password Reset"), "{}", mail.subject);
    let link = mail.reset_link().expect("a reset link in the mail");
    assert!(link.starts_with(&fixture.url("/reset-password-with-token?token=")), "{link}");
    assert!(mail.html.contains("reset-password-with-token?token="));

    // Only the gateway may ask identity-svc directly: the caller chooses where the link points.
    let direct = pb::RequestPasswordResetRequest { email: EMAIL.into() };
    let refused = fixture.identity.auth().request_password_reset(direct).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // The link opens the page with the form.
    let page = GatewayFixture::client().get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Choose a new password") && page.contains("name=\"token\""));

    // Rules: a password is required; a policy violation is 400, not 500; a wrong token is 401.
    let token = token_of(&link);
    assert_eq!(status_text(reset(&fixture, &token, "").await).await, (422, "Password required".into()));
    let (status, text) = status_text(reset(&fixture, &token, "a b").await).await;
    assert_eq!(status, 400, "{text}");
    assert_401(reset(&fixture, "not-a-token", "carol-new-password").await, "Invalid token").await;

    // It works once; every session ends.
    assert_eq!(reset(&fixture, &token, "carol-new-password").await.status(), 204);
    assert_401(reset(&fixture, &token, "carol-other-password").await, "Invalid token").await;
    let me = GatewayFixture::client()
        .get(fixture.url("/v1/user"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401, "the old session is gone");
    login_cookies(&fixture, EMAIL, "carol-new-password").await;
    let old = json!({"email": EMAIL, "password": "user-password-1"});
    let response = GatewayFixture::client().post(fixture.url("/auth/login")).json(&old).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_new_request_voids_the_old_link_and_links_expire() {
    let smtp = SmtpServer::start().await;
    // 0.05 minutes: links live 3 s here.
    let fixture = GatewayFixture::start_with_smtp(
        smtp.env(),
        &[
            ("PHOENIX_PASSWORD_RESET_TOKEN_EXPIRY_MINUTES", "0.05"),
            ("ASHGATE_PASSWORD_RESET_COOLDOWN_SECONDS", "0"),
        ],
    )
    .await;
    carol(&fixture).await;
    assert_eq!(request(&fixture, json!({"email": EMAIL})).await.0, 204);
    smtp.wait_for(1).await;
    assert_eq!(request(&fixture, json!({"email": EMAIL})).await.0, 204);
    let mails = smtp.wait_for(2).await;
    let first = token_of(&mails.first().unwrap().reset_link().unwrap());
    let second = token_of(&mails.get(1).unwrap().reset_link().unwrap());
    assert_ne!(first, second);
    assert_401(reset(&fixture, &first, "carol-new-password").await, "Invalid token").await;
    assert_eq!(reset(&fixture, &second, "carol-new-password").await.status(), 204, "the newest link works");

    // A link used after its expiry is refused.
    assert_eq!(request(&fixture, json!({"email": EMAIL})).await.0, 204);
    let mails = smtp.wait_for(3).await;
    let third = token_of(&mails.get(2).unwrap().reset_link().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_401(reset(&fixture, &third, "carol-third-password").await, "Invalid token").await;
}

#[tokio::test]
async fn the_server_refuses_mail_without_the_right_credentials() {
    let smtp = SmtpServer::start().await;
    let mut env = smtp.env();
    for (key, value) in &mut env {
        if *key == "PHOENIX_SMTP_PASSWORD" {
            *value = "wrong-password".into();
        }
    }
    let fixture = GatewayFixture::start_with_smtp(env, &[]).await;
    carol(&fixture).await;
    assert_eq!(request(&fixture, json!({"email": EMAIL})).await.0, 204, "the request does not wait on SMTP");
    let stats = fixture.identity.identity.mail_stats().expect("SMTP configured");
    for _ in 0..300 {
        if stats.failed() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!((stats.sent(), stats.failed()), (0, 1));
    assert!(smtp.messages().is_empty(), "nothing was delivered");
    assert!(smtp.auth_failures().iter().any(|l| l.ends_with(SMTP_USERNAME)), "{:?}", smtp.auth_failures());
}

/// A `tracing` writer that keeps what is logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_mail_server_that_is_down_is_logged_and_does_not_block() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    // The test runtime runs every task on this thread, identity-svc's included.
    let _guard = tracing::subscriber::set_default(subscriber);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = vec![
        ("PHOENIX_SMTP_HOSTNAME", "127.0.0.1".to_owned()),
        ("PHOENIX_SMTP_PORT", port.to_string()),
        ("PHOENIX_SMTP_USERNAME", "u".to_owned()),
        ("PHOENIX_SMTP_PASSWORD", "p".to_owned()),
    ];
    let fixture = GatewayFixture::start_with_smtp(env, &[]).await;
    carol(&fixture).await;
    assert_eq!(request(&fixture, json!({"email": EMAIL})).await.0, 204);
    let stats = fixture.identity.identity.mail_stats().expect("SMTP configured");
    for _ in 0..600 {
        if stats.failed() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stats.failed(), 1);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("SMTP server did not take the mail"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(!text.contains("token="), "the reset link is never logged");
}

#[tokio::test]
async fn without_smtp_recovery_is_503_and_not_offered() {
    let fixture = GatewayFixture::start().await;
    assert_eq!(
        request(&fixture, json!({"email": "admin@localhost"})).await,
        (503, "SMTP server not configured".into())
    );
    let page = page(&fixture, "/login").await;
    assert!(!page.contains("Forgot password"));
    let page = GatewayFixture::client()
        .post(fixture.url("/forgot-password"))
        .header("origin", fixture.origin())
        .form(&[("email", "admin@localhost")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("Ask an administrator to reset your password"));
}
