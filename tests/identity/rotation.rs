//! Rotating `PHOENIX_SECRET` at identity-svc: tokens name their secret (`kid`), a `kid` naming
//! no configured secret is refused, tokens from before key ids verify against every configured
//! secret and stop when theirs is dropped, `ashgate secrets status` counts what depends on each
//! secret through the real binary, and a bad `ASHGATE_PREVIOUS_SECRETS` stops start-up with one
//! line. End to end through the gateway: `tests/security/rotation.rs`; the fleet roll:
//! `tests/fleet/rotation.rs`.

use std::process::{Command, Stdio};

use ashgate_identity::secret::Secret;
use ashgate_identity::token::secret_id;
use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{IdentityFixture, SECRET, internal};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tonic::Code;

use crate::outcome;

/// The secret a rotation moves to.
const NEW: &str = "rotated-secret-0123456789abcdefghijkl";
/// A secret this deployment never had.
const STRANGER: &str = "stranger-secret-0123456789abcdefghij";

fn id_of(secret: &str) -> String {
    secret_id(&Secret::new(secret))
}

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `token`'s claims signed again with `secret` under `kid` (none: a token from before key ids).
fn resigned(token: &str, kid: Option<String>, secret: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid;
    jsonwebtoken::encode(&header, &claims_of(token), &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

async fn verify(fx: &IdentityFixture, credential: &str) -> (Code, String) {
    let request = pb::VerifyCredentialRequest { credential: credential.to_owned() };
    outcome(fx.internal().verify_credential(internal(request)).await)
}

const OK: (Code, String) = (Code::Ok, String::new());

fn invalid() -> (Code, String) {
    (Code::Unauthenticated, "Invalid token".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kid_decides_which_secret_checks_the_token() {
    let fx = IdentityFixture::start_with(|env| env.with("ASHGATE_PREVIOUS_SECRETS", STRANGER)).await;
    let key = fx.system_key("kid-target").await;
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(key.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], id_of(SECRET), "signed by PHOENIX_SECRET, named by its id");
    assert!(!key.contains(SECRET) && !header.to_string().contains("secret"));
    assert_eq!(verify(&fx, &key).await, OK);
    let cases = [
        ("a kid naming no configured secret", resigned(&key, Some("ffffffffffffffff".into()), SECRET)),
        ("a kid that is not an id at all", resigned(&key, Some(SECRET.into()), SECRET)),
        (
            "the previous secret's kid over the current secret's signature",
            resigned(&key, Some(id_of(STRANGER)), SECRET),
        ),
        ("the current kid over another secret's signature", resigned(&key, Some(id_of(SECRET)), NEW)),
        ("another secret's own kid", resigned(&key, Some(id_of(NEW)), NEW)),
    ];
    for (what, token) in cases {
        assert_eq!(verify(&fx, &token).await, invalid(), "{what}");
    }
    // A previous secret verifies what it signs, under its own id (that is what it is for).
    assert_eq!(verify(&fx, &resigned(&key, Some(id_of(STRANGER)), STRANGER)).await, OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_before_key_ids_verify_until_their_secret_is_dropped() {
    let fx = IdentityFixture::start().await;
    let key = fx.system_key("legacy").await;
    let session = fx.login("admin@localhost", "admin").await;
    // What an older ashgate issued: the same claims, no kid.
    let (legacy_key, legacy_access) =
        (resigned(&key, None, SECRET), resigned(&session.access_token, None, SECRET));
    assert_eq!(verify(&fx, &legacy_key).await, OK);
    let rotated =
        fx.replica(|env| env.with("PHOENIX_SECRET", NEW).with("ASHGATE_PREVIOUS_SECRETS", SECRET)).await;
    assert_eq!(verify(&rotated, &legacy_key).await, OK, "tried against the previous secret");
    assert_eq!(verify(&rotated, &legacy_access).await, OK);
    assert_eq!(verify(&rotated, &key).await, OK);
    // Forged without a kid: refused, whichever secrets are tried.
    assert_eq!(verify(&rotated, &resigned(&key, None, STRANGER)).await, invalid());

    // Dropped: refused, legacy or not.
    let dropped = fx.replica(|env| env.with("PHOENIX_SECRET", NEW)).await;
    for (what, token) in [("key", &key), ("legacy key", &legacy_key), ("access", &session.access_token)] {
        assert_eq!(verify(&dropped, token).await, invalid(), "{what}");
    }
    let refresh = outcome(
        dropped
            .auth()
            .refresh(pb::RefreshRequest { refresh_token: session.refresh_token, access_token: String::new() })
            .await,
    );
    assert_eq!(refresh, (Code::Unauthenticated, "Invalid refresh token".into()));
    // The old configuration, in turn, cannot check what the new secret signs.
    let new_key = dropped.system_key("new").await;
    assert_eq!(verify(&dropped, &new_key).await, OK);
    assert_eq!(verify(&fx, &new_key).await, invalid());
}

/// `ashgate secrets status` with `env` on the fixture's database: exit code, stdout, stderr.
fn secrets_status(fx: &IdentityFixture, env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ashgate"))
        .args(["secrets", "status"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("PHOENIX_SQL_DATABASE_URL", fx.database.url.expose())
        .env("PHOENIX_ENABLE_AUTH", "true")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

/// The (role, live sessions, API keys) row of secret id `id` in a status table.
fn row_of(table: &str, id: &str) -> Option<(String, u64, u64)> {
    table.lines().find(|l| l.starts_with(id)).map(|line| {
        let cells: Vec<&str> = line.split_whitespace().collect();
        (cells[1].to_owned(), cells[2].parse().unwrap(), cells[3].parse().unwrap())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_status_counts_live_sessions_and_keys_per_secret() {
    let fx = IdentityFixture::start().await;
    // Under the old secret: two system keys and two sign-ins.
    fx.system_key("old-1").await;
    fx.system_key("old-2").await;
    let first = fx.login("admin@localhost", "admin").await;
    fx.login("admin@localhost", "admin").await;
    // A replica on the new secret, still accepting the old: one key, one sign-in, and one of the
    // old sessions renewed (it moves to the new secret).
    let rotated =
        fx.replica(|env| env.with("PHOENIX_SECRET", NEW).with("ASHGATE_PREVIOUS_SECRETS", SECRET)).await;
    rotated.system_key("new-1").await;
    rotated.login("admin@localhost", "admin").await;
    rotated
        .auth()
        .refresh(pb::RefreshRequest { refresh_token: first.refresh_token, access_token: first.access_token })
        .await
        .unwrap();

    let rotated_env = [("PHOENIX_SECRET", NEW), ("ASHGATE_PREVIOUS_SECRETS", SECRET)];
    let (code, table, stderr) = tokio::task::block_in_place(|| secrets_status(&fx, &rotated_env));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(row_of(&table, &id_of(NEW)), Some(("current".into(), 2, 1)), "{table}");
    assert_eq!(row_of(&table, &id_of(SECRET)), Some(("previous".into(), 1, 2)), "{table}");
    assert!(table.starts_with("secret id"), "{table}");
    assert!(!table.contains("can be retired"), "{table}");
    for secret in [NEW, SECRET] {
        assert!(
            !table.contains(secret) && !stderr.contains(secret),
            "a secret was printed:\n{table}{stderr}"
        );
    }
    // Dropped from the configuration, the old secret's rows are still there but refused.
    let (code, table, _) = tokio::task::block_in_place(|| secrets_status(&fx, &[("PHOENIX_SECRET", NEW)]));
    assert_eq!(code, 0);
    assert_eq!(row_of(&table, &id_of(SECRET)), Some(("retired".into(), 1, 2)), "{table}");
    // A previous secret nothing depends on is said to be retirable.
    let (_, table, _) = tokio::task::block_in_place(|| {
        secrets_status(&fx, &[("PHOENIX_SECRET", NEW), ("ASHGATE_PREVIOUS_SECRETS", STRANGER)])
    });
    assert_eq!(row_of(&table, &id_of(STRANGER)), Some(("previous".into(), 0, 0)), "{table}");
    assert!(
        table
            .contains(&format!("previous secret {} signed nothing live: it can be retired", id_of(STRANGER)))
    );
    // Without a secret there is nothing to report, said in one line.
    let (code, _, stderr) =
        tokio::task::block_in_place(|| secrets_status(&fx, &[("PHOENIX_ENABLE_AUTH", "false")]));
    assert_eq!((code, stderr.trim_end()), (1, "ashgate: PHOENIX_SECRET: is not set, so nothing is signed"));
    let unreachable =
        [("PHOENIX_SECRET", NEW), ("PHOENIX_SQL_DATABASE_URL", "sqlite:///nonexistent/dir/ashgate.db")];
    let (code, _, stderr) = tokio::task::block_in_place(|| secrets_status(&fx, &unreachable));
    assert_eq!(code, 1);
    assert!(stderr.trim_end().starts_with("ashgate: cannot connect to the database: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let (code, _, stderr) = tokio::task::block_in_place(|| secrets_status(&fx, &[]));
    assert_eq!(
        (code, stderr.trim_end()),
        (1, "ashgate: PHOENIX_SECRET: is required when PHOENIX_ENABLE_AUTH is true")
    );
}

/// `ashgate <args>` with `env`: its exit code and the last line of standard error (it must stop).
fn start_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ashgate"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("PHOENIX_WORKING_DIR", dir.path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ashgate {args:?} started despite {env:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr.lines().last().unwrap_or_default().to_owned())
}

#[test]
fn a_bad_previous_secret_stops_start_up_with_one_line_naming_the_variable() {
    let auth = [("PHOENIX_ENABLE_AUTH", "true"), ("PHOENIX_SECRET", SECRET)];
    let weak = "previous-secret-without-any-digits-at-all";
    let cases = [
        (format!("{NEW},{weak}"), "entry 2 must contain at least one digit"),
        (format!("{NEW},,"), "entry 2 is empty"),
        (SECRET.to_owned(), "entry 1 is PHOENIX_SECRET itself"),
    ];
    for (list, rule) in cases {
        let env = [&auth[..], &[("ASHGATE_PREVIOUS_SECRETS", list.as_str())]].concat();
        // `ashgate identity` is identity-svc's own process: a configuration error exits 2 under
        // its name, as every service process does (ashgate_runtime::run).
        let expected = [
            (&["serve"][..], 1, "ashgate"),
            (&["identity"], 2, "identity-svc"),
            (&["secrets", "status"], 1, "ashgate"),
        ];
        for (args, status, name) in expected {
            let (code, line) = start_with(args, &env);
            assert_eq!(
                (code, line.as_str()),
                (status, format!("{name}: ASHGATE_PREVIOUS_SECRETS: {rule}").as_str()),
                "{args:?}"
            );
            assert!(!line.contains(weak) && !line.contains(NEW), "{line}");
        }
    }
}
