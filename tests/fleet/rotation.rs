//! Rotating `PHOENIX_SECRET` in a running fleet (issue 17), in the order docs/production.md
//! gives ("Rotating the secret"): identity-1 then identity-2 restarted with the new secret
//! added to `ASHGATE_PREVIOUS_SECRETS`; then each restarted again signing with the new secret
//! and keeping the old one in the list; finally the old secret retired.
//!
//! Throughout, both collectors keep verifying one API key (verifiers cache nothing here, so
//! every export is a verification by whichever identity replica the balancer picks) and are
//! never told UNAUTHENTICATED; a browser session made before the roll keeps working; while the
//! replicas run different configurations, each accepts what the other signs. After the old
//! secret is retired, the key it signed is refused, and the session, renewed during the roll,
//! is not. `ashgate secrets status` and the identity gauge say what depended on the old secret.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ashgate_identity::secret::Secret;
use ashgate_identity::token::secret_id;
use ashgate_proto::identity as pb;
use ashgate_proto::identity::internal_service_client::InternalServiceClient;
use ashgate_testkit::collector::deps::opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use ashgate_testkit::collector::deps::reqwest;
use ashgate_testkit::fleet::Fleet;
use ashgate_testkit::identity::{INTERNAL_TOKEN, SECRET};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::FutureExt as _;
use tonic::Code;

use crate::load::{channel, export_request, next_trace, with_key};
use crate::probes::{create_member, create_system_key, identity_serves, metric, wait_until};

/// The secret the fleet rotates to (the old one is the fixtures' `SECRET`).
const NEW: &str = "fleet-rotated-secret-0123456789abcdefg";
const EMAIL: &str = "rotation-member@example.com";
const PASSWORD: &str = "rotation-password-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_rotates_replica_by_replica_without_refusing_a_key_or_ending_a_session() {
    let binary = Path::new(env!("CARGO_BIN_EXE_ashgate"));
    // Verifiers cache nothing: each export asks an identity replica, so the roll is really
    // exercised rather than answered from a collector's cache.
    let mut fleet = tokio::task::spawn_blocking(move || {
        Fleet::start_with(binary, &[("ASHGATE_VERIFY_CACHE_SECONDS", "0")])
    })
    .await
    .unwrap()
    .unwrap();
    let outcome = AssertUnwindSafe(scenario(&mut fleet)).catch_unwind().await;
    if let Err(panic) = outcome {
        eprintln!("fleet logs (last lines):\n{}", fleet.log_tails(30));
        std::panic::resume_unwind(panic);
    }
}

/// Exports with one key to both collectors, over and over, counting answers per collector.
struct KeyProbe {
    ok: [Arc<AtomicU64>; 2],
    retryable: [Arc<AtomicU64>; 2],
    refused: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl KeyProbe {
    fn start(collectors: &[String; 2], key: &str) -> Self {
        let ok = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
        let retryable = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
        let refused = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..2)
            .map(|i| {
                let (ok, retryable, refused, stop) =
                    (ok[i].clone(), retryable[i].clone(), refused.clone(), stop.clone());
                let (url, key) = (collectors[i].clone(), key.to_owned());
                tokio::spawn(async move {
                    let mut client = TraceServiceClient::new(channel(&url));
                    while !stop.load(Ordering::Relaxed) {
                        match client.export(with_key(export_request(next_trace(), 1), &key)).await {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(s) if matches!(s.code(), Code::Unavailable | Code::ResourceExhausted) => {
                                retryable.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(s) => {
                                refused.lock().unwrap().push(format!("collector-{}: {s:?}", i + 1));
                                0
                            }
                        };
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                })
            })
            .collect();
        Self { ok, retryable, refused, stop, tasks }
    }

    fn accepted(&self) -> [u64; 2] {
        [self.ok[0].load(Ordering::Relaxed), self.ok[1].load(Ordering::Relaxed)]
    }

    /// Waits until both collectors accepted the key again since `before` (at most 10 s), and
    /// checks that nobody refused it.
    async fn keeps_accepting(&self, before: [u64; 2], when: &str) {
        wait_until(&format!("both collectors accept the key {when}"), Duration::from_secs(10), || async {
            let now = self.accepted();
            now[0] > before[0] && now[1] > before[1]
        })
        .await;
        let refused = self.refused.lock().unwrap().clone();
        assert!(refused.is_empty(), "the key was refused {when}: {refused:?}");
    }

    async fn stop(self) -> ([u64; 2], [u64; 2]) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let retryable =
            [self.retryable[0].load(Ordering::Relaxed), self.retryable[1].load(Ordering::Relaxed)];
        let refused = self.refused.lock().unwrap().clone();
        assert!(refused.is_empty(), "the key was refused: {refused:?}");
        ([self.ok[0].load(Ordering::Relaxed), self.ok[1].load(Ordering::Relaxed)], retryable)
    }
}

/// A browser's cookies for the gateway.
struct Browser {
    http: reqwest::Client,
    base: String,
    access: String,
    refresh: String,
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap_or("").to_owned())
    })
}

impl Browser {
    async fn sign_in(base: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
        let login = http
            .post(format!("{base}/auth/login"))
            .json(&serde_json::json!({ "email": EMAIL, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 204);
        let access = cookie(&login, "phoenix-access-token").unwrap();
        let refresh = cookie(&login, "phoenix-refresh-token").unwrap();
        Self { http, base: base.to_owned(), access, refresh }
    }

    /// `GET /v1/user` with the cookies answers 200 (503 retried while a replica restarts).
    async fn is_signed_in(&self, when: &str) {
        let started = Instant::now();
        loop {
            let me = self
                .http
                .get(format!("{}/v1/user", self.base))
                .header("cookie", format!("phoenix-access-token={}", self.access))
                .send()
                .await
                .unwrap();
            match me.status().as_u16() {
                200 => return,
                503 if started.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                status => {
                    panic!("the browser session answered {status} {when}: {}", me.text().await.unwrap())
                }
            }
        }
    }

    /// `POST /auth/refresh`: a new pair, signed by whichever replica the gateway asked.
    async fn renew(&mut self) {
        let renewed = self
            .http
            .post(format!("{}/auth/refresh", self.base))
            .header("cookie", format!("phoenix-refresh-token={}", self.refresh))
            .header("origin", &self.base)
            .send()
            .await
            .unwrap();
        assert_eq!(renewed.status(), 204, "renewal");
        self.access = cookie(&renewed, "phoenix-access-token").unwrap();
        self.refresh = cookie(&renewed, "phoenix-refresh-token").unwrap();
    }
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap_or_default().to_owned()
}

/// `VerifyCredential` on one identity replica, as a collector asks it.
async fn verify_on(identity_url: &str, credential: &str) -> (Code, String) {
    let mut request = tonic::Request::new(pb::VerifyCredentialRequest { credential: credential.to_owned() });
    request.metadata_mut().insert("x-ashgate-internal-token", INTERNAL_TOKEN.parse().unwrap());
    match InternalServiceClient::new(channel(identity_url)).verify_credential(request).await {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

/// One export with `key` to `collector`, retried while the answer is UNAVAILABLE (a collector
/// reconnecting to a replica that just restarted), for 10 s at most: the code and message.
async fn export_judged(collector: &str, key: &str) -> (Code, String) {
    let mut client = TraceServiceClient::new(channel(collector));
    let started = Instant::now();
    loop {
        match client.export(with_key(export_request(next_trace(), 1), key)).await {
            Ok(_) => return (Code::Ok, String::new()),
            Err(s) if s.code() == Code::Unavailable && started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(s) => return (s.code(), s.message().to_owned()),
        }
    }
}

/// Restarts identity replica `i` gracefully (SIGTERM, as a rolling deploy does) with `changes`
/// to its environment, and waits until it serves and follows Redis again.
async fn restart_identity(fleet: &mut Fleet, i: usize, changes: &[(&str, Option<&str>)]) {
    let replica = &mut fleet.identities[i];
    for (key, value) in changes {
        replica.set_env(key, *value);
    }
    let status = tokio::task::block_in_place(|| replica.terminate(Duration::from_secs(30))).unwrap();
    assert!(status.success(), "identity-{} exited with {status}", i + 1);
    tokio::task::block_in_place(|| replica.start()).unwrap();
    let url = fleet.identity_url(i);
    wait_until("the restarted replica serves", Duration::from_secs(30), || identity_serves(&url)).await;
    let metrics = fleet.identity_ops_url(i, "/metrics");
    wait_until("the restarted replica follows Redis", Duration::from_secs(10), || async {
        metric(&metrics, "ashgate_identity_revocations_reliable").await == Some(1.0)
    })
    .await;
}

/// `ashgate secrets status` against the fleet's database with `env`: the table.
fn secrets_status(fleet: &Fleet, env: &[(&str, &str)]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ashgate"))
        .args(["secrets", "status"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", fleet.dir.path())
        .env("PHOENIX_ENABLE_AUTH", "true")
        .env("PHOENIX_SQL_DATABASE_URL", fleet.postgres.url())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn scenario(fleet: &mut Fleet) {
    let identities = [fleet.identity_url(0), fleet.identity_url(1)];
    let collectors = [fleet.collector_grpc_url(0), fleet.collector_grpc_url(1)];
    let gateway = fleet.gateway_url("");
    let (old_id, new_id) = (secret_id(&Secret::new(SECRET)), secret_id(&Secret::new(NEW)));
    let ready = fleet.gateway_url("/readyz");
    wait_until("gateway ready", Duration::from_secs(10), || async {
        reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200)
    })
    .await;

    // Before: one API key, one browser session, both signed with the old secret.
    create_member(&identities[1], EMAIL, PASSWORD).await;
    let mut browser = Browser::sign_in(&gateway).await;
    let (_, key) = create_system_key(&identities[0], "rotation-key").await;
    assert_eq!((kid_of(&key), kid_of(&browser.access)), (old_id.clone(), old_id.clone()));
    let probe = KeyProbe::start(&collectors, &key);
    probe.keeps_accepting([0, 0], "before the roll").await;
    browser.is_signed_in("before the roll").await;

    // Step 1: every replica learns the new secret, still signing with the old one.
    for i in 0..2 {
        let before = probe.accepted();
        restart_identity(fleet, i, &[("ASHGATE_PREVIOUS_SECRETS", Some(NEW))]).await;
        probe.keeps_accepting(before, &format!("after step 1 on identity-{}", i + 1)).await;
        browser.is_signed_in(&format!("after step 1 on identity-{}", i + 1)).await;
    }

    // Step 2 on identity-1: it signs with the new secret and still accepts the old.
    let before = probe.accepted();
    restart_identity(fleet, 0, &[("PHOENIX_SECRET", Some(NEW)), ("ASHGATE_PREVIOUS_SECRETS", Some(SECRET))])
        .await;
    probe.keeps_accepting(before, "with the replicas on different secrets").await;
    // Mixed configurations agree: each accepts what the other signs.
    let (_, new_key) = create_system_key(&identities[0], "rotation-new-key").await;
    assert_eq!(kid_of(&new_key), new_id);
    let (_, old_key) = create_system_key(&identities[1], "rotation-old-key").await;
    assert_eq!(kid_of(&old_key), old_id);
    for identity in &identities {
        for credential in [&key, &new_key, &old_key, &browser.access] {
            assert_eq!(verify_on(identity, credential).await, (Code::Ok, String::new()), "{identity}");
        }
    }
    // The browser renews (through whichever replica) and stays signed in on both.
    browser.renew().await;
    browser.is_signed_in("after renewing during the roll").await;
    for identity in &identities {
        assert_eq!(verify_on(identity, &browser.access).await.0, Code::Ok, "{identity}");
    }

    // Step 2 on identity-2.
    let before = probe.accepted();
    restart_identity(fleet, 1, &[("PHOENIX_SECRET", Some(NEW)), ("ASHGATE_PREVIOUS_SECRETS", Some(SECRET))])
        .await;
    probe.keeps_accepting(before, "after step 2").await;
    browser.is_signed_in("after step 2").await;
    // The session's next renewal is signed with the new secret whichever replica answers.
    browser.renew().await;
    assert_eq!(kid_of(&browser.access), new_id);
    let (accepted, retryable) = probe.stop().await;
    eprintln!(
        "rotation: the old key was accepted {accepted:?} times by (collector-1, collector-2) during the roll, refused retryably {retryable:?}, never refused"
    );

    // What still depends on the old secret: the two keys it signed (the session moved on).
    let rotated_env = [("PHOENIX_SECRET", NEW), ("ASHGATE_PREVIOUS_SECRETS", SECRET)];
    let table = tokio::task::block_in_place(|| secrets_status(fleet, &rotated_env));
    eprintln!("rotation: ashgate secrets status\n{table}");
    let old_row = table.lines().find(|l| l.starts_with(&old_id)).unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = old_row.split_whitespace().collect();
    assert_eq!((cells[1], cells[3]), ("previous", "2"), "{table}");
    assert!(!table.contains(SECRET) && !table.contains(NEW));
    let gauge = format!(
        "ashgate_identity_secret_dependents{{secret_id=\"{old_id}\",role=\"previous\",credential=\"api_keys\"}}"
    );
    // identity-2's count was first taken after both keys existed (it is reused for 30 s).
    assert_eq!(metric(&fleet.identity_ops_url(1, "/metrics"), &gauge).await, Some(2.0));

    // Step 3: the old secret retired. Its keys are refused by every collector; the renewed
    // session and the new key go on.
    for i in 0..2 {
        restart_identity(fleet, i, &[("ASHGATE_PREVIOUS_SECRETS", None)]).await;
    }
    for collector in &collectors {
        let refused = export_judged(collector, &key).await;
        assert_eq!(refused, (Code::Unauthenticated, "Invalid token".into()), "{collector}");
        assert_eq!(export_judged(collector, &new_key).await, (Code::Ok, String::new()), "{collector}");
    }
    for identity in &identities {
        assert_eq!(verify_on(identity, &old_key).await, (Code::Unauthenticated, "Invalid token".into()));
    }
    browser.is_signed_in("after the old secret was retired").await;
    let table = tokio::task::block_in_place(|| secrets_status(fleet, &[("PHOENIX_SECRET", NEW)]));
    assert!(table.lines().any(|l| l.starts_with(&old_id) && l.contains("retired")), "{table}");
}
