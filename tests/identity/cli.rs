//! `ashgate users reset-password`: an operator sets a password from the command line.

use std::io::Write;
use std::process::{Command, Stdio};

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{IdentityFixture, internal};
use tonic::Code;

use crate::outcome;

/// Runs the real binary against the fixture's database with `password` on standard input.
fn reset_password(fx: &IdentityFixture, email: &str, password: &str, extra: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ashgate"))
        .args(["users", "reset-password", "--email", email])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("PHOENIX_SQL_DATABASE_URL", fx.database.url.expose())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_resets_a_password_offline() {
    let fx = IdentityFixture::start().await;
    let session = fx.login("admin@localhost", "admin").await;
    let email = "ADMIN@localhost";
    let (code, stderr) = tokio::task::block_in_place(|| reset_password(&fx, email, "from-the-cli-1", &[]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Password of admin (admin@localhost) changed"), "{stderr}");
    // The new password works and needs no change; the old one and its sessions are gone.
    let pair = fx.login("admin@localhost", "from-the-cli-1").await;
    assert!(!pair.password_needs_reset);
    let got = outcome(
        fx.auth().login(pb::LoginRequest { email: "admin@localhost".into(), password: "admin".into() }).await,
    );
    assert_eq!(got.0, Code::Unauthenticated);
    let got = outcome(
        fx.internal()
            .verify_credential(internal(pb::VerifyCredentialRequest { credential: session.access_token }))
            .await,
    );
    assert_eq!(got, (Code::Unauthenticated, "Invalid token".into()));
    // --must-change makes the user pick another at next sign-in.
    let (code, _) =
        tokio::task::block_in_place(|| reset_password(&fx, email, "from-the-cli-2", &["--must-change"]));
    assert_eq!(code, 0);
    assert!(fx.login("admin@localhost", "from-the-cli-2").await.password_needs_reset);
    // Both are in the audit log, by "command line", without the passwords.
    let request =
        pb::ListAuditEventsRequest { event_types: vec!["password_changed".into()], ..Default::default() };
    let events = pb::audit_service_client::AuditServiceClient::new(fx.channel())
        .list_audit_events(ashgate_testkit::identity::bearer(
            request,
            ashgate_testkit::identity::ADMIN_SECRET,
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let seen: Vec<(&str, &str, &str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.actor_type.as_str(),
                e.actor.as_str(),
                e.subject.as_str(),
                e.client_addr.as_str(),
                e.detail_json.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("command_line", "command line", "admin", "", r#"{"must_change":true,"own":false}"#),
            ("command_line", "command line", "admin", "", r#"{"must_change":false,"own":false}"#),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_errors_are_one_clear_line() {
    let fx = IdentityFixture::start().await;
    let cases = [
        ("nobody@example.com", "long-enough-1", "ashgate: User not found"),
        ("admin@localhost", "ab", "ashgate: Password must be at least 4 characters long"),
        ("system@localhost", "long-enough-1", "ashgate: Only local users have a password"),
    ];
    for (email, password, expected) in cases {
        let (code, stderr) = tokio::task::block_in_place(|| reset_password(&fx, email, password, &[]));
        assert_eq!(code, 1, "{email}: {stderr}");
        assert_eq!(stderr.lines().last().unwrap_or_default(), expected, "{stderr}");
    }
    // Nothing changed.
    fx.login("admin@localhost", "admin").await;
}
