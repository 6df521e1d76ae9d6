//! Phoenix's `/auth` routes (docs/phoenix-compat.md §2.1–2.3): sign-in, sign-out, refresh.
//! Tokens travel only in cookies: 204 + two `Set-Cookie`, plain-text errors,
//! `Cache-Control: no-store`.
//!
//! Password recovery (`/auth/password-reset-email`, `/auth/password-reset`) and OAuth2
//! (`/oauth2/...`) mount beside these in [`crate::router`].

use ashgate_proto::identity as pb;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use crate::body::JsonBody;
use crate::caller::{ClientAddr, Credential};
use crate::config::GatewayConfig;
use crate::cookies::{ACCESS_COOKIE, REFRESH_COOKIE, clear_all, read_cookie, session_cookie};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::timestamp::now_millis;
use crate::upstream::CallContext;

/// Why a password sign-in is refused with `PHOENIX_DISABLE_BASIC_AUTH`.
const PASSWORD_SIGN_IN_DISABLED: &str = "Password sign-in is disabled";
/// Phoenix's text when either sign-in field is missing.
const CREDENTIALS_REQUIRED: &str = "Email and password required";

/// Adds the two session cookies of `pair` to `headers`.
pub fn set_session_cookies(config: &GatewayConfig, pair: &pb::TokenPair, headers: &mut HeaderMap) {
    let now = now_millis();
    let cookies = [
        session_cookie(config, ACCESS_COOKIE, &pair.access_token, pair.access_expires_at_ms, now),
        session_cookie(config, REFRESH_COOKIE, &pair.refresh_token, pair.refresh_expires_at_ms, now),
    ];
    for cookie in cookies.into_iter().flatten() {
        headers.append(SET_COOKIE, cookie);
    }
}

/// 204 with the session cookies.
fn session_response(config: &GatewayConfig, pair: &pb::TokenPair) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_session_cookies(config, pair, response.headers_mut());
    response
}

/// A string field of a JSON object, if it is a non-empty string.
fn text_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// Signs in with email and password through identity-svc (shared with the sign-in page).
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: &str,
    client: ClientAddr,
) -> ApiResult<pb::TokenPair> {
    // Here, not only in the route: the sign-in page's form comes through too.
    if state.config.basic_auth_disabled {
        return Err(ApiError::Forbidden(PASSWORD_SIGN_IN_DISABLED.into()));
    }
    let context = CallContext { bearer: None, client_addr: client.0 };
    let request = pb::LoginRequest { email: email.to_owned(), password: password.to_owned() };
    let result = state.identity.auth().login(state.identity.request(request, &context)).await;
    state.metrics.record_login(result.is_ok());
    Ok(result?.into_inner())
}

/// `POST /auth/login`: JSON `{email, password}` → 204 + cookies.
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    if state.config.basic_auth_disabled {
        return Err(ApiError::Forbidden(PASSWORD_SIGN_IN_DISABLED.into()));
    }
    let (Some(email), Some(password)) =
        (text_field(&body, "email"), body.get("password").and_then(Value::as_str))
    else {
        return Err(ApiError::Unauthenticated(CREDENTIALS_REQUIRED.into()));
    };
    if password.is_empty() {
        return Err(ApiError::Unauthenticated(CREDENTIALS_REQUIRED.into()));
    }
    let pair = sign_in(&state, email, password, client).await?;
    Ok(session_response(&state.config, &pair))
}

/// Ends every session of the requester (identified by the credential, else the refresh cookie).
pub async fn sign_out(state: &AppState, headers: &HeaderMap, client: ClientAddr) {
    let bearer = Credential::of(headers).token().map(str::to_owned);
    let refresh_token = read_cookie(headers, REFRESH_COOKIE).unwrap_or_default();
    if bearer.is_none() && refresh_token.is_empty() {
        return;
    }
    let context = CallContext { bearer, client_addr: client.0 };
    let request = state.identity.request(pb::LogoutRequest { refresh_token }, &context);
    match state.identity.auth().logout(request).await {
        Ok(reply) => tracing::info!(user_id = reply.get_ref().user_id, "signed out"),
        Err(status) => tracing::warn!(code = ?status.code(), "sign-out could not reach identity-svc"),
    }
}

/// `GET /auth/logout`: revokes every session of the user, clears the cookies, 302 to the
/// sign-in page. Always succeeds, as in Phoenix.
#[tracing::instrument(skip_all)]
pub async fn logout(State(state): State<AppState>, client: ClientAddr, headers: HeaderMap) -> Response {
    sign_out(&state, &headers, client).await;
    // Without password sign-in, /login may forward straight to the provider: say signed out.
    let target = if state.config.basic_auth_disabled { "/login?done=signed-out" } else { "/login" };
    let mut response = Redirect::to(&state.config.at_root(target)).into_response();
    *response.status_mut() = StatusCode::FOUND;
    clear_all(&state.config, response.headers_mut());
    response
}

/// Rotates the refresh cookie into a new pair (shared with the pages).
pub async fn rotate(state: &AppState, headers: &HeaderMap, client: ClientAddr) -> ApiResult<pb::TokenPair> {
    let refresh_token = read_cookie(headers, REFRESH_COOKIE)
        .ok_or_else(|| ApiError::Unauthenticated("Missing refresh token".into()))?;
    let access_token = read_cookie(headers, ACCESS_COOKIE).unwrap_or_default();
    let context = CallContext { bearer: None, client_addr: client.0 };
    let request = state.identity.request(pb::RefreshRequest { refresh_token, access_token }, &context);
    Ok(state.identity.auth().refresh(request).await?.into_inner())
}

/// `POST /auth/refresh`: the refresh cookie (no body) → 204 + a brand-new pair.
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let pair = rotate(&state, &headers, client).await?;
    Ok(session_response(&state.config, &pair))
}

/// Middleware value: auth responses must never be cached.
pub fn no_store() -> HeaderValue {
    HeaderValue::from_static("no-store")
}

/// Adds `Cache-Control: no-store` to a response.
pub async fn add_no_store(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(CACHE_CONTROL, no_store());
    response
}
