//! Password recovery by email (reference §2.4, §2.5): `POST /auth/password-reset-email`
//! `{email}` and `POST /auth/password-reset` `{token, password}`. identity-svc issues the
//! single-use token and sends the mail in the background, so these never wait on SMTP.

use ashgate_proto::identity as pb;
use axum::extract::State;
use http::header::{HOST, REFERER};
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::body::JsonBody;
use crate::caller::ClientAddr;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::upstream::CallContext;

/// identity-svc's (and Phoenix's) 503 text, passed through on these routes.
pub const SMTP_NOT_CONFIGURED: &str = "SMTP server not configured";
/// Phoenix's 422 texts.
const EMAIL_REQUIRED: &str = "Email required";
const PASSWORD_REQUIRED: &str = "Password required";
/// Phoenix's 401 text for a bad reset token.
pub const INVALID_TOKEN: &str = "Invalid token";

/// The base URL of the emailed link (`scheme://host[:port][/root]`): `PHOENIX_ROOT_URL` when
/// set; else, as Phoenix, the `Referer`'s scheme and host under the root path, but only when that
/// host is trusted (listed in `PHOENIX_CSRF_TRUSTED_ORIGINS`, or the request's own `Host`), so
/// a forged `Referer` cannot point the link elsewhere; else the request's own origin.
pub fn link_base(state: &AppState, headers: &HeaderMap) -> String {
    let config = &state.config;
    if let Some(root_url) = &config.root_url {
        return root_url.clone();
    }
    let host =
        headers.get(HOST).and_then(|v| v.to_str().ok()).map(|h| h.trim().to_ascii_lowercase()).filter(|h| {
            url::Url::parse(&format!("http://{h}")).is_ok_and(|u| u.path() == "/" && u.username().is_empty())
        });
    let referer = headers.get(REFERER).and_then(|v| v.to_str().ok()).and_then(|r| url::Url::parse(r).ok());
    if let Some(referer) = referer
        && matches!(referer.scheme(), "http" | "https")
        && let Some(referer_host) = referer.host_str().map(str::to_ascii_lowercase)
    {
        let authority = match referer.port() {
            Some(port) => format!("{referer_host}:{port}"),
            None => referer_host.clone(),
        };
        let trusted = if config.csrf_trusted_hosts.is_empty() {
            host.as_deref() == Some(authority.as_str())
        } else {
            config.csrf_trusted_hosts.contains(&referer_host)
        };
        if trusted {
            return format!("{}://{authority}{}", referer.scheme(), config.root_path);
        }
    }
    let host = host.unwrap_or_else(|| config.listen.to_string());
    format!("http://{host}{}", config.root_path)
}

/// Asks identity-svc to email a reset link (shared with the "forgot password" page).
pub async fn request_reset(
    state: &AppState,
    email: &str,
    headers: &HeaderMap,
    client: ClientAddr,
) -> ApiResult<()> {
    if state.config.basic_auth_disabled {
        return Err(ApiError::Forbidden("Password recovery is disabled".into()));
    }
    let email = email.trim();
    if email.is_empty() {
        return Err(ApiError::Unprocessable(EMAIL_REQUIRED.into()));
    }
    let request =
        pb::RequestPasswordResetRequest { email: email.to_owned(), link_base_url: link_base(state, headers) };
    let context = CallContext { bearer: None, client_addr: client.0 };
    match state.identity.auth().request_password_reset(state.identity.request(request, &context)).await {
        Ok(_) => Ok(()),
        Err(status)
            if status.code() == tonic::Code::Unavailable && status.message() == SMTP_NOT_CONFIGURED =>
        {
            Err(ApiError::Unavailable(SMTP_NOT_CONFIGURED.into()))
        }
        Err(status) => Err(ApiError::from(status)),
    }
}

/// Sets a new password with a reset token (shared with the reset page). A password that breaks
/// the policy is 400 with the rule (Phoenix answers 500 there).
pub async fn reset_with_token(
    state: &AppState,
    token: &str,
    password: &str,
    client: ClientAddr,
) -> ApiResult<()> {
    if state.config.basic_auth_disabled {
        return Err(ApiError::Forbidden("Password recovery is disabled".into()));
    }
    if password.is_empty() {
        return Err(ApiError::Unprocessable(PASSWORD_REQUIRED.into()));
    }
    let token = token.trim();
    if token.is_empty() || token.len() > 4096 {
        return Err(ApiError::Unauthenticated(INVALID_TOKEN.into()));
    }
    let request = pb::ResetPasswordRequest { token: token.to_owned(), password: password.to_owned() };
    let context = CallContext { bearer: None, client_addr: client.0 };
    state
        .identity
        .auth()
        .reset_password(state.identity.request(request, &context))
        .await
        .map_err(|status| ApiError::from(status).invalid_as_bad_request())?;
    Ok(())
}

fn text<'a>(body: &'a Value, name: &str) -> &'a str {
    body.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// `POST /auth/password-reset-email` `{email}` → 204, also for unknown emails.
#[tracing::instrument(skip_all)]
pub async fn request_email(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    request_reset(&state, text(&body, "email"), &headers, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /auth/password-reset` `{token, password}` → 204; the token works once.
#[tracing::instrument(skip_all)]
pub async fn reset(
    State(state): State<AppState>,
    client: ClientAddr,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    reset_with_token(&state, text(&body, "token"), text(&body, "password"), client).await?;
    Ok(StatusCode::NO_CONTENT)
}
