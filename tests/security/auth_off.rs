//! With authentication off (the default), anyone who reaches the port is "anonymous", which used
//! to be an admin to identity-svc: `POST /v1/users` created an ADMIN with a chosen password who
//! could sign in the day authentication was turned on. Now user and API-key management refuse
//! while authentication is off, over REST and over gRPC, and nothing is created.

use ashgate_proto::identity as pb;
use ashgate_testkit::gateway::GatewayFixture;
use serde_json::json;

use crate::support::status_text;

const AUTH_REQUIRED: &str = "This action requires authentication to be enabled. Set the PHOENIX_ENABLE_AUTH environment variable to true.";

#[tokio::test]
async fn management_refuses_while_authentication_is_off_and_nothing_can_sign_in_later() {
    let fixture = GatewayFixture::start_with(false, |env| env).await;
    let client = GatewayFixture::client();
    let admin = json!({"user": {"email": "mallory@example.com", "username": "mallory", "role": "ADMIN",
        "auth_method": "LOCAL", "password": "mallory-password-1"}});
    let key = json!({"data": {"name": "planted"}});
    let requests = [
        client.post(fixture.url("/v1/users")).json(&admin),
        client.get(fixture.url("/v1/users")),
        client.delete(fixture.url("/v1/users/VXNlcjoy")),
        client.post(fixture.url("/v1/system/api_keys")).json(&key),
        client.post(fixture.url("/v1/user/api_keys")).json(&key),
        client.get(fixture.url("/v1/system/api_keys")),
        client.get(fixture.url("/v1/users/api_keys")),
    ];
    for request in requests {
        let request = request.build().unwrap();
        let what = format!("{} {}", request.method(), request.url().path());
        let answer = status_text(client.execute(request).await.unwrap()).await;
        assert_eq!(answer, (403, AUTH_REQUIRED.to_owned()), "{what}");
    }

    // identity-svc refuses the same calls without a credential, whoever asks.
    let create = pb::CreateUserRequest {
        email: "mallory@example.com".into(),
        username: "mallory".into(),
        role: pb::Role::Admin.into(),
        auth_method: pb::AuthMethod::Local.into(),
        password: "mallory-password-1".into(),
        ..Default::default()
    };
    let refused = fixture.identity.users().create_user(create).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(refused.message(), "Authentication is not enabled");
    let role = pb::UpdateRoleRequest { user_id: 2, role: pb::Role::Viewer.into() };
    assert_eq!(
        fixture.identity.users().update_role(role).await.unwrap_err().code(),
        tonic::Code::FailedPrecondition
    );
    let password =
        pb::UpdatePasswordRequest { user_id: 2, new_password: "taken-over-1".into(), ..Default::default() };
    assert_eq!(
        fixture.identity.users().update_password(password).await.unwrap_err().code(),
        tonic::Code::FailedPrecondition
    );

    // The day authentication is turned on, nobody planted then can sign in.
    let on = fixture.identity.replica(|env| env.with("PHOENIX_ENABLE_AUTH", "true")).await;
    let login =
        pb::LoginRequest { email: "mallory@example.com".into(), password: "mallory-password-1".into() };
    let status = on.auth().login(login).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::Unauthenticated, "Invalid email and/or password")
    );
    let admin_token = on.admin_token().await;
    let users = on
        .users()
        .list_users(ashgate_testkit::identity::bearer(pb::ListUsersRequest::default(), &admin_token))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert!(users.iter().all(|u| u.email != "mallory@example.com"), "nothing was created");
}
