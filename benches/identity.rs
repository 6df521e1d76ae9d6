//! identity-svc and its client library, measured over real gRPC on loopback.
//!
//! `cargo bench --bench identity` (SQLite; set ASHGATE_TEST_DATABASE_URL for PostgreSQL and
//! ASHGATE_TEST_REDIS_URL to measure revocation propagation between two replicas). Prints:
//! login latency, VerifyCredential RPC throughput/p99 at concurrency 1 and 32, client-library
//! verifications/s with a warm and a cold cache, bad-key rejections/s, and revocation
//! propagation p50/p99 over 200 key deletions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a benchmark stops at its first failure"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ashgate_identity_client::CredentialVerifier;
use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{ADMIN_SECRET, IdentityFixture, bearer, internal};
use futures::StreamExt;

const RUN_FOR: Duration = Duration::from_secs(5);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Runs `op` from `concurrency` tasks for RUN_FOR; returns (ops/s, p50, p99).
async fn load<F, Fut>(concurrency: usize, op: F) -> (f64, Duration, Duration)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while start.elapsed() < RUN_FOR {
                    let t = Instant::now();
                    op().await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    (all.len() as f64 / elapsed, percentile(&all, 0.5), percentile(&all, 0.99))
}

async fn login_latency(fx: &IdentityFixture) {
    fx.admin_token().await;
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        fx.login("admin@localhost", ashgate_testkit::identity::ADMIN_PASSWORD).await;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    println!(
        "login (argon2id 19 MiB t=2 p=1), sequential x100: p50 {}  p99 {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
}

async fn verify_rpc(fx: &IdentityFixture, key: &str) {
    for concurrency in [1, 32] {
        let client = fx.internal();
        let key = key.to_owned();
        let (rate, p50, p99) = load(concurrency, move || {
            let mut client = client.clone();
            let key = key.clone();
            async move {
                client
                    .verify_credential(internal(pb::VerifyCredentialRequest { credential: key }))
                    .await
                    .unwrap();
            }
        })
        .await;
        println!(
            "VerifyCredential RPC, concurrency {concurrency:>2}: {rate:>9.0}/s  p50 {}  p99 {}",
            ms(p50),
            ms(p99)
        );
    }
}

async fn client_library(fx: &IdentityFixture, key: &str) {
    let warm = fx.verifier();
    warm.verify_bearer(key).await.unwrap();
    let cold = fx.verifier_with(|mut c| {
        c.max_cache_ttl = Duration::ZERO;
        c
    });
    for (name, verifier) in [("warm cache", warm), ("cold cache (no caching)", cold)] {
        for concurrency in [1, 32] {
            let verifier: CredentialVerifier = verifier.clone();
            let key = key.to_owned();
            let (rate, _, p99) = load(concurrency, move || {
                let verifier = verifier.clone();
                let key = key.clone();
                async move {
                    verifier.verify_bearer(&key).await.unwrap();
                    // A cache hit never waits, so without this the load tasks would hold both
                    // worker threads and starve the verifier's revocation stream, whose silence
                    // past 1.5 s turns caching off (and the answers into Unavailable).
                    tokio::task::yield_now().await;
                }
            })
            .await;
            println!("client verify, {name}, concurrency {concurrency:>2}: {rate:>11.0}/s  p99 {}", ms(p99));
        }
    }
    let verifier = fx.verifier();
    let (rate, _, _) = load(32, move || {
        let verifier = verifier.clone();
        async move {
            assert!(verifier.verify_bearer("not-a-key").await.is_err());
        }
    })
    .await;
    println!("client bad-key rejections (one bad key, concurrency 32): {rate:.0}/s");
    let verifier = fx.verifier();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (rate, _, _) = load(32, move || {
        let verifier = verifier.clone();
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            assert!(verifier.verify_bearer(&format!("bad-key-{n}")).await.is_err());
        }
    })
    .await;
    println!("client bad-key rejections (every key different, concurrency 32): {rate:.0}/s");
}

async fn propagation(a: &IdentityFixture, b: &IdentityFixture, label: &str) {
    let mut events =
        b.internal().watch_revocations(internal(pb::WatchRevocationsRequest {})).await.unwrap().into_inner();
    let mut delays = Vec::new();
    for _ in 0..200 {
        let created = a
            .keys()
            .create_system_api_key(bearer(
                pb::CreateApiKeyRequest { name: "p".into(), ..Default::default() },
                ADMIN_SECRET,
            ))
            .await
            .unwrap()
            .into_inner();
        let id = created.api_key.unwrap().id;
        let start = Instant::now();
        a.keys().delete_system_api_key(bearer(pb::DeleteApiKeyRequest { id }, ADMIN_SECRET)).await.unwrap();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(2), events.next())
                .await
                .expect("event within 2 s")
                .unwrap()
                .unwrap();
            if let Some(pb::revocation_event::Target::Credential(c)) = event.target
                && c.id == id
            {
                delays.push(start.elapsed());
                break;
            }
        }
    }
    delays.sort();
    println!(
        "revocation propagation {label}, 200 key deletions: p50 {}  p99 {}  max {}",
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.99)),
        ms(*delays.last().unwrap())
    );
}

/// Sign-in limits kept in memory (no Redis) under a flood of a million distinct emails and
/// addresses: the latency of a reservation and the records held stay flat (bounded caches with
/// expiry; the old maps were swept by `retain` under one lock once past 100,000 entries).
async fn limits_under_a_million_keys() {
    use ashgate_identity::config::LoginProtection;
    use ashgate_identity::limits::{AUTH_BUCKET, Guard, Limits};
    let protection = LoginProtection {
        enabled: true,
        max_attempts: 5,
        max_attempts_per_email: 50,
        lockout: Duration::from_secs(300),
        window: Duration::from_secs(900),
    };
    let limits = Limits::new(protection, true, None, "bench").unwrap();
    let rss = || ashgate_testkit::faults::rss_kib(std::process::id()).unwrap_or(0) as f64 / 1024.0;
    let started_rss = rss();
    let mut window = Vec::with_capacity(100_000);
    println!("limits, in memory, one reservation and one bucket token per distinct email and address:");
    println!("| keys so far | p50 | p99 | records held | process RSS |");
    println!("|---:|---:|---:|---:|---:|");
    for i in 0u32..1_000_000 {
        let addr = std::net::IpAddr::from(i.wrapping_add(0x0a00_0000).to_be_bytes());
        let t = Instant::now();
        let attempt =
            limits.reserve(Guard::SignIn, &format!("user{i}@example.com"), Some(addr)).await.unwrap();
        drop(attempt); // a failure, counted
        limits.check_rate(AUTH_BUCKET, Some(addr)).await.unwrap();
        window.push(t.elapsed());
        if (i + 1) % 200_000 == 0 {
            window.sort();
            println!(
                "| {} | {:.1} µs | {:.1} µs | {} | {:.0} MiB (+{:.0}) |",
                i + 1,
                percentile(&window, 0.5).as_secs_f64() * 1e6,
                percentile(&window, 0.99).as_secs_f64() * 1e6,
                limits.records_in_memory(),
                rss(),
                rss() - started_rss,
            );
            window.clear();
        }
    }
}

#[tokio::main]
async fn main() {
    let database = if std::env::var("ASHGATE_TEST_DATABASE_URL").is_ok() { "PostgreSQL" } else { "SQLite" };
    println!("identity bench on {database}, {} s per load figure", RUN_FOR.as_secs());
    let fx = IdentityFixture::start().await;
    login_latency(&fx).await;
    let key = fx.system_key("bench").await;
    verify_rpc(&fx, &key).await;
    client_library(&fx, &key).await;
    propagation(&fx, &fx, "within one replica").await;
    limits_under_a_million_keys().await;
    if std::env::var("ASHGATE_TEST_REDIS_URL").is_ok() {
        let b = fx.replica(|env| env).await;
        propagation(&fx, &b, "replica A -> replica B (Redis)").await;
    } else {
        println!("(set ASHGATE_TEST_REDIS_URL for propagation between two replicas)");
    }
}
