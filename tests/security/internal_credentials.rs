//! The internal credential collectors hold (to verify keys and follow revocations) used to be
//! enough for every internal call: completing an OAuth2 sign-in with whatever identity, role
//! and sign-up permission it liked (an admin session for anyone who read a collector's
//! environment), and naming the client address that lockouts count. Those now need the
//! gateway's own credential, `ASHGATE_GATEWAY_TOKEN`, which collectors never have.

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{GATEWAY_TOKEN, INTERNAL_TOKEN, IdentityFixture};
use tonic::{Code, Request};

fn with_tokens<T>(message: T, gateway: bool) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("x-ashgate-internal-token", INTERNAL_TOKEN.parse().unwrap());
    if gateway {
        request.metadata_mut().insert("x-ashgate-gateway-token", GATEWAY_TOKEN.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn a_collectors_credential_cannot_sign_anyone_in_or_name_addresses() {
    let fx = IdentityFixture::start().await;
    let mint = || pb::CompleteOAuth2SignInRequest {
        idp: "x".into(),
        client_id: "x".into(),
        subject: "1".into(),
        email: "minted@example.com".into(),
        username: "minted".into(),
        allow_sign_up: true,
        role: pb::Role::Admin.into(),
        email_verified: true,
        ..Default::default()
    };
    let status = fx.internal().complete_o_auth2_sign_in(with_tokens(mint(), false)).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::PermissionDenied, "This RPC is only for the ashgate gateway")
    );
    let reset = pb::RequestPasswordResetRequest { email: "admin@localhost".into() };
    let status = fx.auth().request_password_reset(with_tokens(reset, false)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // Verification, what collectors need, still works with the internal credential alone.
    let key = fx.system_key("k").await;
    let verify = pb::VerifyCredentialRequest { credential: key };
    assert!(fx.internal().verify_credential(with_tokens(verify, false)).await.is_ok());

    // A client address named with only the internal credential is not believed: five failures
    // "from" five addresses are five failures from this peer, which is then locked.
    for i in 0..5 {
        let mut login = with_tokens(
            pb::LoginRequest { email: "admin@localhost".into(), password: "guess".into() },
            false,
        );
        login.metadata_mut().insert("x-ashgate-client-addr", format!("192.0.2.{i}").parse().unwrap());
        assert_eq!(fx.auth().login(login).await.unwrap_err().code(), Code::Unauthenticated);
    }
    let login = pb::LoginRequest { email: "admin@localhost".into(), password: "admin".into() };
    assert_eq!(fx.auth().login(login).await.unwrap_err().code(), Code::ResourceExhausted);

    // The gateway's credential completes a sign-in (the gateway verified the ID token).
    assert!(fx.internal().complete_o_auth2_sign_in(with_tokens(mint(), true)).await.is_ok());
}
