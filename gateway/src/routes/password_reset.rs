//! Password recovery by email (docs/phoenix-compat.md §2.4, §2.5):
//! `POST /auth/password-reset-email` `{email}` and `POST /auth/password-reset`
//! `{token, password}`. identity-svc issues the single-use token and sends the mail in the
//! background, so these never wait on SMTP; the link starts with identity-svc's
//! `PHOENIX_ROOT_URL`, never with anything a request carries.

use ashgate_proto::identity as pb;
use axum::extract::State;
use http::StatusCode;
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

/// Asks identity-svc to email a reset link (shared with the "forgot password" page).
pub async fn request_reset(state: &AppState, email: &str, client: ClientAddr) -> ApiResult<()> {
    if state.config.basic_auth_disabled {
        return Err(ApiError::Forbidden("Password recovery is disabled".into()));
    }
    let email = email.trim();
    if email.is_empty() {
        return Err(ApiError::Unprocessable(EMAIL_REQUIRED.into()));
    }
    let request = pb::RequestPasswordResetRequest { email: email.to_owned() };
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
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    request_reset(&state, text(&body, "email"), client).await?;
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
