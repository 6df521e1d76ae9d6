//! Refresh tokens and sign-out, as two browser tabs and a thief use them:
//! - two tabs renewing at once used to sign the user out: the loser's "reuse" revoked the
//!   family, the winner's new session included; now a second use within a short grace window
//!   gets a fresh pair of the same family, and only a reuse after it revokes the family;
//! - a spent (rotated) refresh token used to be enough to sign its user out everywhere; now
//!   only a live one identifies who signs out.

use std::time::Duration;

use ashgate_proto::identity as pb;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::gateway::deps::reqwest;
use futures::future::join_all;

use crate::support::{eventually, gateway_login, status_text, whoami};

/// identity-svc's grace window for a second use of one refresh token in these tests.
const GRACE_SECONDS: &str = "2";

fn access_cookie(response: &reqwest::Response) -> Option<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.strip_prefix("phoenix-access-token=").map(|r| r.split(';').next().unwrap_or("").to_owned())
    })
}

async fn refresh(fixture: &GatewayFixture, refresh_token: &str) -> reqwest::Response {
    GatewayFixture::client()
        .post(fixture.url("/auth/refresh"))
        .header("cookie", format!("phoenix-refresh-token={refresh_token}"))
        .header("origin", fixture.origin())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_renewing_at_once_keep_the_session() {
    let fixture = GatewayFixture::start_configured(
        true,
        |env| env.with("ASHGATE_REFRESH_REUSE_GRACE_SECONDS", GRACE_SECONDS),
        |env| env,
    )
    .await;
    fixture.identity.user_with_role("tabs", pb::Role::Member).await;
    let (_, refresh_token) = gateway_login(&fixture, "tabs@example.com", "user-password-1").await;
    let answers = join_all((0..5).map(|_| refresh(&fixture, &refresh_token))).await;
    let mut sessions = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), 204, "every tab renews");
        sessions.push(access_cookie(&answer).expect("a new access cookie"));
    }
    // Every renewed session works, the first one to win included, and stays working.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for access in &sessions {
        assert_eq!(whoami(&fixture, access).await.0, 200);
    }

    // After the grace window, a reuse is a replay: the whole family ends.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        status_text(refresh(&fixture, &refresh_token).await).await,
        (401, "Invalid refresh token".into())
    );
    for access in &sessions {
        let revoked =
            eventually(Duration::from_secs(1), || async { whoami(&fixture, access).await.0 == 401 }).await;
        assert!(revoked, "the family ends after a replay past the grace window");
    }
}

#[tokio::test]
async fn a_spent_refresh_token_cannot_sign_anyone_out() {
    let fixture = GatewayFixture::start().await;
    fixture.identity.user_with_role("spent", pb::Role::Member).await;
    let (_, old_refresh) = gateway_login(&fixture, "spent@example.com", "user-password-1").await;
    let renewed = refresh(&fixture, &old_refresh).await;
    assert_eq!(renewed.status(), 204);
    let access = access_cookie(&renewed).unwrap();
    // Someone holding only the spent refresh token "signs out".
    let logout = GatewayFixture::client()
        .get(fixture.url("/auth/logout"))
        .header("cookie", format!("phoenix-refresh-token={old_refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 302, "sign-out always answers");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(whoami(&fixture, &access).await.0, 200, "the user's live session survives");
}
