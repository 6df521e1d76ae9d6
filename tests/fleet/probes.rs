//! What the fleet test asks of the fleet besides the load: API keys made and deleted through a
//! chosen identity replica, how long until every collector refuses a deleted key, sign-in
//! through the gateway, and the identity replicas' `/metrics`.

use std::time::{Duration, Instant};

use ashgate_proto::identity as pb;
use ashgate_proto::identity::api_key_service_client::ApiKeyServiceClient;
use ashgate_proto::identity::auth_service_client::AuthServiceClient;
use ashgate_proto::identity::user_service_client::UserServiceClient;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use ashgate_testkit::collector::deps::reqwest;
use ashgate_testkit::identity::{ADMIN_SECRET, bearer};
use tonic::Code;

use crate::load::{channel, export_request, next_trace, with_key};

/// Retries `call` on UNAVAILABLE for up to 20 s (a replica may just have died).
async fn retry<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let started = Instant::now();
    loop {
        match call().await {
            Ok(reply) => return reply.into_inner(),
            Err(status)
                if status.code() == Code::Unavailable && started.elapsed() < Duration::from_secs(20) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("{what}: {status:?}"),
        }
    }
}

/// Creates a system API key through the identity replica at `url`: (id, key).
pub async fn create_system_key(url: &str, name: &str) -> (i64, String) {
    let keys = ApiKeyServiceClient::new(channel(url));
    let created = retry("create a system key", || {
        let mut keys = keys.clone();
        let request = pb::CreateApiKeyRequest { name: name.into(), ..Default::default() };
        async move { keys.create_system_api_key(bearer(request, ADMIN_SECRET)).await }
    })
    .await;
    (created.api_key.unwrap().id, created.key)
}

/// Deletes system API key `id` through the identity replica at `url`.
pub async fn delete_system_key(url: &str, id: i64) {
    let keys = ApiKeyServiceClient::new(channel(url));
    retry("delete a system key", || {
        let mut keys = keys.clone();
        async move { keys.delete_system_api_key(bearer(pb::DeleteApiKeyRequest { id }, ADMIN_SECRET)).await }
    })
    .await;
}

/// Exports one span with `key` to the collector at `url` until it is accepted (10 s at most).
pub async fn export_until_accepted(url: &str, key: &str) {
    let mut client = TraceServiceClient::new(channel(url));
    let started = Instant::now();
    loop {
        match client.export(with_key(export_request(next_trace(), 1), key)).await {
            Ok(_) => return,
            Err(status)
                if started.elapsed() < Duration::from_secs(10) && status.code() != Code::Unauthenticated =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("{url} does not accept a valid key: {status:?}"),
        }
    }
}

/// Creates a key through identity replica `via`, has every collector accept it (so each has
/// it cached), deletes it through the same replica and returns, per collector, the time from
/// the delete request to the first refusal (UNAUTHENTICATED). Gives up polling after 5 s.
pub async fn revocation_delays(via: &str, collectors: &[String; 2]) -> [Duration; 2] {
    let (id, key) = create_system_key(via, "revoked-in-the-fleet-test").await;
    for collector in collectors {
        export_until_accepted(collector, &key).await;
    }
    let clients: Vec<_> = collectors.iter().map(|c| TraceServiceClient::new(channel(c))).collect();
    let started = Instant::now();
    delete_system_key(via, id).await;
    let polls = clients.into_iter().map(|mut client| {
        let key = key.clone();
        async move {
            loop {
                match client.export(with_key(export_request(next_trace(), 1), &key)).await {
                    Err(status) if status.code() == Code::Unauthenticated => return started.elapsed(),
                    Ok(_) => {}
                    Err(status) if matches!(status.code(), Code::Unavailable | Code::ResourceExhausted) => {}
                    Err(status) => panic!("a deleted key was answered {status:?}"),
                }
                if started.elapsed() > Duration::from_secs(5) {
                    return started.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let delays = futures::future::join_all(polls).await;
    [delays[0], delays[1]]
}

/// Creates a member with `password` through identity replica `url` and clears the
/// must-change-password flag, so the user can sign in through the gateway.
pub async fn create_member(url: &str, email: &str, password: &str) {
    let channel = channel(url);
    let initial = "initial-password-1";
    let create = pb::CreateUserRequest {
        email: email.into(),
        username: email.split('@').next().unwrap().into(),
        role: pb::Role::Member.into(),
        auth_method: pb::AuthMethod::Local.into(),
        password: initial.into(),
        ..Default::default()
    };
    let user = UserServiceClient::new(channel.clone())
        .create_user(bearer(create, ADMIN_SECRET))
        .await
        .expect("create a member")
        .into_inner();
    let first = AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest { email: email.into(), password: initial.into() })
        .await
        .expect("first sign-in")
        .into_inner();
    let change = pb::UpdatePasswordRequest {
        user_id: user.id,
        new_password: password.into(),
        current_password: initial.into(),
    };
    UserServiceClient::new(channel)
        .update_password(bearer(change, &first.access_token))
        .await
        .expect("password change");
}

/// Signs in through the gateway (`POST /auth/login`) and reads `/v1/user` with the session
/// cookies. `Err` carries the HTTP status of the step that failed.
pub async fn gateway_sign_in(base: &str, email: &str, password: &str) -> Result<(), u16> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let login = http
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .map_err(|_| 0u16)?;
    if login.status().as_u16() != 204 {
        return Err(login.status().as_u16());
    }
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let me = http
        .get(format!("{base}/v1/user"))
        .header("cookie", cookies.join("; "))
        .send()
        .await
        .map_err(|_| 0u16)?;
    if me.status().as_u16() != 200 {
        return Err(me.status().as_u16());
    }
    let body: serde_json::Value = me.json().await.map_err(|_| 0u16)?;
    assert_eq!(body["data"]["email"], email, "{body}");
    Ok(())
}

/// Signs in through the gateway, retrying 503 (an upstream is down) for up to 20 s; panics on
/// any other refusal.
pub async fn gateway_sign_in_retrying(base: &str, email: &str, password: &str) -> Duration {
    let started = Instant::now();
    loop {
        match gateway_sign_in(base, email, password).await {
            Ok(()) => return started.elapsed(),
            Err(503 | 0) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(code) => panic!("sign-in through the gateway answered {code}"),
        }
    }
}

/// A gauge or counter of an identity replica's `/metrics` (without labels).
pub async fn metric(ops_metrics_url: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(ops_metrics_url).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until `check` holds (polling every 20 ms), at most `limit`; returns how long it took.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Whether the identity replica at `url` answers a call that reads the database (listing system
/// keys with the admin secret; not `VerifyCredential`, whose count tells who uses the replica).
pub async fn identity_serves(url: &str) -> bool {
    let mut client = ApiKeyServiceClient::new(channel(url));
    client.list_system_api_keys(bearer(pb::ListSystemApiKeysRequest {}, ADMIN_SECRET)).await.is_ok()
}
