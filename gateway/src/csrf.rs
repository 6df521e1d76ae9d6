//! Cross-site request forgery defences.
//!
//! 1. Phoenix's rule (docs/phoenix-compat.md §7), when `PHOENIX_CSRF_TRUSTED_ORIGINS` is set:
//!    on every request, each present, non-empty `Origin` / `Referer` header must name a
//!    trusted host, else 401 "untrusted origin" / "untrusted referer".
//! 2. Beyond Phoenix, always: a state-changing request (POST, PUT, PATCH, DELETE) that carries
//!    `Origin` (or, without it, `Referer`) must name a trusted host (list set) or the request's
//!    own `Host` (list unset), whatever its content type and credential; `Origin: null` is
//!    nobody's. One that carries neither is refused when a browser could have sent it
//!    cross-site without a CORS preflight (a session cookie and no `Authorization` header, or
//!    an HTML-form content type). Scripts, which send neither header, are not affected.
//! 3. HTML forms also carry a token derived from the access cookie (see [`form_token`]), and
//!    the session cookies are SameSite=Strict.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN, REFERER};
use http::{HeaderMap, Method};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::cookies::has_session_cookie;
use crate::error::ApiError;
use crate::state::AppState;

/// The host (and port, when `with_port`) of an `Origin` or `Referer` value, lower-cased.
fn host_of(value: &str, with_port: bool) -> Option<String> {
    let url = url::Url::parse(value).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match (with_port, url.port()) {
        (true, Some(port)) => format!("{host}:{port}"),
        _ => host,
    })
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    // A header that is not valid text counts as present and untrusted (it cannot match).
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}")).filter(|v| !v.is_empty())
}

/// Whether a browser could send this state-changing request from another site without a
/// preflight and with the user's credentials.
fn forgeable(headers: &HeaderMap) -> bool {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let simple_form = matches!(
        essence.as_str(),
        "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
    );
    simple_form || (has_session_cookie(headers) && !headers.contains_key(AUTHORIZATION))
}

/// The decision for one request; `Err` carries Phoenix's 401 text.
pub fn check(trusted_hosts: &[String], method: &Method, headers: &HeaderMap) -> Result<(), &'static str> {
    let origin = header(headers, ORIGIN);
    let referer = header(headers, REFERER);
    if !trusted_hosts.is_empty() {
        let trusted = |value: &str| host_of(value, false).is_some_and(|h| trusted_hosts.contains(&h));
        if origin.is_some_and(|o| !trusted(o)) {
            return Err("untrusted origin");
        }
        if referer.is_some_and(|r| !trusted(r)) {
            return Err("untrusted referer");
        }
    }
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
        return Ok(());
    }
    // A state-changing request that names where it comes from must come from here, whatever
    // its content type or credential: browsers send `Origin` on every cross-site POST, and a
    // `fetch` with a Blob body needs no preflight and sets no content type (login CSRF).
    let (value, refusal) = match (origin, referer) {
        (Some(o), _) => (o, "untrusted origin"),
        (None, Some(r)) => (r, "untrusted referer"),
        // Scripts send neither; a browser request a site could forge must name one.
        (None, None) if forgeable(headers) => return Err("untrusted origin"),
        (None, None) => return Ok(()),
    };
    if !trusted_hosts.is_empty() {
        // Rule 1 already checked every present header against the list.
        return Ok(());
    }
    // `Origin: null` (sandboxed frames, some redirects) parses to no host: nobody's origin.
    let request_host = headers.get(HOST).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    match (host_of(value, true), request_host) {
        (Some(from), Some(to)) if from == to => Ok(()),
        _ => Err(refusal),
    }
}

/// Middleware applying [`check`] before anything else runs.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match check(&state.config.csrf_trusted_hosts, request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            state.metrics.record_csrf_refusal();
            tracing::info!(method = %request.method(), path = request.uri().path(), refusal, "CSRF check refused a request");
            ApiError::UntrustedOrigin(refusal).into_response()
        }
    }
}

/// The hidden form field that proves a form was rendered by us for this session: a hash of
/// the access token (which another site cannot read).
pub fn form_token(access_token: &str) -> String {
    let digest = Sha256::digest(format!("ashgate-form:{access_token}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.get(..18).unwrap_or_default())
}

/// Whether `presented` is the form token of `access_token` (constant time).
pub fn form_token_matches(access_token: &str, presented: &str) -> bool {
    bool::from(form_token(access_token).as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn phoenix_list() {
        let trusted = vec!["example.com".to_owned()];
        let get = Method::GET;
        assert_eq!(check(&trusted, &get, &headers(&[])), Ok(()));
        assert_eq!(check(&trusted, &get, &headers(&[("origin", "https://example.com:8443")])), Ok(()));
        assert_eq!(
            check(&trusted, &get, &headers(&[("origin", "https://evil.test")])),
            Err("untrusted origin")
        );
        assert_eq!(
            check(&trusted, &get, &headers(&[("referer", "https://evil.test/x")])),
            Err("untrusted referer")
        );
        assert_eq!(check(&trusted, &get, &headers(&[("origin", "garbage")])), Err("untrusted origin"));
    }

    #[test]
    fn cookie_posts_need_same_origin() {
        let post = Method::POST;
        let cookie = ("cookie", "phoenix-access-token=t");
        let host = ("host", "127.0.0.1:6006");
        assert_eq!(check(&[], &post, &headers(&[cookie, host])), Err("untrusted origin"));
        assert_eq!(check(&[], &post, &headers(&[cookie, host, ("origin", "http://127.0.0.1:6006")])), Ok(()));
        assert_eq!(
            check(&[], &post, &headers(&[cookie, host, ("origin", "http://evil.test")])),
            Err("untrusted origin")
        );
        assert_eq!(
            check(&[], &post, &headers(&[cookie, host, ("referer", "http://127.0.0.1:6006/settings")])),
            Ok(())
        );
        // Scripts with a bearer credential and JSON are not browsers.
        assert_eq!(check(&[], &post, &headers(&[cookie, host, ("authorization", "Bearer k")])), Ok(()));
        assert_eq!(check(&[], &post, &headers(&[host, ("content-type", "application/json")])), Ok(()));
        // A foreign or null origin is refused whatever the credential and content type.
        let bearer = ("authorization", "Bearer k");
        assert_eq!(
            check(&[], &post, &headers(&[host, bearer, ("origin", "http://evil.test")])),
            Err("untrusted origin")
        );
        assert_eq!(check(&[], &post, &headers(&[host, ("origin", "null")])), Err("untrusted origin"));
        assert_eq!(
            check(&[], &post, &headers(&[host, ("referer", "http://evil.test/")])),
            Err("untrusted referer")
        );
        assert_eq!(check(&[], &Method::GET, &headers(&[host, ("origin", "http://evil.test")])), Ok(()));
        // A form post is forgeable even without cookies (login CSRF).
        let form = ("content-type", "application/x-www-form-urlencoded");
        assert_eq!(check(&[], &post, &headers(&[host, form])), Err("untrusted origin"));
        assert_eq!(check(&[], &Method::GET, &headers(&[cookie, host])), Ok(()));
    }

    #[test]
    fn form_tokens() {
        let token = form_token("access");
        assert!(form_token_matches("access", &token));
        assert!(!form_token_matches("other", &token));
        assert!(!form_token_matches("access", ""));
    }
}
