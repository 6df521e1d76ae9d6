//! Security headers on every response: a CSP without inline script, no framing, no MIME
//! sniffing, and a referrer policy that still lets same-origin form posts carry `Referer`. And
//! the `Host` check that keeps a DNS-rebinding page from talking to a gateway on loopback.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::IntoResponse as _;
use axum::response::Response;
use http::HeaderValue;
use http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};

use crate::state::AppState;

/// `default-src 'self'` and nothing inline; forms may only post back to us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// Adds the headers.
pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// Which `Host` names this gateway answers to; `None` when any does (a gateway bound to a
/// non-loopback address with no `ASHGATE_ALLOWED_HOSTS`: it is reachable by whatever name
/// routes to it, and rebinding gains nothing a direct request would not).
pub fn allowed_hosts(config: &crate::config::GatewayConfig) -> Option<Vec<String>> {
    if !config.listen.ip().is_loopback() && config.allowed_hosts.is_empty() {
        return None;
    }
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].iter().map(|h| (*h).to_owned()).collect();
    hosts.push(config.listen.ip().to_string());
    hosts.extend(
        config.root_url.as_deref().and_then(|u| url::Url::parse(u).ok()?.host_str().map(str::to_owned)),
    );
    hosts.extend(config.csrf_trusted_hosts.iter().cloned());
    hosts.extend(config.allowed_hosts.iter().cloned());
    Some(hosts.into_iter().map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase()).collect())
}

/// The host of a `Host` header value, without port and brackets, lower-cased.
fn host_name(value: &str) -> Option<String> {
    let url = url::Url::parse(&format!("http://{}", value.trim())).ok()?;
    (url.path() == "/" && url.username().is_empty())
        .then(|| url.host_str().map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase()))?
}

/// Middleware: 421 "Unknown host" for a request naming a host this gateway is not (a page whose
/// DNS name was rebound to 127.0.0.1 names its own). A request without `Host` passes.
pub async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(allowed) = &state.allowed_hosts
        && let Some(value) = request.headers().get(http::header::HOST)
    {
        let known = value.to_str().ok().and_then(host_name).is_some_and(|h| allowed.contains(&h));
        if !known {
            tracing::info!(host = ?value, "request for an unknown host refused");
            let mut response = (http::StatusCode::MISDIRECTED_REQUEST, "Unknown host").into_response();
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            return response;
        }
    }
    next.run(request).await
}
