//! Password recovery pages: "forgot password" (asks identity-svc to email a link) and
//! `/reset-password-with-token?token=…` (the emailed link: choose a new password).

use askama::Template;
use axum::extract::{OriginalUri, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;

use crate::caller::ClientAddr;
use crate::error::ApiError;
use crate::pages::{FormFields, error_page, render, see_other};
use crate::routes::password_reset::{request_reset, reset_with_token};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage<'a> {
    root: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    sent: bool,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPage<'a> {
    root: &'a str,
    token: &'a str,
    error: Option<&'a str>,
    expired: bool,
}

/// Password recovery needs authentication and password sign-in.
fn unavailable(state: &AppState) -> Option<Response> {
    if !state.config.auth_enabled {
        return Some(error_page(state, &ApiError::NotFound("Authentication is disabled.".into())));
    }
    if state.config.basic_auth_disabled {
        let error =
            ApiError::Forbidden("Password sign-in is disabled: sign in with your identity provider.".into());
        return Some(error_page(state, &error));
    }
    None
}

/// `GET /forgot-password`.
#[tracing::instrument(skip_all)]
pub async fn show_forgot(State(state): State<AppState>) -> Response {
    if let Some(response) = unavailable(&state) {
        return response;
    }
    render(StatusCode::OK, &ForgotPage { root: &state.config.root_path, email: "", error: None, sent: false })
}

/// `POST /forgot-password` (form): always the same answer for known and unknown emails.
#[tracing::instrument(skip_all)]
pub async fn submit_forgot(State(state): State<AppState>, client: ClientAddr, form: FormFields) -> Response {
    if let Some(response) = unavailable(&state) {
        return response;
    }
    let email = form.text("email");
    let root = &state.config.root_path;
    match request_reset(&state, email, client).await {
        Ok(()) => render(StatusCode::OK, &ForgotPage { root, email, error: None, sent: true }),
        Err(error) => {
            let message = match &error {
                ApiError::Unavailable(m) if m == crate::routes::password_reset::SMTP_NOT_CONFIGURED => {
                    "Password recovery by email is not set up here. Ask an administrator to reset your password."
                }
                ApiError::Unprocessable(_) => "Enter the email of your account.",
                other => other.public_message(),
            };
            render(error.status(), &ForgotPage { root, email, error: Some(message), sent: false })
        }
    }
}

/// Query of the reset page.
#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `GET /reset-password-with-token?token=…` (the emailed link).
#[tracing::instrument(skip_all)]
pub async fn show_reset(State(state): State<AppState>, OriginalUri(uri): OriginalUri) -> Response {
    if let Some(response) = unavailable(&state) {
        return response;
    }
    let query = Query::<TokenQuery>::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let token = query.token.unwrap_or_default();
    let token = if token.len() <= 4096 && token.bytes().all(|b| b.is_ascii_graphic()) {
        token
    } else {
        String::new()
    };
    render(
        StatusCode::OK,
        &ResetPage { root: &state.config.root_path, token: &token, error: None, expired: false },
    )
}

/// `POST /reset-password-with-token` (form): sets the password, then the sign-in page.
#[tracing::instrument(skip_all)]
pub async fn submit_reset(State(state): State<AppState>, client: ClientAddr, form: FormFields) -> Response {
    if let Some(response) = unavailable(&state) {
        return response;
    }
    let (token, new, confirm) = (form.text("token"), form.raw("new_password"), form.raw("confirm_password"));
    let page = |status: StatusCode, error: &str, expired: bool| {
        render(status, &ResetPage { root: &state.config.root_path, token, error: Some(error), expired })
    };
    if new.is_empty() {
        return page(StatusCode::UNPROCESSABLE_ENTITY, "Enter a new password.", false);
    }
    if new != confirm {
        return page(StatusCode::UNPROCESSABLE_ENTITY, "The passwords do not match.", false);
    }
    match reset_with_token(&state, token, new, client).await {
        Ok(()) => see_other(&state, "/login?done=password-reset"),
        Err(ApiError::Unauthenticated(_)) => page(
            StatusCode::UNAUTHORIZED,
            "This link is invalid, already used or expired. Ask for a new one.",
            true,
        ),
        Err(error) => page(error.status(), error.public_message(), false),
    }
}
