//! Every event identity-svc records, with its exact fields: password sign-ins (and their
//! failures, lockouts and rate limits, one row a minute), sign-outs, refresh-token reuse,
//! password changes and resets, user and API key changes, the admin secret, refused internal
//! credentials. And no password, token, key or link in any stored row.

use ashgate_proto::identity as pb;
use ashgate_testkit::gateway::GatewayFixture;
use ashgate_testkit::identity::{ADMIN_PASSWORD, ADMIN_SECRET, INTERNAL_TOKEN, bearer, internal};
use ashgate_testkit::smtp::SmtpServer;
use serde_json::{Value, json};
use tonic::Request;

use super::{aggregated, assert_no_secret_stored, facts, gid, id_of, of_type, wait_for};
use crate::support::{admin_cookies, login_cookies, status_text};

async fn login(fixture: &GatewayFixture, email: &str, password: &str) -> u16 {
    GatewayFixture::client()
        .post(fixture.url("/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn user(id: i64, name: &str) -> Value {
    json!({"type": "user", "id": gid("User", id), "name": name})
}

fn access_token(cookies: &str) -> String {
    cookies.split("; ").find_map(|c| c.strip_prefix("phoenix-access-token=")).unwrap().to_owned()
}

#[tokio::test]
async fn password_sign_ins_sign_outs_and_refresh_reuse() {
    let fixture = GatewayFixture::start_configured(
        true,
        |env| env.with("ASHGATE_REFRESH_REUSE_GRACE_SECONDS", "0"),
        |env| env,
    )
    .await;
    let (dora, _) = fixture.identity.user_with_role("dora", pb::Role::Member).await;
    let admin_id = fixture.identity.login("admin@localhost", ADMIN_PASSWORD).await.user_id;

    // Created by the admin (gRPC from 127.0.0.1), then her own forced password change.
    let created = of_type(&fixture, "user_created").await;
    assert_eq!(
        facts(&created[0]),
        json!({"type": "user_created", "count": 1, "actor": user(admin_id, "admin"), "subject": user(dora, "dora"),
               "user": gid("User", dora), "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"email": "dora@example.com", "role": "MEMBER", "auth_method": "LOCAL"}})
    );
    let changed = of_type(&fixture, "password_changed").await;
    let own = changed.iter().map(facts).find(|e| e["subject"]["id"] == gid("User", dora)).unwrap();
    assert_eq!(
        own,
        json!({"type": "password_changed", "count": 1, "actor": user(dora, "dora"), "subject": user(dora, "dora"),
               "user": gid("User", dora), "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"own": true, "must_change": false}})
    );

    // Two wrong passwords and an unknown email: one row per email (and minute), counted.
    assert_eq!(login(&fixture, "Dora@Example.com", "wrong-password-1").await, 401);
    assert_eq!(login(&fixture, "dora@example.com", "wrong-password-2").await, 401);
    assert_eq!(login(&fixture, "nobody@example.com", "wrong-password-3").await, 401);
    let failed = of_type(&fixture, "sign_in_failed").await;
    let for_dora: Vec<Value> =
        failed.iter().filter(|e| e["subject"]["name"] == "dora@example.com").cloned().collect();
    let (seen, total) = aggregated(&for_dora);
    assert_eq!(total, 2);
    assert_eq!(
        seen,
        [json!({"type": "sign_in_failed", "actor": null,
                "subject": {"type": "sign_in_name", "id": null, "name": "dora@example.com"},
                "user": null, "client_address": "127.0.0.1", "outcome": "failure", "detail": {"method": "password"}})]
    );
    assert!(failed.iter().any(|e| e["subject"]["name"] == "nobody@example.com" && e["count"] == 1));

    // Through the gateway: a sign-in, then a sign-out with the access cookie.
    let cookies = login_cookies(&fixture, "dora@example.com", "user-password-1").await;
    let signed_in = of_type(&fixture, "sign_in_succeeded").await;
    assert_eq!(
        facts(&signed_in[0]),
        json!({"type": "sign_in_succeeded", "count": 1, "actor": user(dora, "dora"), "subject": user(dora, "dora"),
               "user": gid("User", dora), "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"method": "password", "email": "dora@example.com"}})
    );
    let response = GatewayFixture::client()
        .get(fixture.url("/auth/logout"))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let signed_out = of_type(&fixture, "signed_out").await;
    assert_eq!(signed_out.len(), 1);
    assert_eq!(
        facts(&signed_out[0]),
        json!({"type": "signed_out", "count": 1, "actor": user(dora, "dora"), "subject": user(dora, "dora"),
               "user": gid("User", dora), "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"identified_by": "access_token"}})
    );

    // A refresh token used twice: the family is revoked, and that is recorded.
    let pair = fixture.identity.login("dora@example.com", "user-password-1").await;
    let mut auth = fixture.identity.auth();
    let first = pb::RefreshRequest { refresh_token: pair.refresh_token.clone(), ..Default::default() };
    auth.refresh(first.clone()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(auth.refresh(first).await.unwrap_err().message(), "Invalid refresh token");
    let reused = of_type(&fixture, "refresh_token_reused").await;
    assert_eq!(reused.len(), 1);
    let mut reused = facts(&reused[0]);
    assert!(reused["detail"]["session_family"].as_i64().unwrap() > 0);
    reused["detail"].as_object_mut().unwrap().remove("session_family");
    assert_eq!(
        reused,
        json!({"type": "refresh_token_reused", "count": 1, "actor": null, "subject": user(dora, "dora"),
               "user": gid("User", dora), "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"presented_to": "refresh"}})
    );

    let admin_token = fixture.identity.admin_token().await;
    assert_no_secret_stored(
        &fixture,
        &[
            "user-password-1",
            "initial-pass",
            "wrong-password-1",
            "wrong-password-2",
            ADMIN_PASSWORD,
            &access_token(&cookies),
            &pair.access_token,
            &pair.refresh_token,
            &admin_token,
            ADMIN_SECRET,
        ],
    )
    .await;
}

#[tokio::test]
async fn lockouts_and_rate_limits_cost_one_row_a_minute() {
    let fixture = GatewayFixture::start_configured(
        true,
        |env| env.with("PHOENIX_DISABLE_RATE_LIMIT", "false"),
        |env| env,
    )
    .await;
    let mut auth = fixture.identity.auth();
    let mut locked = 0;
    // Five failures lock this address out of the email (Phoenix: 5); the rest are refused.
    for attempt in 0..8 {
        let request =
            pb::LoginRequest { email: "eve@example.com".into(), password: format!("guess-{attempt}") };
        match auth.login(request).await {
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                assert_eq!(status.message(), "Too many failed login attempts. Please try again later.");
                locked += 1;
            }
            Err(status) => assert_eq!(status.message(), "Invalid email and/or password"),
            Ok(_) => panic!("eve does not exist"),
        }
    }
    assert_eq!(locked, 3);
    let (seen, total) = aggregated(&of_type(&fixture, "sign_in_failed").await);
    assert_eq!(total, 5);
    assert_eq!(seen[0]["subject"]["name"], "eve@example.com");
    let (seen, total) = aggregated(&of_type(&fixture, "sign_in_locked_out").await);
    assert_eq!(total, 3);
    assert_eq!(
        seen,
        [json!({"type": "sign_in_locked_out", "actor": null,
                "subject": {"type": "sign_in_name", "id": null, "name": "eve@example.com"},
                "user": null, "client_address": "127.0.0.1", "outcome": "refused", "detail": {"method": "password"}})]
    );

    // Phoenix's per-address limit (12 at once): a flood is counted, not stored row by row.
    let mut refused = 0;
    for _ in 0..30 {
        let request = pb::LoginRequest { email: "flood@example.com".into(), password: String::new() };
        if auth.login(request).await.unwrap_err().code() == tonic::Code::ResourceExhausted {
            refused += 1;
        }
    }
    assert!(refused >= 15, "{refused}");
    let (seen, total) = aggregated(&of_type(&fixture, "rate_limited").await);
    assert_eq!(total, refused);
    assert_eq!(
        seen,
        [json!({"type": "rate_limited", "actor": null, "subject": null, "user": null,
                "client_address": "127.0.0.1", "outcome": "refused", "detail": {"route": "login"}})]
    );
}

#[tokio::test]
async fn user_and_api_key_changes_name_who_what_and_how() {
    let fixture = GatewayFixture::start().await;
    let admin = admin_cookies(&fixture).await;
    let admin_token = access_token(&admin);
    let admin_id = fixture.identity.login("admin@localhost", ADMIN_PASSWORD).await.user_id;
    let client = GatewayFixture::client();

    // Created through REST by the admin's session.
    let body = json!({"user": {"email": "frank@example.com", "username": "frank", "role": "MEMBER",
                                "auth_method": "LOCAL", "password": "frank-initial-1"}});
    let response =
        client.post(fixture.url("/v1/users")).bearer_auth(&admin_token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let frank_gid = response.json::<Value>().await.unwrap()["data"]["id"].as_str().unwrap().to_owned();
    let frank = id_of(&frank_gid);
    let created: Vec<Value> = of_type(&fixture, "user_created")
        .await
        .iter()
        .filter(|e| e["subject"]["name"] == "frank")
        .cloned()
        .collect();
    assert_eq!(
        facts(&created[0]),
        json!({"type": "user_created", "count": 1, "actor": user(admin_id, "admin"), "subject": user(frank, "frank"),
               "user": frank_gid, "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"email": "frank@example.com", "role": "MEMBER", "auth_method": "LOCAL"}})
    );

    // Renamed, re-roled and given a password by the admin (gRPC, as the settings page does).
    let mut users = fixture.identity.users();
    let rename = pb::UpdateUsernameRequest { user_id: frank, username: "franklin".into() };
    users.update_username(bearer(rename, &admin_token)).await.unwrap();
    let role = pb::UpdateRoleRequest { user_id: frank, role: pb::Role::Viewer.into() };
    users.update_role(bearer(role, &admin_token)).await.unwrap();
    let password = pb::UpdatePasswordRequest {
        user_id: frank,
        new_password: "frank-by-admin-1".into(),
        ..Default::default()
    };
    users.update_password(bearer(password, &admin_token)).await.unwrap();
    let by_admin = |event_type: &str, subject: &str, detail: Value| {
        json!({"type": event_type, "count": 1, "actor": user(admin_id, "admin"), "subject": user(frank, subject),
               "user": gid("User", frank), "client_address": "127.0.0.1", "outcome": "success", "detail": detail})
    };
    assert_eq!(
        facts(&of_type(&fixture, "user_renamed").await[0]),
        by_admin("user_renamed", "frank", json!({"from": "frank", "to": "franklin"}))
    );
    assert_eq!(
        facts(&of_type(&fixture, "user_role_changed").await[0]),
        by_admin("user_role_changed", "franklin", json!({"from": "MEMBER", "to": "VIEWER"}))
    );
    let changed = of_type(&fixture, "password_changed").await;
    let for_frank = changed.iter().map(facts).find(|e| e["subject"]["id"] == gid("User", frank)).unwrap();
    assert_eq!(
        for_frank,
        by_admin("password_changed", "franklin", json!({"own": false, "must_change": true}))
    );

    // A user key, created and deleted by its owner (the admin) through REST.
    let response = client
        .post(fixture.url("/v1/user/api_keys"))
        .bearer_auth(&admin_token)
        .json(&json!({"data": {"name": "laptop"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created = response.json::<Value>().await.unwrap();
    let (key_gid, user_key) = (
        created["data"]["id"].as_str().unwrap().to_owned(),
        created["data"]["key"].as_str().unwrap().to_owned(),
    );
    let response = client
        .delete(fixture.url(&format!("/v1/user/api_keys/{key_gid}")))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let key_event =
        |event_type: &str, actor: Value, subject_node: &str, name: &str, kind: &str, owner: (i64, &str)| {
            let id = subject_node_id(&key_gid, subject_node);
            json!({"type": event_type, "count": 1, "actor": actor,
               "subject": {"type": "api_key", "id": id, "name": name},
               "user": gid("User", owner.0), "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"name": name, "kind": kind, "owner": owner.1}})
        };
    assert_eq!(
        facts(&of_type(&fixture, "api_key_created").await[0]),
        key_event(
            "api_key_created",
            user(admin_id, "admin"),
            "UserApiKey",
            "laptop",
            "user",
            (admin_id, "admin")
        )
    );
    assert_eq!(
        facts(&of_type(&fixture, "api_key_deleted").await[0]),
        key_event(
            "api_key_deleted",
            user(admin_id, "admin"),
            "UserApiKey",
            "laptop",
            "user",
            (admin_id, "admin")
        )
    );

    // A system key made with the admin secret: the actor is "admin secret"; deleted by the admin.
    let response = client
        .post(fixture.url("/v1/system/api_keys"))
        .bearer_auth(ADMIN_SECRET)
        .json(&json!({"data": {"name": "ingest"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created = response.json::<Value>().await.unwrap();
    let system_gid = created["data"]["id"].as_str().unwrap().to_owned();
    let system_key = created["data"]["key"].as_str().unwrap().to_owned();
    let system_created = of_type(&fixture, "api_key_created").await;
    let system_created = facts(&system_created[0]);
    assert_eq!(system_created["actor"], json!({"type": "admin_secret", "id": null, "name": "admin secret"}));
    assert_eq!(system_created["subject"], json!({"type": "api_key", "id": system_gid, "name": "ingest"}));
    assert_eq!(system_created["detail"], json!({"name": "ingest", "kind": "system", "owner": "system"}));
    // The system key itself may read the log.
    let page = super::page(&fixture, &system_key, "?event_type=api_key_created").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let response = client
        .delete(fixture.url(&format!("/v1/system/api_keys/{system_gid}")))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let system_deleted = facts(&of_type(&fixture, "api_key_deleted").await[0]);
    assert_eq!(system_deleted["actor"], user(admin_id, "admin"));
    assert_eq!(system_deleted["subject"], json!({"type": "api_key", "id": system_gid, "name": "ingest"}));

    // Deleted through REST.
    let response = client
        .delete(fixture.url(&format!("/v1/users/{frank_gid}")))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        facts(&of_type(&fixture, "user_deleted").await[0]),
        by_admin("user_deleted", "franklin", json!({"email": "frank@example.com", "role": "VIEWER"}))
    );

    assert_no_secret_stored(
        &fixture,
        &[
            "frank-initial-1",
            "frank-by-admin-1",
            &admin_token,
            &user_key,
            &system_key,
            ADMIN_SECRET,
            ADMIN_PASSWORD,
        ],
    )
    .await;
}

/// The GlobalID `key_gid` names, re-encoded as `node_type` (user and system keys differ).
fn subject_node_id(key_gid: &str, node_type: &str) -> String {
    gid(node_type, id_of(key_gid))
}

#[tokio::test]
async fn the_admin_secret_and_refused_internal_credentials() {
    let fixture = GatewayFixture::start().await;
    let response = GatewayFixture::client()
        .get(fixture.url("/v1/users"))
        .bearer_auth(ADMIN_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Once as the gateway verified it, once as identity-svc answered the call it made with it.
    let used = of_type(&fixture, "admin_secret_used").await;
    let mut vias: Vec<Value> = used.iter().map(|e| e["detail"]["via"].clone()).collect();
    vias.sort_by_key(|v| v.to_string());
    vias.dedup();
    assert_eq!(vias, [json!("api"), json!("verifier")]);
    let api = used.iter().find(|e| e["detail"]["via"] == "api").unwrap();
    let mut api = facts(api);
    assert!(api["count"].as_i64().unwrap() >= 1);
    api.as_object_mut().unwrap().remove("count");
    assert_eq!(
        api,
        json!({"type": "admin_secret_used", "actor": {"type": "admin_secret", "id": null, "name": "admin secret"},
               "subject": null, "user": null, "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"via": "api"}})
    );

    // Internal RPCs without the service credential, and a sign-in completion without the
    // gateway's own.
    let mut internal_client = fixture.identity.internal();
    let verify = pb::VerifyCredentialRequest { credential: "whatever-credential".into() };
    let status = internal_client.verify_credential(Request::new(verify.clone())).await.unwrap_err();
    assert_eq!(status.message(), "This RPC is only for ashgate services");
    let mut wrong = Request::new(verify);
    wrong.metadata_mut().insert("x-ashgate-internal-token", "not-the-token-0123456789".parse().unwrap());
    internal_client.verify_credential(wrong).await.unwrap_err();
    let oauth2 = pb::CompleteOAuth2SignInRequest {
        subject: "s".into(),
        email: "x@example.com".into(),
        ..Default::default()
    };
    let status = internal_client.complete_o_auth2_sign_in(internal(oauth2)).await.unwrap_err();
    assert_eq!(status.message(), "This RPC is only for the ashgate gateway");
    let refused = of_type(&fixture, "internal_credential_refused").await;
    let verify_rows: Vec<Value> =
        refused.iter().filter(|e| e["subject"]["name"] == "VerifyCredential").cloned().collect();
    let (seen, total) = aggregated(&verify_rows);
    assert_eq!(total, 2);
    assert_eq!(
        seen,
        [json!({"type": "internal_credential_refused", "actor": null,
                "subject": {"type": "rpc", "id": null, "name": "VerifyCredential"}, "user": null,
                "client_address": "127.0.0.1", "outcome": "refused", "detail": {"credential": "internal"}})]
    );
    let gateway_row = refused.iter().find(|e| e["subject"]["name"] == "CompleteOAuth2SignIn").unwrap();
    assert_eq!(gateway_row["detail"], json!({"credential": "gateway"}));
    assert_no_secret_stored(&fixture, &[ADMIN_SECRET, INTERNAL_TOKEN, "not-the-token-0123456789"]).await;
}

#[tokio::test]
async fn password_reset_requested_and_completed() {
    let smtp = SmtpServer::start().await;
    let fixture = GatewayFixture::start_with_smtp(smtp.env(), &[]).await;
    let (carol, _) = fixture.identity.user_with_role("carol", pb::Role::Member).await;
    let request = |email: &'static str| {
        GatewayFixture::client()
            .post(fixture.url("/auth/password-reset-email"))
            .header("referer", fixture.url("/forgot-password"))
            .json(&json!({"email": email}))
            .send()
    };
    assert_eq!(request("ghost@example.com").await.unwrap().status(), 204);
    assert_eq!(request("carol@example.com").await.unwrap().status(), 204);
    let link = smtp.wait_for(1).await[0].reset_link().unwrap();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let requested = wait_for(&fixture, "password_reset_requested").await;
    assert_eq!(requested.len(), 1, "a request for nobody is no event: {requested:#?}");
    assert_eq!(
        facts(&requested[0]),
        json!({"type": "password_reset_requested", "count": 1, "actor": null, "subject": user(carol, "carol"),
               "user": gid("User", carol), "client_address": "127.0.0.1", "outcome": "success",
               "detail": {"email": "carol@example.com"}})
    );

    let response = GatewayFixture::client()
        .post(fixture.url("/auth/password-reset"))
        .json(&json!({"token": token, "password": "carol-after-reset-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_text(response).await.0, 204);
    let completed = of_type(&fixture, "password_reset_completed").await;
    assert_eq!(
        facts(&completed[0]),
        json!({"type": "password_reset_completed", "count": 1, "actor": user(carol, "carol"),
               "subject": user(carol, "carol"), "user": gid("User", carol), "client_address": "127.0.0.1",
               "outcome": "success", "detail": {}})
    );
    assert_no_secret_stored(&fixture, &[&token, &link, "carol-after-reset-1", "user-password-1"]).await;
}
