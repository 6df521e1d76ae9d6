//! Refresh tokens and sign-out, as two browser tabs and a thief use them:
//! - two tabs renewing at once used to sign the user out: the loser's "reuse" revoked the
//!   family, the winner's new session included; now a second use within a short grace window
//!   gets a fresh pair of the same family, and only a reuse after it revokes the family;
//! - a spent (rotated) refresh token used to be enough to sign its user out everywhere; now it
//!   ends only its own family (whoever renewed it: a thief, when the owner signs out with it);
//! - a refresh racing a sign-out could leave a live pair behind.

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
async fn a_spent_refresh_token_signs_out_its_own_family_only() {
    let fixture = GatewayFixture::start().await;
    fixture.identity.user_with_role("spent", pb::Role::Member).await;
    let (elsewhere, _) = gateway_login(&fixture, "spent@example.com", "user-password-1").await;
    let (_, old_refresh) = gateway_login(&fixture, "spent@example.com", "user-password-1").await;
    let renewed = refresh(&fixture, &old_refresh).await;
    assert_eq!(renewed.status(), 204);
    let access = access_cookie(&renewed).unwrap();
    // Someone holding only the spent refresh token "signs out": it used to end every session of
    // the user; now it ends the family it belongs to (whoever renewed it) and nothing else.
    let logout = GatewayFixture::client()
        .get(fixture.url("/auth/logout"))
        .header("cookie", format!("phoenix-refresh-token={old_refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 302, "sign-out always answers");
    let ended =
        eventually(Duration::from_secs(1), || async { whoami(&fixture, &access).await.0 == 401 }).await;
    assert!(ended, "the family the spent token belongs to ends");
    assert_eq!(whoami(&fixture, &elsewhere).await.0, 200, "the user's other session survives");
}

/// A thief who renewed a stolen refresh token holds the only live session of that family; the
/// victim, signing out with the now-spent token, must end it (it used to identify nobody, so
/// the thief stayed signed in, renewing for ever).
#[tokio::test]
async fn signing_out_with_a_stolen_and_spent_token_ends_the_thiefs_session() {
    let fx = ashgate_testkit::identity::IdentityFixture::start().await;
    fx.user_with_role("robbed", pb::Role::Member).await;
    let other = fx.login("robbed@example.com", "user-password-1").await;
    let victim = fx.login("robbed@example.com", "user-password-1").await;
    let refresh_request =
        |token: &str| pb::RefreshRequest { refresh_token: token.into(), ..Default::default() };
    let thief = fx.auth().refresh(refresh_request(&victim.refresh_token)).await.unwrap().into_inner();
    let logout = pb::LogoutRequest { refresh_token: victim.refresh_token.clone() };
    fx.auth().logout(ashgate_testkit::identity::bearer(logout, &victim.access_token)).await.unwrap();
    let authenticate = |token: &str| {
        let request = ashgate_testkit::identity::bearer(pb::AuthenticateRequest {}, token);
        let mut auth = fx.auth();
        async move { auth.authenticate(request).await }
    };
    let status = authenticate(&thief.access_token).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (tonic::Code::Unauthenticated, "Invalid token"));
    let status = fx.auth().refresh(refresh_request(&thief.refresh_token)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (tonic::Code::Unauthenticated, "Invalid refresh token"));
    // A session of another sign-in (another family) is not the thief's: it survives.
    assert!(authenticate(&other.access_token).await.is_ok());
}

/// A refresh in flight while the user signs out everywhere must not leave a live session
/// behind (the new pair used to be inserted after the sign-out's delete). PostgreSQL only: the
/// race is forced by locking the users table, which SQLite's single writer cannot model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_racing_a_sign_out_does_not_survive_it() {
    let fx = ashgate_testkit::identity::IdentityFixture::start().await;
    if !fx.database.is_postgres() {
        return;
    }
    fx.user_with_role("racer", pb::Role::Member).await;
    let stolen = fx.login("racer@example.com", "user-password-1").await;
    let owner = fx.login("racer@example.com", "user-password-1").await;
    let lock = ashgate_testkit::faults::TableLock::hold(&fx.database, "users").await.unwrap();
    let mut auth = fx.auth();
    let token = stolen.refresh_token.clone();
    let renewal = tokio::spawn(async move {
        auth.refresh(pb::RefreshRequest { refresh_token: token, ..Default::default() }).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut auth = fx.auth();
    let owner_token = owner.access_token.clone();
    let sign_out = tokio::spawn(async move {
        auth.logout(ashgate_testkit::identity::bearer(pb::LogoutRequest::default(), &owner_token)).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.release().await.unwrap();
    let renewed = renewal.await.unwrap();
    sign_out.await.unwrap().unwrap();
    if let Ok(pair) = renewed {
        let pair = pair.into_inner();
        let request = ashgate_testkit::identity::bearer(pb::AuthenticateRequest {}, &pair.access_token);
        let status = fx.auth().authenticate(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "a pair renewed during sign-out survived it");
    }
}
