//! identity-svc fixtures: a real identity-svc on a loopback port with a fresh database, real
//! tonic clients, and helpers to get signed-in users of each role.

use std::net::SocketAddr;
use std::sync::Arc;

use ashgate_identity::{Identity, IdentityConfig, IdentityServer};
use ashgate_proto::identity as pb;
use ashgate_proto::identity::api_key_service_client::ApiKeyServiceClient;
use ashgate_proto::identity::auth_service_client::AuthServiceClient;
use ashgate_proto::identity::internal_service_client::InternalServiceClient;
use ashgate_proto::identity::user_service_client::UserServiceClient;
use ashgate_runtime::env::Env;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Request;
use tonic::transport::Channel;

use crate::collector::TestDatabase;

/// The `PHOENIX_SECRET` every fixture signs with.
pub const SECRET: &str = "test-secret-0123456789abcdefghijklmnop";
/// The `PHOENIX_ADMIN_SECRET` of every fixture.
pub const ADMIN_SECRET: &str = "admin-secret-0123456789abcdefghijklmn";
/// The internal service credential of every fixture.
pub const INTERNAL_TOKEN: &str = "internal-token-0123456789abcdefghijklm";
/// The gateway's own credential of every fixture (`ASHGATE_GATEWAY_TOKEN`).
pub const GATEWAY_TOKEN: &str = "gateway-token-0123456789abcdefghijklmn";
/// The default admin's password after [`IdentityFixture::admin_token`] changed it.
pub const ADMIN_PASSWORD: &str = "admin-password-1";
/// Environment variable naming a Redis server for tests; unset means in-process only.
pub const TEST_REDIS_ENV: &str = "ASHGATE_TEST_REDIS_URL";

/// The environment a test identity-svc starts from: auth on, fixed secrets, loopback, port 0,
/// no per-address rate limit (tests sign in many times from 127.0.0.1), Redis when
/// `ASHGATE_TEST_REDIS_URL` is set, under `namespace` so parallel tests never share keys.
pub fn test_env(database_url: &str, namespace: &str) -> Env {
    let mut env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        ("PHOENIX_ENABLE_AUTH", "true"),
        ("PHOENIX_SECRET", SECRET),
        ("PHOENIX_ADMIN_SECRET", ADMIN_SECRET),
        ("ASHGATE_INTERNAL_TOKEN", INTERNAL_TOKEN),
        ("ASHGATE_GATEWAY_TOKEN", GATEWAY_TOKEN),
        ("PHOENIX_SQL_DATABASE_URL", database_url),
        ("PHOENIX_DISABLE_RATE_LIMIT", "true"),
        ("ASHGATE_PASSWORD_HASH_CONCURRENCY", "2"),
        ("ASHGATE_REDIS_NAMESPACE", namespace),
    ]);
    if let Some(redis) = std::env::var(TEST_REDIS_ENV).ok().filter(|v| !v.trim().is_empty()) {
        env = env.with("ASHGATE_REDIS_URL", redis);
    }
    env
}

/// A running identity-svc.
pub struct IdentityFixture {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The domain object, for assertions that look behind the API.
    pub identity: Arc<Identity>,
    /// Its configuration.
    pub config: IdentityConfig,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// Kept alive for as long as the fixture (dropped last).
    pub database: Arc<TestDatabase>,
    /// Redis namespace shared by this fixture's replicas.
    pub namespace: String,
}

impl IdentityFixture {
    /// identity-svc with the test environment on a fresh database.
    pub async fn start() -> Self {
        Self::start_with(|env| env).await
    }

    /// identity-svc with the test environment changed by `configure`, on a fresh database.
    pub async fn start_with(configure: impl FnOnce(Env) -> Env) -> Self {
        let database = Arc::new(TestDatabase::fresh().await.expect("test database"));
        let namespace = format!("t{:016x}", rand::random::<u64>());
        Self::start_on(database, namespace, configure).await
    }

    /// Another replica on the same database (and the same Redis, if any).
    pub async fn replica(&self, configure: impl FnOnce(Env) -> Env) -> Self {
        Self::start_on(self.database.clone(), self.namespace.clone(), configure).await
    }

    async fn start_on(
        database: Arc<TestDatabase>,
        namespace: String,
        configure: impl FnOnce(Env) -> Env,
    ) -> Self {
        let env = configure(test_env(database.url.expose(), &namespace));
        let config = IdentityConfig::from_env(&env).expect("test identity config");
        let identity = Identity::start(config.clone()).await.expect("identity-svc starts");
        let server =
            IdentityServer::bind(identity.clone(), "127.0.0.1:0".parse().expect("addr")).await.expect("bind");
        let addr = server.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server.serve(async { drop(rx.await) }).await.expect("identity-svc serves");
        });
        let channel = Channel::from_shared(format!("http://{addr}")).expect("uri").connect_lazy();
        // With Redis, a replica caches nothing until its subscription is up; tests expect a
        // steady state. (A deliberately unreachable Redis never gets there: give up quietly.)
        for _ in 0..100 {
            if identity.revocations().is_reliable() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Self { addr, identity, config, channel, shutdown: Some(tx), task: Some(task), database, namespace }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A channel to this replica.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// `AuthService` client.
    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel())
    }

    /// `UserService` client.
    pub fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.channel())
    }

    /// `ApiKeyService` client.
    pub fn keys(&self) -> ApiKeyServiceClient<Channel> {
        ApiKeyServiceClient::new(self.channel())
    }

    /// A verifier (the client library collector-svc and gateway use) talking to this replica.
    pub fn verifier(&self) -> ashgate_identity_client::CredentialVerifier {
        self.verifier_with(|c| c)
    }

    /// A verifier with a changed configuration.
    pub fn verifier_with(
        &self,
        configure: impl FnOnce(ashgate_identity_client::VerifierConfig) -> ashgate_identity_client::VerifierConfig,
    ) -> ashgate_identity_client::CredentialVerifier {
        let config = ashgate_identity_client::VerifierConfig {
            identity_urls: vec![self.url()],
            internal_token: Some(INTERNAL_TOKEN.into()),
            max_cache_ttl: std::time::Duration::from_secs(60),
            negative_cache_ttl: std::time::Duration::from_secs(2),
            cache_capacity: 10_000,
            tls: Default::default(),
        };
        ashgate_identity_client::CredentialVerifier::connect(configure(config)).expect("verifier")
    }

    /// `InternalService` client (without the internal credential: add it with [`internal`]).
    pub fn internal(&self) -> InternalServiceClient<Channel> {
        InternalServiceClient::new(self.channel())
    }

    /// Signs in and returns the pair.
    pub async fn login(&self, email: &str, password: &str) -> pb::TokenPair {
        self.auth()
            .login(pb::LoginRequest { email: email.into(), password: password.into() })
            .await
            .unwrap_or_else(|s| panic!("login {email}: {s:?}"))
            .into_inner()
    }

    /// An access token of the default admin, after the forced first password change.
    pub async fn admin_token(&self) -> String {
        let pair = match self
            .auth()
            .login(pb::LoginRequest { email: "admin@localhost".into(), password: ADMIN_PASSWORD.into() })
            .await
        {
            Ok(pair) => pair.into_inner(),
            Err(_) => {
                let first = self.login("admin@localhost", "admin").await;
                let change = pb::UpdatePasswordRequest {
                    user_id: first.user_id,
                    new_password: ADMIN_PASSWORD.into(),
                    current_password: "admin".into(),
                };
                self.users()
                    .update_password(bearer(change, &first.access_token))
                    .await
                    .expect("admin password change");
                self.login("admin@localhost", ADMIN_PASSWORD).await
            }
        };
        pair.access_token
    }

    /// Creates a user with `role` (by the default admin), clears the must-reset flag by
    /// changing the password, signs in, and returns (user id, access token).
    pub async fn user_with_role(&self, username: &str, role: pb::Role) -> (i64, String) {
        let admin = self.admin_token().await;
        let email = format!("{username}@example.com");
        let create = pb::CreateUserRequest {
            email: email.clone(),
            username: username.into(),
            role: role.into(),
            auth_method: pb::AuthMethod::Local.into(),
            password: "initial-pass".into(),
            ..Default::default()
        };
        let user = self.users().create_user(bearer(create, &admin)).await.expect("create user").into_inner();
        let first = self.login(&email, "initial-pass").await;
        let change = pb::UpdatePasswordRequest {
            user_id: user.id,
            new_password: "user-password-1".into(),
            current_password: "initial-pass".into(),
        };
        self.users()
            .update_password(bearer(change, &first.access_token))
            .await
            .expect("user password change");
        (user.id, self.login(&email, "user-password-1").await.access_token)
    }

    /// Creates a system API key with the admin secret and returns the key.
    pub async fn system_key(&self, name: &str) -> String {
        let request = pb::CreateApiKeyRequest { name: name.into(), ..Default::default() };
        self.keys()
            .create_system_api_key(bearer(request, ADMIN_SECRET))
            .await
            .expect("system key")
            .into_inner()
            .key
    }

    /// Stops serving and waits for it.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.identity.shutdown().await;
    }
}

impl Drop for IdentityFixture {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A request carrying `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii token"));
    request
}

/// A request carrying the internal service credential.
pub fn internal<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("x-ashgate-internal-token", INTERNAL_TOKEN.parse().expect("ascii"));
    request
}
