//! `GatewayConfig`: every setting of the gateway, read once from the environment with
//! Phoenix's names and rules (docs/phoenix-compat.md §1), validated completely at start-up.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;
use std::time::Duration;

use ashgate_identity_client::VerifierConfig;
use ashgate_runtime::env::{ConfigError, Env};
pub use ashgate_runtime::secret::Secret;

/// Phoenix's rule: without password sign-in there must be another way in (as identity-svc says).
pub const BASIC_AUTH_NEEDS_ANOTHER_WAY: &str = "is set, but no alternative authentication method is configured: configure OAuth2 (PHOENIX_OAUTH2_<IDP>_CLIENT_ID) or LDAP (PHOENIX_LDAP_HOST)";

/// Largest JSON body the REST and auth routes read.
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;
/// Largest OTLP body forwarded by `POST /v1/traces` (the collector's default limit).
pub const MAX_TRACES_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `PHOENIX_ENABLE_AUTH`.
    pub auth_enabled: bool,
    /// `PHOENIX_DISABLE_BASIC_AUTH`: the sign-in page shows no password form.
    pub basic_auth_disabled: bool,
    /// `PHOENIX_HOST` + `PHOENIX_PORT` (127.0.0.1:6006).
    pub listen: SocketAddr,
    /// `PHOENIX_HOST_ROOT_PATH`: "" or `/prefix` (starts with `/`, no trailing `/`).
    pub root_path: String,
    /// `PHOENIX_ROOT_URL`: the public URL (scheme, host, optional sub-path), without trailing `/`.
    pub root_url: Option<String>,
    /// `PHOENIX_COOKIES_PATH` (`/`).
    pub cookies_path: String,
    /// `PHOENIX_USE_SECURE_COOKIES`.
    pub secure_cookies: bool,
    /// `PHOENIX_CSRF_TRUSTED_ORIGINS`: lower-cased host names; empty = same-origin rule only.
    pub csrf_trusted_hosts: Vec<String>,
    /// `ASHGATE_IDENTITY_URL` (comma list).
    pub identity_urls: Vec<String>,
    /// `ASHGATE_INTERNAL_TOKEN`.
    pub internal_token: Option<Secret>,
    /// `ASHGATE_GATEWAY_TOKEN`: the gateway's own credential to identity-svc (sign-in completion,
    /// client addresses), which collectors do not hold.
    pub gateway_token: Option<Secret>,
    /// `ASHGATE_TLS_*`: how to reach `https://` identity URLs (CA, client certificate).
    pub identity_tls: ashgate_runtime::tls::ClientTls,
    /// `ASHGATE_COLLECTOR_GRPC_URLS`: the span read path.
    pub collector_grpc_urls: Vec<String>,
    /// `ASHGATE_COLLECTOR_HTTP_URLS`: where `POST /v1/traces` is forwarded, tried in order.
    pub collector_http_urls: Vec<String>,
    /// `ASHGATE_VERIFY_CACHE_SECONDS` (60): the longest a verified credential is cached.
    pub verify_cache_ttl: Duration,
    /// `ASHGATE_TRUSTED_PROXIES` / `ASHGATE_TRUSTED_PROXY_HOPS`: the proxies whose
    /// `X-Forwarded-For` entries name the client (none by default: the TCP peer is the client).
    pub trusted_proxies: crate::proxies::TrustedProxies,
    /// `PHOENIX_OAUTH2_<IDP>_*`: the identity providers, sorted by name.
    pub oauth2: Vec<crate::oauth2::config::ProviderConfig>,
    /// `PHOENIX_DISABLE_RATE_LIMIT` inverted: per-address limits on the OAuth2 routes.
    pub rate_limit_enabled: bool,
    /// `PHOENIX_SMTP_HOSTNAME` is set: the sign-in page offers password recovery by email.
    pub password_reset_email_enabled: bool,
    /// `PHOENIX_LDAP_HOST` is set: `POST /auth/ldap/login` and the LDAP form on the sign-in page
    /// (identity-svc reads and checks the rest of `PHOENIX_LDAP_*`).
    pub ldap_enabled: bool,
    /// `ASHGATE_HTTP_HEADER_TIMEOUT_SECONDS` (10) and `ASHGATE_HTTP_MAX_CONNECTIONS` (10000).
    pub connection_limits: crate::serve::ConnectionLimits,
    /// `ASHGATE_HTTP_BODY_TIMEOUT_SECONDS` (30): longest a request body may take to arrive.
    pub body_timeout: Duration,
    /// `ASHGATE_ALLOWED_HOSTS`: host names (besides localhost, loopback addresses, the host of
    /// `PHOENIX_ROOT_URL` and trusted origins) requests may name in `Host`; setting it turns the
    /// check on for a gateway bound to a non-loopback address too.
    pub allowed_hosts: Vec<String>,
    /// `ASHGATE_GATEWAY_MAX_FORWARDS` (32): `POST /v1/traces` exports read and forwarded at
    /// once; each holds its body (at most 4 MiB) in memory.
    pub max_forwards: usize,
}

impl GatewayConfig {
    /// Reads and validates every variable; the error names the first bad one.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let host = match env.string("PHOENIX_HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(h) if h.eq_ignore_ascii_case("localhost") => IpAddr::from([127, 0, 0, 1]),
            Some(h) => h.parse().map_err(|_| ConfigError::new("PHOENIX_HOST", "must be an IP address"))?,
        };
        let listen = SocketAddr::new(host, env.port("PHOENIX_PORT", 6006)?);
        let root_path = match env.string("PHOENIX_HOST_ROOT_PATH") {
            None => String::new(),
            Some(p) if !p.starts_with('/') => {
                return Err(ConfigError::new("PHOENIX_HOST_ROOT_PATH", "must start with '/'"));
            }
            Some(p) if p.ends_with('/') => {
                return Err(ConfigError::new("PHOENIX_HOST_ROOT_PATH", "must not end with '/'"));
            }
            Some(p) if p.chars().any(|c| c.is_whitespace() || c == '?' || c == '#') => {
                return Err(ConfigError::new("PHOENIX_HOST_ROOT_PATH", "must be a plain URL path"));
            }
            Some(p) => p,
        };
        let root_url = env.root_url()?;
        let cookies_path = env.string("PHOENIX_COOKIES_PATH").unwrap_or_else(|| "/".into());
        if !cookies_path.starts_with('/') || cookies_path.chars().any(|c| c.is_control() || c == ';') {
            return Err(ConfigError::new("PHOENIX_COOKIES_PATH", "must be a URL path starting with '/'"));
        }
        let csrf_trusted_hosts = match env.string("PHOENIX_CSRF_TRUSTED_ORIGINS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| {
                    url::Url::parse(item)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                        .ok_or_else(|| {
                            ConfigError::new(
                                "PHOENIX_CSRF_TRUSTED_ORIGINS",
                                format!("{item:?} is not a URL with a host name (e.g. https://example.com)"),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let verifier = VerifierConfig::from_env(env)?;
        let auth_enabled = env.bool("PHOENIX_ENABLE_AUTH", false)?;
        let basic_auth_disabled = env.bool("PHOENIX_DISABLE_BASIC_AUTH", false)?;
        let oauth2 = crate::oauth2::config::providers_from_env(env)?;
        let ldap_enabled = env
            .string("PHOENIX_LDAP_HOST")
            .is_some_and(|hosts| hosts.split(',').any(|h| !h.trim().is_empty()));
        if auth_enabled && basic_auth_disabled && oauth2.is_empty() && !ldap_enabled {
            return Err(ConfigError::new("PHOENIX_DISABLE_BASIC_AUTH", BASIC_AUTH_NEEDS_ANOTHER_WAY));
        }
        Ok(Self {
            auth_enabled,
            basic_auth_disabled,
            oauth2,
            rate_limit_enabled: !env.bool("PHOENIX_DISABLE_RATE_LIMIT", false)?,
            password_reset_email_enabled: env.string("PHOENIX_SMTP_HOSTNAME").is_some(),
            ldap_enabled,
            listen,
            root_path,
            root_url,
            cookies_path,
            secure_cookies: env.bool("PHOENIX_USE_SECURE_COOKIES", false)?,
            csrf_trusted_hosts,
            identity_urls: verifier.identity_urls,
            identity_tls: verifier.tls,
            internal_token: env.string("ASHGATE_INTERNAL_TOKEN").map(Secret::new),
            gateway_token: env.string("ASHGATE_GATEWAY_TOKEN").map(Secret::new),
            collector_grpc_urls: url_list(env, "ASHGATE_COLLECTOR_GRPC_URLS", "http://127.0.0.1:4317")?,
            collector_http_urls: url_list(env, "ASHGATE_COLLECTOR_HTTP_URLS", "http://127.0.0.1:4318")?,
            verify_cache_ttl: verifier.max_cache_ttl,
            trusted_proxies: crate::proxies::TrustedProxies::from_env(env)?,
            connection_limits: crate::serve::ConnectionLimits {
                header_timeout: Duration::from_secs(env.u64_in(
                    "ASHGATE_HTTP_HEADER_TIMEOUT_SECONDS",
                    10,
                    1,
                    3_600,
                )?),
                max_connections: usize::try_from(env.u64_in(
                    "ASHGATE_HTTP_MAX_CONNECTIONS",
                    10_000,
                    1,
                    1_000_000,
                )?)
                .unwrap_or(10_000),
                write_timeout: Duration::from_secs(env.u64_in(
                    "ASHGATE_HTTP_WRITE_TIMEOUT_SECONDS",
                    30,
                    1,
                    3_600,
                )?),
                max_connection_age: Duration::from_secs(env.u64_in(
                    "ASHGATE_HTTP_MAX_CONNECTION_AGE_SECONDS",
                    600,
                    1,
                    86_400,
                )?),
            },
            allowed_hosts: env
                .string("ASHGATE_ALLOWED_HOSTS")
                .map(|list| {
                    list.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect()
                })
                .unwrap_or_default(),
            max_forwards: usize::try_from(env.u64_in("ASHGATE_GATEWAY_MAX_FORWARDS", 32, 1, 4096)?)
                .unwrap_or(32),
            body_timeout: Duration::from_secs(env.u64_in(
                "ASHGATE_HTTP_BODY_TIMEOUT_SECONDS",
                30,
                1,
                3_600,
            )?),
        })
    }

    /// The credential verifier's configuration (the same identity-svc and internal token).
    pub fn verifier_config(&self) -> VerifierConfig {
        VerifierConfig {
            identity_urls: self.identity_urls.clone(),
            internal_token: self.internal_token.as_ref().map(|s| s.expose().to_owned()),
            max_cache_ttl: self.verify_cache_ttl,
            negative_cache_ttl: Duration::from_secs(2),
            cache_capacity: 100_000,
            tls: self.identity_tls.clone(),
        }
    }

    /// `path` under `PHOENIX_HOST_ROOT_PATH`, for redirects and links (`/login` → `/root/login`).
    pub fn at_root(&self, path: &str) -> String {
        format!("{}{path}", self.root_path)
    }
}

/// A comma list of http(s) URLs, with a default.
fn url_list(env: &Env, var: &str, default: &str) -> Result<Vec<String>, ConfigError> {
    let raw = env.string(var).unwrap_or_else(|| default.to_owned());
    let urls: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    if urls.is_empty() {
        return Err(ConfigError::new(var, "must name at least one URL"));
    }
    for url in &urls {
        let ok =
            url::Url::from_str(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !ok {
            return Err(ConfigError::new(var, format!("{url:?} is not an http(s):// URL")));
        }
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(pairs: &[(&str, &str)]) -> String {
        GatewayConfig::from_env(&Env::from_pairs(pairs.iter().copied())).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let config = GatewayConfig::from_env(&Env::default()).unwrap();
        assert!(!config.auth_enabled);
        assert_eq!(config.listen, "127.0.0.1:6006".parse().unwrap());
        assert_eq!(config.root_path, "");
        assert_eq!(config.cookies_path, "/");
        assert_eq!(config.identity_urls, ["http://127.0.0.1:50051"]);
        assert_eq!(config.collector_grpc_urls, ["http://127.0.0.1:4317"]);
        assert_eq!(config.collector_http_urls, ["http://127.0.0.1:4318"]);
        assert!(config.csrf_trusted_hosts.is_empty());
        assert_eq!(config.connection_limits.write_timeout, Duration::from_secs(30));
        assert_eq!(config.connection_limits.max_connection_age, Duration::from_secs(600));
    }

    #[test]
    fn connection_deadlines_are_checked() {
        assert_eq!(
            err(&[("ASHGATE_HTTP_WRITE_TIMEOUT_SECONDS", "0")]),
            "ASHGATE_HTTP_WRITE_TIMEOUT_SECONDS: must be between 1 and 3600"
        );
        assert_eq!(
            err(&[("ASHGATE_HTTP_WRITE_TIMEOUT_SECONDS", "soon")]),
            "ASHGATE_HTTP_WRITE_TIMEOUT_SECONDS: must be a whole number"
        );
        assert_eq!(
            err(&[("ASHGATE_HTTP_MAX_CONNECTION_AGE_SECONDS", "86401")]),
            "ASHGATE_HTTP_MAX_CONNECTION_AGE_SECONDS: must be between 1 and 86400"
        );
    }

    #[test]
    fn phoenix_rules() {
        assert_eq!(
            err(&[("PHOENIX_HOST_ROOT_PATH", "phoenix")]),
            "PHOENIX_HOST_ROOT_PATH: must start with '/'"
        );
        assert_eq!(
            err(&[("PHOENIX_HOST_ROOT_PATH", "/phoenix/")]),
            "PHOENIX_HOST_ROOT_PATH: must not end with '/'"
        );
        assert!(err(&[("PHOENIX_ROOT_URL", "example.com")]).starts_with("PHOENIX_ROOT_URL:"));
        assert!(
            err(&[("PHOENIX_CSRF_TRUSTED_ORIGINS", "example.com")])
                .starts_with("PHOENIX_CSRF_TRUSTED_ORIGINS:")
        );
        assert_eq!(err(&[("PHOENIX_ENABLE_AUTH", "yes")]), "PHOENIX_ENABLE_AUTH: must be true or false");
        assert!(
            err(&[("ASHGATE_COLLECTOR_HTTP_URLS", "ftp://x")]).starts_with("ASHGATE_COLLECTOR_HTTP_URLS:")
        );
        let config = GatewayConfig::from_env(&Env::from_pairs([
            ("PHOENIX_CSRF_TRUSTED_ORIGINS", "https://Example.com:8443, http://b.test"),
            ("PHOENIX_HOST_ROOT_PATH", "/phoenix"),
            ("ASHGATE_COLLECTOR_HTTP_URLS", "http://a:1, http://b:2/"),
        ]))
        .unwrap();
        assert_eq!(config.csrf_trusted_hosts, ["example.com", "b.test"]);
        assert_eq!(config.at_root("/login"), "/phoenix/login");
        assert_eq!(config.collector_http_urls, ["http://a:1", "http://b:2"]);
    }

    #[test]
    fn basic_auth_needs_oauth2_or_ldap() {
        let off = [("PHOENIX_ENABLE_AUTH", "true"), ("PHOENIX_DISABLE_BASIC_AUTH", "true")];
        assert_eq!(err(&off), format!("PHOENIX_DISABLE_BASIC_AUTH: {BASIC_AUTH_NEEDS_ANOTHER_WAY}"));
        let ldap =
            GatewayConfig::from_env(&Env::from_pairs(off).with("PHOENIX_LDAP_HOST", "dc1, dc2")).unwrap();
        assert!(ldap.ldap_enabled && ldap.basic_auth_disabled);
        let blank = Env::from_pairs(off).with("PHOENIX_LDAP_HOST", " , ");
        assert!(GatewayConfig::from_env(&blank).is_err());
        assert!(!GatewayConfig::from_env(&Env::default()).unwrap().ldap_enabled);
    }
}
