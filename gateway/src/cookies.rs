//! Phoenix's session cookies (docs/phoenix-compat.md §3.4): `phoenix-access-token` and
//! `phoenix-refresh-token`, HttpOnly, SameSite=Strict, `Secure` iff configured, Path from
//! `PHOENIX_COOKIES_PATH`, Max-Age = the token's lifetime, no Domain.

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

use crate::config::GatewayConfig;

/// The access token cookie.
pub const ACCESS_COOKIE: &str = "phoenix-access-token";
/// The refresh token cookie.
pub const REFRESH_COOKIE: &str = "phoenix-refresh-token";
/// OAuth2 cookies Phoenix also clears at sign-out.
pub const OAUTH2_COOKIES: [&str; 3] =
    ["phoenix-oauth2-state", "phoenix-oauth2-nonce", "phoenix-oauth2-code-verifier"];

/// Longest cookie value read; anything longer is no credential.
const MAX_COOKIE_VALUE: usize = 4096;

/// The value of cookie `name` in the request, if present, well-formed and not empty.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_VALUE && v.bytes().all(|b| b.is_ascii_graphic()))
}

/// Whether the request carries either session cookie (for the CSRF rule).
pub fn has_session_cookie(headers: &HeaderMap) -> bool {
    read_cookie(headers, ACCESS_COOKIE).is_some() || read_cookie(headers, REFRESH_COOKIE).is_some()
}

/// `Set-Cookie` for a session cookie that lives until `expires_at_ms`.
pub fn session_cookie(
    config: &GatewayConfig,
    name: &str,
    value: &str,
    expires_at_ms: i64,
    now_ms: i64,
) -> Option<HeaderValue> {
    let max_age = (expires_at_ms.saturating_sub(now_ms) / 1000).max(0);
    let secure = if config.secure_cookies { "; Secure" } else { "" };
    HeaderValue::try_from(format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={}; Max-Age={max_age}{secure}",
        config.cookies_path
    ))
    .ok()
}

/// `Set-Cookie` headers that delete every cookie Phoenix clears at sign-out.
pub fn clear_all(config: &GatewayConfig, headers: &mut HeaderMap) {
    let secure = if config.secure_cookies { "; Secure" } else { "" };
    let mut paths = vec![config.cookies_path.as_str()];
    // Phoenix deletes with Starlette's default Path `/`; delete both when they differ.
    if config.cookies_path != "/" {
        paths.push("/");
    }
    for name in [ACCESS_COOKIE, REFRESH_COOKIE].into_iter().chain(OAUTH2_COOKIES) {
        for path in &paths {
            let value = format!(
                "{name}=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Max-Age=0; Path={path}; SameSite=Strict{secure}"
            );
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.append(SET_COOKIE, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ashgate_identity_client::env::Env;

    #[test]
    fn reads_cookies_leniently() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; phoenix-access-token=abc.def; junk"));
        headers.append(COOKIE, HeaderValue::from_static("phoenix-refresh-token=\"r\""));
        assert_eq!(read_cookie(&headers, ACCESS_COOKIE).as_deref(), Some("abc.def"));
        assert_eq!(read_cookie(&headers, REFRESH_COOKIE).as_deref(), Some("r"));
        assert_eq!(read_cookie(&headers, "missing"), None);
        let mut bad = HeaderMap::new();
        bad.append(COOKIE, HeaderValue::from_bytes(b"phoenix-access-token=\xff\xfe").unwrap());
        assert_eq!(read_cookie(&bad, ACCESS_COOKIE), None);
    }

    #[test]
    fn attributes() {
        let env = Env::from_pairs([("PHOENIX_USE_SECURE_COOKIES", "true"), ("PHOENIX_COOKIES_PATH", "/px")]);
        let config = GatewayConfig::from_env(&env).unwrap();
        let cookie = session_cookie(&config, ACCESS_COOKIE, "t", 601_000, 1_000).unwrap();
        assert_eq!(
            cookie,
            "phoenix-access-token=t; HttpOnly; SameSite=Strict; Path=/px; Max-Age=600; Secure"
        );
        let mut headers = HeaderMap::new();
        clear_all(&config, &mut headers);
        assert_eq!(headers.get_all(SET_COOKIE).iter().count(), 10);
    }
}
