//! identity-svc configuration: Phoenix's variables with Phoenix's defaults and rules, plus
//! ashgate's `ASHGATE_*` additions. Built once at start-up and passed down.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ashgate_runtime::env::{ConfigError, Env};

use crate::secret::Secret;

/// Everything identity-svc needs to know at start-up.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// `PHOENIX_ENABLE_AUTH`: when false every call is an anonymous admin-equivalent principal.
    pub auth_enabled: bool,
    /// `PHOENIX_SECRET`: signs every token. Required when auth is enabled.
    pub secret: Option<Secret>,
    /// `ASHGATE_PREVIOUS_SECRETS`: comma-separated secrets still accepted for verification
    /// (rotation); they sign nothing.
    pub previous_secrets: Vec<Secret>,
    /// `PHOENIX_ADMIN_SECRET`: a static bearer token that acts as the system user with admin rights.
    pub admin_secret: Option<Secret>,
    /// `ASHGATE_INTERNAL_TOKEN`: what collector-svc and gateway present to internal-only RPCs.
    pub internal_token: Option<Secret>,
    /// `ASHGATE_GATEWAY_TOKEN`: what only the gateway presents, for the calls that decide whose
    /// account opens or which address a sign-in came from (OAuth2 completion, client address,
    /// reset requests). Without it (one process) the internal credential stands in.
    pub gateway_token: Option<Secret>,
    /// `PHOENIX_DEFAULT_ADMIN_INITIAL_PASSWORD`: only used when the default admin is first created.
    pub default_admin_password: Secret,
    /// `PHOENIX_ADMINS`: `(username, email)` pairs created as admins at start-up when missing.
    pub admins: Vec<(String, String)>,
    /// `PHOENIX_ENABLE_STRONG_PASSWORD_POLICY`.
    pub strong_password_policy: bool,
    /// `PHOENIX_DISABLE_BASIC_AUTH`: password login and local-user creation refused.
    pub basic_auth_disabled: bool,
    /// `PHOENIX_ACCESS_TOKEN_EXPIRY_MINUTES` (10 min).
    pub access_token_ttl: Duration,
    /// `PHOENIX_REFRESH_TOKEN_EXPIRY_MINUTES` (7 days).
    pub refresh_token_ttl: Duration,
    /// `ASHGATE_REFRESH_REUSE_GRACE_SECONDS` (5): how long after a refresh token was exchanged
    /// a second use gets a fresh pair of the same session (two tabs renewing at once) instead
    /// of being treated as a replay that ends the session.
    pub refresh_reuse_grace: Duration,
    /// `ASHGATE_PASSWORD_RESET_COOLDOWN_SECONDS` (60): one reset mail per account at most this
    /// often, so a flood of requests can neither fill the inbox nor void the link just sent.
    pub password_reset_cooldown: Duration,
    /// `PHOENIX_PASSWORD_RESET_TOKEN_EXPIRY_MINUTES` (15 min).
    pub password_reset_token_ttl: Duration,
    /// `PHOENIX_SQL_DATABASE_URL`, else a SQLite file under `PHOENIX_WORKING_DIR`.
    pub database_url: String,
    /// `ASHGATE_REDIS_URL`: shared revocations and limits between replicas.
    pub redis_url: Option<String>,
    /// `ASHGATE_REDIS_NAMESPACE` (`ashgate`): prefix of every Redis key and channel, so several
    /// deployments (or test runs) can share one Redis.
    pub redis_namespace: String,
    /// `PHOENIX_HOST` + `ASHGATE_IDENTITY_PORT` (50051).
    pub listen: SocketAddr,
    /// `PHOENIX_HOST` + `ASHGATE_IDENTITY_METRICS_PORT` (50052): HTTP `/healthz`, `/readyz`,
    /// `/metrics` of identity-svc running as its own process.
    pub ops_listen: SocketAddr,
    /// Brute-force lockout settings.
    pub login_protection: LoginProtection,
    /// `PHOENIX_DISABLE_RATE_LIMIT` inverted: per-address limits on sign-in and reset requests.
    pub rate_limit_enabled: bool,
    /// `ASHGATE_VERIFY_CACHE_SECONDS` (60): the longest any verifier may cache an answer.
    pub max_cache_ttl: Duration,
    /// `ASHGATE_IDENTITY_MAX_CONNECTIONS` (1024): gRPC connections open at once; more are closed
    /// as soon as they are accepted.
    pub max_connections: usize,
    /// Password hashes computed at once (`ASHGATE_PASSWORD_HASH_CONCURRENCY`, default: cores).
    pub password_hash_concurrency: usize,
    /// `ASHGATE_IDENTITY_TLS_*`: serve gRPC over TLS, optionally requiring client certificates.
    pub tls: Option<ashgate_runtime::tls::ServerTls>,
    /// `PHOENIX_SMTP_*`: password-reset mail; `None` when not configured.
    pub smtp: Option<crate::mailer::SmtpConfig>,
    /// `PHOENIX_LDAP_*`: sign-in against a directory; `None` unless `PHOENIX_LDAP_HOST` is set.
    pub ldap: Option<crate::ldap::LdapConfig>,
    /// At least one `PHOENIX_OAUTH2_<IDP>_CLIENT_ID` is set (decides what `PHOENIX_ADMINS`
    /// creates when password sign-in is disabled).
    pub oauth2_configured: bool,
    /// `PHOENIX_ROOT_URL`: the public URL that mailed links start with (required with SMTP:
    /// a link's address must never come from a request, whose `Host` an attacker writes).
    pub root_url: Option<String>,
    /// `ASHGATE_AUDIT_RETENTION_DAYS` (90): audit events older than this are deleted.
    pub audit_retention: Duration,
}

/// Phoenix's per-email brute-force lockout, keyed by (email, client address) in ashgate.
#[derive(Debug, Clone, Copy)]
pub struct LoginProtection {
    /// `PHOENIX_DISABLE_BRUTE_FORCE_LOGIN_PROTECTION` inverted.
    pub enabled: bool,
    /// `PHOENIX_BRUTE_FORCE_LOGIN_PROTECTION_MAX_ATTEMPTS` (5) failures per (email, address).
    pub max_attempts: u64,
    /// Failures of one email from all addresses together before it is locked everywhere.
    pub max_attempts_per_email: u64,
    /// How long a lock lasts (300 s, as Phoenix).
    pub lockout: Duration,
    /// How long failures are remembered without a new one (15 min, as Phoenix's partitions).
    pub window: Duration,
}

const PHOENIX_SECRET: &str = "PHOENIX_SECRET";
/// Phoenix's rule: without password sign-in there must be another way in.
pub const BASIC_AUTH_NEEDS_ANOTHER_WAY: &str = "is set, but no alternative authentication method is configured: configure OAuth2 (PHOENIX_OAUTH2_<IDP>_CLIENT_ID) or LDAP (PHOENIX_LDAP_HOST)";
const PHOENIX_ADMIN_SECRET: &str = "PHOENIX_ADMIN_SECRET";
const PREVIOUS_SECRETS: &str = "ASHGATE_PREVIOUS_SECRETS";

impl IdentityConfig {
    /// Reads and validates the whole configuration; the error names the variable and the rule.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let auth_enabled = env.bool("PHOENIX_ENABLE_AUTH", false)?;
        // Phoenix validates a set secret even when auth is off.
        let secret =
            env.string(PHOENIX_SECRET).map(|s: String| validate_secret(PHOENIX_SECRET, &s)).transpose()?;
        if auth_enabled && secret.is_none() {
            return Err(ConfigError::new(PHOENIX_SECRET, "is required when PHOENIX_ENABLE_AUTH is true"));
        }
        let admin_secret = env
            .string(PHOENIX_ADMIN_SECRET)
            .map(|s: String| validate_secret(PHOENIX_ADMIN_SECRET, &s))
            .transpose()?;
        if let Some(admin_secret) = &admin_secret {
            let Some(secret) = &secret else {
                return Err(ConfigError::new(PHOENIX_ADMIN_SECRET, "requires PHOENIX_SECRET to be set"));
            };
            if secret.matches(admin_secret.expose()) {
                return Err(ConfigError::new(PHOENIX_ADMIN_SECRET, "must differ from PHOENIX_SECRET"));
            }
        }
        let previous_secrets = env
            .string(PREVIOUS_SECRETS)
            .map(|list| parse_previous_secrets(&list, secret.as_ref(), admin_secret.as_ref()))
            .transpose()?
            .unwrap_or_default();
        let internal_token = env
            .string("ASHGATE_INTERNAL_TOKEN")
            .map(|t| {
                if t.len() < 32 || t.chars().any(char::is_whitespace) {
                    Err(ConfigError::new(
                        "ASHGATE_INTERNAL_TOKEN",
                        "must be at least 32 characters without whitespace",
                    ))
                } else {
                    Ok(Secret::new(t))
                }
            })
            .transpose()?;
        let gateway_token = env
            .string("ASHGATE_GATEWAY_TOKEN")
            .map(|t| {
                if t.len() < 32 || t.chars().any(char::is_whitespace) {
                    Err(ConfigError::new(
                        "ASHGATE_GATEWAY_TOKEN",
                        "must be at least 32 characters without whitespace",
                    ))
                } else if internal_token.as_ref().is_some_and(|i| i.matches(&t)) {
                    Err(ConfigError::new("ASHGATE_GATEWAY_TOKEN", "must differ from ASHGATE_INTERNAL_TOKEN"))
                } else {
                    Ok(Secret::new(t))
                }
            })
            .transpose()?;
        let default_admin_password = Secret::new(
            env.string("PHOENIX_DEFAULT_ADMIN_INITIAL_PASSWORD").unwrap_or_else(|| "admin".into()),
        );
        let admins =
            env.string("PHOENIX_ADMINS").map(|v: String| parse_admins(&v)).transpose()?.unwrap_or_default();
        let basic_auth_disabled = env.bool("PHOENIX_DISABLE_BASIC_AUTH", false)?;
        let ldap = crate::ldap::LdapConfig::from_env(env, &admins)?;
        if auth_enabled && basic_auth_disabled && !oauth2_configured(env) && ldap.is_none() {
            return Err(ConfigError::new("PHOENIX_DISABLE_BASIC_AUTH", BASIC_AUTH_NEEDS_ANOTHER_WAY));
        }
        let host: IpAddr = match env.string("PHOENIX_HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(h) => h.parse().map_err(|_| ConfigError::new("PHOENIX_HOST", "must be an IP address"))?,
        };
        let listen = SocketAddr::new(host, env.port("ASHGATE_IDENTITY_PORT", 50051)?);
        let ops_listen = SocketAddr::new(host, env.port("ASHGATE_IDENTITY_METRICS_PORT", 50052)?);
        let max_attempts = env.u64_in("PHOENIX_BRUTE_FORCE_LOGIN_PROTECTION_MAX_ATTEMPTS", 5, 1, 1_000)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let smtp = crate::mailer::SmtpConfig::from_env(env)?;
        let root_url = env.root_url()?;
        if smtp.is_some() && root_url.is_none() {
            return Err(ConfigError::new(
                "PHOENIX_ROOT_URL",
                "is required when PHOENIX_SMTP_HOSTNAME is set (mailed links are built from it, never from a request)",
            ));
        }
        Ok(Self {
            auth_enabled,
            secret,
            previous_secrets,
            admin_secret,
            internal_token,
            gateway_token,
            default_admin_password,
            admins,
            strong_password_policy: env.bool("PHOENIX_ENABLE_STRONG_PASSWORD_POLICY", false)?,
            basic_auth_disabled,
            access_token_ttl: env.minutes("PHOENIX_ACCESS_TOKEN_EXPIRY_MINUTES", 10.0)?,
            refresh_token_ttl: env.minutes("PHOENIX_REFRESH_TOKEN_EXPIRY_MINUTES", 7.0 * 24.0 * 60.0)?,
            password_reset_token_ttl: env.minutes("PHOENIX_PASSWORD_RESET_TOKEN_EXPIRY_MINUTES", 15.0)?,
            password_reset_cooldown: Duration::from_secs(env.u64_in(
                "ASHGATE_PASSWORD_RESET_COOLDOWN_SECONDS",
                60,
                0,
                3_600,
            )?),
            refresh_reuse_grace: Duration::from_secs(env.u64_in(
                "ASHGATE_REFRESH_REUSE_GRACE_SECONDS",
                5,
                0,
                60,
            )?),
            database_url: database_url(env)?,
            redis_url: env
                .string("ASHGATE_REDIS_URL")
                .map(|url: String| validate_redis_url(&url))
                .transpose()?,
            redis_namespace: redis_namespace(env)?,
            listen,
            ops_listen,
            login_protection: LoginProtection {
                enabled: !env.bool("PHOENIX_DISABLE_BRUTE_FORCE_LOGIN_PROTECTION", false)?,
                max_attempts,
                max_attempts_per_email: max_attempts * 10,
                lockout: Duration::from_secs(300),
                window: Duration::from_secs(15 * 60),
            },
            rate_limit_enabled: !env.bool("PHOENIX_DISABLE_RATE_LIMIT", false)?,
            max_cache_ttl: Duration::from_secs(env.u64_in("ASHGATE_VERIFY_CACHE_SECONDS", 60, 0, 3_600)?),
            max_connections: usize::try_from(env.u64_in(
                "ASHGATE_IDENTITY_MAX_CONNECTIONS",
                1024,
                1,
                1_000_000,
            )?)
            .unwrap_or(1024),
            password_hash_concurrency: env
                .u64_in("ASHGATE_PASSWORD_HASH_CONCURRENCY", cores as u64, 1, 64)?
                .try_into()
                .unwrap_or(cores),
            smtp,
            root_url,
            tls: ashgate_runtime::tls::ServerTls::from_env(env)?,
            ldap,
            oauth2_configured: oauth2_configured(env),
            audit_retention: Duration::from_secs(
                86_400 * env.u64_in("ASHGATE_AUDIT_RETENTION_DAYS", 90, 1, 36_500)?,
            ),
        })
    }

    /// identity-svc running on its own must be told the internal service credential (when
    /// auth is on), or no other service could verify anything through it.
    pub fn require_internal_token(self) -> Result<Self, ConfigError> {
        let mutual_tls = self.tls.as_ref().is_some_and(|tls| tls.is_mutual());
        if self.auth_enabled && self.internal_token.is_none() && !mutual_tls {
            return Err(ConfigError::new(
                "ASHGATE_INTERNAL_TOKEN",
                "is required when identity-svc runs as its own process with PHOENIX_ENABLE_AUTH=true (or use mTLS: ASHGATE_IDENTITY_TLS_CLIENT_CA_FILE)",
            ));
        }
        if self.auth_enabled && self.gateway_token.is_none() {
            return Err(ConfigError::new(
                "ASHGATE_GATEWAY_TOKEN",
                "is required when identity-svc runs as its own process with PHOENIX_ENABLE_AUTH=true (the gateway's own credential: collectors must not be able to complete sign-ins)",
            ));
        }
        Ok(self)
    }

    /// The signing secret, when auth is enabled (checked at start-up).
    pub fn signing_secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }
}

/// Phoenix's `REQUIREMENTS_FOR_PHOENIX_SECRET`: non-empty, ASCII, no whitespace, >= 32 chars,
/// >= 1 digit, >= 1 lowercase letter.
fn validate_secret(var: &str, value: &str) -> Result<Secret, ConfigError> {
    match secret_rule_broken(value) {
        Some(rule) => Err(ConfigError::new(var, rule)),
        None => Ok(Secret::new(value)),
    }
}

/// `ASHGATE_PREVIOUS_SECRETS`: each entry follows `PHOENIX_SECRET`'s rules and is named by its
/// position (never its value); none may repeat another, `PHOENIX_SECRET` or the admin secret.
fn parse_previous_secrets(
    list: &str,
    current: Option<&Secret>,
    admin_secret: Option<&Secret>,
) -> Result<Vec<Secret>, ConfigError> {
    let Some(current) = current else {
        return Err(ConfigError::new(PREVIOUS_SECRETS, "requires PHOENIX_SECRET to be set"));
    };
    let mut secrets: Vec<Secret> = Vec::new();
    for (i, entry) in list.split(',').map(str::trim).enumerate() {
        let n = i + 1;
        if entry.is_empty() {
            return Err(ConfigError::new(PREVIOUS_SECRETS, format!("entry {n} is empty")));
        }
        if let Some(rule) = secret_rule_broken(entry) {
            return Err(ConfigError::new(PREVIOUS_SECRETS, format!("entry {n} {rule}")));
        }
        let reason = if current.matches(entry) {
            Some("is PHOENIX_SECRET itself".to_owned())
        } else if admin_secret.is_some_and(|a| a.matches(entry)) {
            Some("must differ from PHOENIX_ADMIN_SECRET".to_owned())
        } else {
            secrets.iter().position(|s| s.matches(entry)).map(|j| format!("repeats entry {}", j + 1))
        };
        if let Some(reason) = reason {
            return Err(ConfigError::new(PREVIOUS_SECRETS, format!("entry {n} {reason}")));
        }
        secrets.push(Secret::new(entry));
    }
    Ok(secrets)
}

/// The first of Phoenix's secret rules that `value` breaks.
fn secret_rule_broken(value: &str) -> Option<&'static str> {
    if !value.is_ascii() {
        Some("must contain only ASCII characters")
    } else if value.chars().any(|c| c.is_ascii_whitespace()) {
        Some("must not contain whitespace")
    } else if value.len() < 32 {
        Some("must be at least 32 characters long")
    } else if !value.chars().any(|c| c.is_ascii_digit()) {
        Some("must contain at least one digit")
    } else if !value.chars().any(|c| c.is_ascii_lowercase()) {
        Some("must contain at least one lowercase letter")
    } else {
        None
    }
}

/// `username=email;username2=email2`: split on `;`, the last `=` separates, email lower-cased and
/// checked, duplicate usernames or emails refused.
pub fn parse_admins(value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    const VAR: &str = "PHOENIX_ADMINS";
    let mut admins: Vec<(String, String)> = Vec::new();
    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((username, email)) = entry.rsplit_once('=') else {
            return Err(ConfigError::new(VAR, format!("entry {entry:?} must be username=email")));
        };
        let (username, email) = (username.trim(), email.trim().to_lowercase());
        if username.is_empty() {
            return Err(ConfigError::new(VAR, format!("entry {entry:?} has an empty username")));
        }
        if !crate::user::is_valid_email(&email) {
            return Err(ConfigError::new(VAR, format!("entry {entry:?} has an invalid email")));
        }
        if admins.iter().any(|(u, _)| u == username) {
            return Err(ConfigError::new(VAR, format!("username {username:?} appears more than once")));
        }
        if admins.iter().any(|(_, e)| *e == email) {
            return Err(ConfigError::new(VAR, format!("email {email:?} appears more than once")));
        }
        admins.push((username.to_owned(), email));
    }
    Ok(admins)
}

fn oauth2_configured(env: &Env) -> bool {
    env.with_prefix("PHOENIX_OAUTH2_").any(|(k, v)| k.ends_with("_CLIENT_ID") && !v.is_empty())
}

fn database_url(env: &Env) -> Result<String, ConfigError> {
    if let Some(url) = env.string("PHOENIX_SQL_DATABASE_URL") {
        let supported = ["postgres://", "postgresql://", "sqlite:"];
        if !supported.iter().any(|p| url.starts_with(p)) {
            return Err(ConfigError::new(
                "PHOENIX_SQL_DATABASE_URL",
                "must be a postgresql:// or sqlite: URL",
            ));
        }
        return Ok(url);
    }
    let dir = working_dir(env)?;
    Ok(format!("sqlite://{}?mode=rwc", dir.join("ashgate.db").display()))
}

/// `PHOENIX_WORKING_DIR`, else `~/.phoenix` (Phoenix's default), created if missing.
pub fn working_dir(env: &Env) -> Result<PathBuf, ConfigError> {
    const VAR: &str = "PHOENIX_WORKING_DIR";
    let dir = match env.string(VAR) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = env.string("HOME").ok_or_else(|| ConfigError::new(VAR, "is unset and so is HOME"))?;
            PathBuf::from(home).join(".phoenix")
        }
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| ConfigError::new(VAR, format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

fn redis_namespace(env: &Env) -> Result<String, ConfigError> {
    let namespace = env.string("ASHGATE_REDIS_NAMESPACE").unwrap_or_else(|| "ashgate".into());
    if namespace.len() > 64 || !namespace.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ConfigError::new("ASHGATE_REDIS_NAMESPACE", "must be 1-64 letters, digits, '-' or '_'"));
    }
    Ok(namespace)
}

fn validate_redis_url(url: &str) -> Result<String, ConfigError> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(url.to_owned())
    } else {
        Err(ConfigError::new("ASHGATE_REDIS_URL", "must be a redis:// or rediss:// URL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Env {
        Env::from_pairs([(
            "PHOENIX_WORKING_DIR",
            std::env::temp_dir().join("ashgate-config-test").display().to_string(),
        )])
    }

    const GOOD: &str = "0123456789abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn a_process_of_its_own_needs_the_internal_token() {
        let auth_on = || base().with("PHOENIX_ENABLE_AUTH", "true").with("PHOENIX_SECRET", GOOD);
        let err = IdentityConfig::from_env(&auth_on())
            .and_then(IdentityConfig::require_internal_token)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ASHGATE_INTERNAL_TOKEN: is required when identity-svc runs as its own process with PHOENIX_ENABLE_AUTH=true (or use mTLS: ASHGATE_IDENTITY_TLS_CLIENT_CA_FILE)"
        );
        let token = auth_on().with("ASHGATE_INTERNAL_TOKEN", "an-internal-token-of-32-characters!");
        let err =
            IdentityConfig::from_env(&token).and_then(IdentityConfig::require_internal_token).unwrap_err();
        assert!(
            err.to_string().starts_with("ASHGATE_GATEWAY_TOKEN: is required when identity-svc runs"),
            "{err}"
        );
        let same = token.clone().with("ASHGATE_GATEWAY_TOKEN", "an-internal-token-of-32-characters!");
        assert_eq!(
            IdentityConfig::from_env(&same).unwrap_err().to_string(),
            "ASHGATE_GATEWAY_TOKEN: must differ from ASHGATE_INTERNAL_TOKEN"
        );
        let token = token.with("ASHGATE_GATEWAY_TOKEN", "a-gateway-token-of-32-characters!!");
        assert!(IdentityConfig::from_env(&token).and_then(IdentityConfig::require_internal_token).is_ok());
        let auth_off = IdentityConfig::from_env(&base()).and_then(IdentityConfig::require_internal_token);
        assert!(auth_off.is_ok());
        // With mTLS a verified client certificate is the internal credential.
        let dir = std::env::temp_dir().join(format!("ashgate-config-mtls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("x.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").unwrap();
        let pem = pem.display().to_string();
        let mutual = auth_on()
            .with("ASHGATE_GATEWAY_TOKEN", "a-gateway-token-of-32-characters!!")
            .with("ASHGATE_IDENTITY_TLS_CERT_FILE", &pem)
            .with("ASHGATE_IDENTITY_TLS_KEY_FILE", &pem)
            .with("ASHGATE_IDENTITY_TLS_CLIENT_CA_FILE", &pem);
        assert!(IdentityConfig::from_env(&mutual).and_then(IdentityConfig::require_internal_token).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn previous_secrets_follow_the_secret_rules_and_never_echo_one() {
        const OLD: &str = "old-secret-0123456789abcdefghijklmnop";
        const OLDER: &str = "older-secret-0123456789abcdefghijklmn";
        let with = |list: &str| {
            base()
                .with("PHOENIX_SECRET", GOOD)
                .with("PHOENIX_ADMIN_SECRET", "admin-secret-0123456789abcdefghijklmn")
                .with("ASHGATE_PREVIOUS_SECRETS", list)
        };
        let config = IdentityConfig::from_env(&with(&format!(" {OLD} , {OLDER} "))).unwrap();
        let listed: Vec<&str> = config.previous_secrets.iter().map(Secret::expose).collect();
        assert_eq!(listed, [OLD, OLDER]);
        assert!(
            IdentityConfig::from_env(&base().with("PHOENIX_SECRET", GOOD))
                .unwrap()
                .previous_secrets
                .is_empty()
        );
        let cases = [
            (format!("{OLD},short1a"), "entry 2 must be at least 32 characters long"),
            (format!("{OLD},,{OLDER}"), "entry 2 is empty"),
            (format!("{OLD},"), "entry 2 is empty"),
            (
                "NO-LOWERCASE-0123456789-ABCDEFGHIJKLM".to_owned(),
                "entry 1 must contain at least one lowercase letter",
            ),
            (format!("{OLD},{GOOD}"), "entry 2 is PHOENIX_SECRET itself"),
            (format!("{OLDER},{OLD},{OLDER}"), "entry 3 repeats entry 1"),
            (
                "admin-secret-0123456789abcdefghijklmn".to_owned(),
                "entry 1 must differ from PHOENIX_ADMIN_SECRET",
            ),
        ];
        for (list, rule) in cases {
            let err = IdentityConfig::from_env(&with(&list)).unwrap_err().to_string();
            assert_eq!(err, format!("ASHGATE_PREVIOUS_SECRETS: {rule}"), "{list}");
            assert!(!err.contains("secret-0123"), "a secret leaked into {err}");
        }
        let alone = base().with("ASHGATE_PREVIOUS_SECRETS", OLD);
        assert_eq!(
            IdentityConfig::from_env(&alone).unwrap_err().to_string(),
            "ASHGATE_PREVIOUS_SECRETS: requires PHOENIX_SECRET to be set"
        );
        assert!(!format!("{config:?}").contains(OLD), "Debug shows no previous secret");
    }

    #[test]
    fn secret_rules_name_the_rule() {
        let cases = [
            ("short1a", "must be at least 32 characters long"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh", "must contain at least one digit"),
            ("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", "must contain at least one lowercase letter"),
            ("0123456789abcdefghijklmnop qrstuvwxyz", "must not contain whitespace"),
            ("0123456789abcdefghijklmnopqrstuvwxyzé", "must contain only ASCII characters"),
        ];
        for (secret, rule) in cases {
            let err = IdentityConfig::from_env(&base().with("PHOENIX_SECRET", secret)).unwrap_err();
            assert_eq!(err.to_string(), format!("PHOENIX_SECRET: {rule}"), "{secret}");
        }
        assert!(IdentityConfig::from_env(&base().with("PHOENIX_SECRET", GOOD)).is_ok());
    }

    #[test]
    fn auth_needs_a_secret() {
        let err = IdentityConfig::from_env(&base().with("PHOENIX_ENABLE_AUTH", "true")).unwrap_err();
        assert_eq!(err.to_string(), "PHOENIX_SECRET: is required when PHOENIX_ENABLE_AUTH is true");
        let err = IdentityConfig::from_env(&base().with("PHOENIX_ENABLE_AUTH", "yes")).unwrap_err();
        assert_eq!(err.to_string(), "PHOENIX_ENABLE_AUTH: must be true or false");
    }

    #[test]
    fn admin_secret_rules() {
        let err = IdentityConfig::from_env(&base().with("PHOENIX_ADMIN_SECRET", GOOD)).unwrap_err();
        assert_eq!(err.to_string(), "PHOENIX_ADMIN_SECRET: requires PHOENIX_SECRET to be set");
        let env = base().with("PHOENIX_SECRET", GOOD).with("PHOENIX_ADMIN_SECRET", GOOD);
        assert_eq!(
            IdentityConfig::from_env(&env).unwrap_err().to_string(),
            "PHOENIX_ADMIN_SECRET: must differ from PHOENIX_SECRET"
        );
    }

    #[test]
    fn admins_list_follows_phoenix() {
        let admins = parse_admins("alice=Alice@Example.com; b=ob=bob@example.com;").unwrap();
        assert_eq!(
            admins,
            vec![("alice".into(), "alice@example.com".into()), ("b=ob".into(), "bob@example.com".into())]
        );
        assert!(parse_admins("alice").unwrap_err().reason.contains("must be username=email"));
        assert!(parse_admins("a=x@y.com;a=z@y.com").unwrap_err().reason.contains("appears more than once"));
        assert!(parse_admins("a=x@y.com;b=X@y.com").unwrap_err().reason.contains("appears more than once"));
        assert!(parse_admins("a=not-an-email").unwrap_err().reason.contains("invalid email"));
    }

    #[test]
    fn expiries_and_database() {
        let env = base().with("PHOENIX_ACCESS_TOKEN_EXPIRY_MINUTES", "0");
        assert_eq!(
            IdentityConfig::from_env(&env).unwrap_err().to_string(),
            "PHOENIX_ACCESS_TOKEN_EXPIRY_MINUTES: must be a number of minutes greater than 0"
        );
        let env = base().with("PHOENIX_SQL_DATABASE_URL", "mysql://x");
        assert_eq!(
            IdentityConfig::from_env(&env).unwrap_err().to_string(),
            "PHOENIX_SQL_DATABASE_URL: must be a postgresql:// or sqlite: URL"
        );
        let config = IdentityConfig::from_env(&base()).unwrap();
        assert!(config.database_url.ends_with("ashgate.db?mode=rwc"));
        assert_eq!(config.refresh_token_ttl, Duration::from_secs(7 * 24 * 3600));
        assert!(!config.auth_enabled);
    }

    #[test]
    fn basic_auth_can_only_be_disabled_with_oauth2() {
        let env = base()
            .with("PHOENIX_ENABLE_AUTH", "true")
            .with("PHOENIX_SECRET", GOOD)
            .with("PHOENIX_DISABLE_BASIC_AUTH", "true");
        assert!(
            IdentityConfig::from_env(&env)
                .unwrap_err()
                .to_string()
                .starts_with("PHOENIX_DISABLE_BASIC_AUTH:")
        );
        assert_eq!(
            IdentityConfig::from_env(&env).unwrap_err().to_string(),
            format!("PHOENIX_DISABLE_BASIC_AUTH: {BASIC_AUTH_NEEDS_ANOTHER_WAY}")
        );
        let oauth2 = env.clone().with("PHOENIX_OAUTH2_GOOGLE_CLIENT_ID", "id");
        assert!(IdentityConfig::from_env(&oauth2).is_ok());
        let ldap = env
            .with("PHOENIX_LDAP_HOST", "ldap.example.com")
            .with("PHOENIX_LDAP_TLS_MODE", "none")
            .with("PHOENIX_LDAP_USER_SEARCH_BASE_DNS", r#"["ou=people,dc=example,dc=com"]"#)
            .with("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS", r#"[{"group_dn": "*", "role": "MEMBER"}]"#);
        assert!(IdentityConfig::from_env(&ldap).unwrap().ldap.is_some());
    }
}
