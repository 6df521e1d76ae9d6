//! Which accounts exist must not show in how long `POST /auth/password-reset-email` takes: an
//! existing email used to cost a token write before the answer (p50 1.58 ms against 1.10 ms for
//! an unknown one). Now the answer comes before any work that depends on the account.
//!
//! Shown without a stopwatch: another connection holds the write lock that issuing a reset
//! token needs. The answer for an existing account must arrive while the lock is still held
//! (it did not wait for the write), and the mail must still go out once the lock is released.

use std::time::Duration;

use ashgate_proto::identity as pb;
use ashgate_testkit::faults::TableLock;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::smtp::SmtpServer;
use serde_json::json;

#[tokio::test]
async fn the_answer_does_not_wait_for_the_account() {
    let smtp = SmtpServer::start().await;
    let fixture = GatewayFixture::start_with_smtp(smtp.env(), &[]).await;
    fixture.identity.user_with_role("exists", pb::Role::Member).await;
    let lock = TableLock::hold(&fixture.identity.database, "password_reset_tokens").await.unwrap();
    for email in ["nobody@example.com", "exists@example.com"] {
        let request = GatewayFixture::client()
            .post(fixture.url("/auth/password-reset-email"))
            .json(&json!({"email": email}))
            .send();
        // identity-svc waits up to 5 s for a locked SQLite database; the answer must not.
        let answer = tokio::time::timeout(Duration::from_secs(3), request).await;
        let response = answer.unwrap_or_else(|_| panic!("{email}: the answer waited for the token write"));
        assert_eq!(response.unwrap().status(), 204, "{email}");
    }
    lock.release().await.unwrap();
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].rcpt_tos, ["exists@example.com"], "the work still happens, after the answer");
}
