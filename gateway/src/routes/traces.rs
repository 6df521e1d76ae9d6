//! `POST /v1/traces` on 6006, so Phoenix's documented endpoint `http://HOST:6006/v1/traces`
//! works: the export is forwarded as-is to collector-svc's OTLP/HTTP listener, which answers it;
//! its status, body and `Retry-After` come back unchanged.
//!
//! The credential is checked here first, with the gateway's own verifier and cache, before a
//! byte of the body is read: a bad or missing key costs no body read and no forward, and is
//! always 401 (a 503 would tell the exporter to retry, multiplying the bad traffic). At most
//! `ASHGATE_GATEWAY_MAX_FORWARDS` exports are read and forwarded at once; past that the answer
//! is 503 with `Retry-After`, so a flood costs bounded memory.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, StatusCode};

use ashgate_identity_client::AuthError;

use crate::body::read_limited;
use crate::caller::Credential;
use crate::config::MAX_TRACES_BODY_BYTES;
use crate::error::{ApiError, ApiResult, BEARER_CHALLENGE};
use crate::state::AppState;

/// Headers that travel with the export.
const PROJECT_HEADER: &str = "x-project-name";

/// The `authorization` to forward: the caller's own header, or (for a browser session) the
/// access cookie as a bearer credential.
fn forwarded_authorization(headers: &HeaderMap) -> Option<HeaderValue> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        return Some(value.clone());
    }
    match Credential::of(headers) {
        Credential::Cookie(token) => HeaderValue::try_from(format!("Bearer {token}")).ok(),
        _ => None,
    }
}

/// `POST /v1/traces`: forwarded to the first collector that accepts a connection.
#[tracing::instrument(skip_all)]
pub async fn forward(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let headers = request.headers().clone();
    if state.config.auth_enabled
        && let Err(refusal) = authorize(&state, &headers).await
    {
        return Ok(unread(refusal));
    }
    let Ok(_permit) = state.forwards.try_acquire() else {
        state.metrics.record_forward(false);
        return Ok(unread(ApiError::Unavailable("Too many exports in flight, retry later".into())));
    };
    let body = read_limited(request, MAX_TRACES_BODY_BYTES).await?;
    let authorization = forwarded_authorization(&headers);
    let mut last_error = None;
    for base in &state.collector.http_urls {
        let mut outgoing = state.collector.http.post(format!("{base}/v1/traces")).body(body.clone());
        for name in [CONTENT_TYPE, CONTENT_ENCODING] {
            if let Some(value) = headers.get(&name) {
                outgoing = outgoing.header(name, value.clone());
            }
        }
        if let Some(value) = headers.get(PROJECT_HEADER) {
            outgoing = outgoing.header(PROJECT_HEADER, value.clone());
        }
        if let Some(value) = &authorization {
            outgoing = outgoing.header(AUTHORIZATION, value.clone());
        }
        match outgoing.send().await {
            Ok(answer) => {
                state.metrics.record_forward(true);
                return Ok(relay(answer).await);
            }
            // Only a failure to connect is safe to retry elsewhere: the export was not received.
            Err(error) if error.is_connect() => {
                tracing::warn!(collector = %base, "collector unreachable, trying the next one");
                last_error = Some(error);
            }
            Err(error) => {
                state.metrics.record_forward(false);
                tracing::warn!(collector = %base, error = %error, "collector did not answer the export");
                return Err(ApiError::Unavailable("Collector unavailable, retry later".into()));
            }
        }
    }
    state.metrics.record_forward(false);
    if let Some(error) = last_error {
        tracing::warn!(error = %error, "no collector reachable");
    }
    Err(ApiError::Unavailable("Collector unavailable, retry later".into()))
}

/// Phoenix's order: 401, then 403 for viewers, before anything about the body.
async fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = Credential::of(headers).token().map(str::to_owned).ok_or(AuthError::Missing)?;
    state.verifier.verify_bearer(&token).await?.check(true)?;
    Ok(())
}

/// A refusal sent before the body was read. The connection cannot carry another request (the
/// unread body is still on it, and the server closes it), so the answer says so: a client that
/// pooled the connection would otherwise send its next request into a closed socket (reqwest
/// waited for ever, seen in benches/edge).
fn unread(refusal: ApiError) -> Response {
    let mut response = refusal.into_response();
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The collector's answer, as the caller's answer.
async fn relay(answer: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in [CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE] {
        if let Some(value) =
            answer.headers().get(name.as_str()).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            headers.insert(name, value);
        }
    }
    if status == StatusCode::UNAUTHORIZED && !headers.contains_key(WWW_AUTHENTICATE) {
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_CHALLENGE));
    }
    let body = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(error = %error, "collector answer was cut short");
            return ApiError::Unavailable("Collector unavailable, retry later".into()).into_response();
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
