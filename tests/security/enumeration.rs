//! Login enumeration by timing: an unknown email, a known email with a wrong password and a
//! user without a password (created by `PHOENIX_ADMINS`) must take the same time, or an attacker
//! learns which emails have accounts. The messages are the same (`tests/identity/sessions.rs`,
//! `login_failures_are_indistinguishable`); this measures the time.
//!
//! The requirement is a ratio, so this is the one timing assertion of the suite, made robust:
//! many samples, the three kinds interleaved (so load from other tests and CPU frequency hit
//! them alike), medians rather than means (a descheduled sample moves a mean, not a median),
//! and a bound of 1.5x either way. A real leak is not subtle: skipping argon2 for unknown emails
//! makes them ~50-100x faster, and one extra database round trip is well under 10% of an argon2
//! verification (19 MiB, t=2). The kinds also rotate through the positions within a round.

use std::time::{Duration, Instant};

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::IdentityFixture;

const SAMPLES: usize = 25;
const BOUND: f64 = 1.5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_email_costs_what_a_wrong_password_costs() {
    let fx = IdentityFixture::start_with(|env| {
        env.with("PHOENIX_DISABLE_BRUTE_FORCE_LOGIN_PROTECTION", "true")
            .with("PHOENIX_ADMINS", "seeded=seeded@example.com")
    })
    .await;
    fx.user_with_role("timed", pb::Role::Member).await;
    let cases = [
        ("unknown email", "nobody-here@example.com"),
        ("wrong password", "timed@example.com"),
        ("user without a password", "seeded@example.com"),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut auth = fx.auth();
    // One warm-up round (connections, caches, the hashing pool's threads).
    for round in 0..=SAMPLES {
        // Each kind takes each position in turn, so a position effect hits all alike.
        for i in (0..cases.len()).map(|k| (k + round) % cases.len()) {
            let (what, email) = cases[i];
            let started = Instant::now();
            let status = auth
                .login(pb::LoginRequest { email: email.into(), password: "not-the-password".into() })
                .await
                .unwrap_err();
            let took = started.elapsed();
            assert_eq!(status.message(), "Invalid email and/or password", "{what}");
            if round > 0 {
                times[i].push(took);
            }
        }
    }
    let medians: Vec<Duration> = times.into_iter().map(median).collect();
    let reference = medians[1].as_secs_f64();
    for ((what, _), m) in cases.iter().zip(&medians) {
        let ratio = m.as_secs_f64() / reference;
        eprintln!("login timing: {what}: median {m:?} (ratio to wrong password {ratio:.3})");
        assert!(
            (1.0 / BOUND..=BOUND).contains(&ratio),
            "{what} takes {m:?}, a wrong password {:?}: ratio {ratio:.2} is outside 1/{BOUND}..{BOUND}",
            medians[1]
        );
    }
}
