//! Server-rendered pages (askama): the home page (projects and their spans), sign-in (password,
//! LDAP, OAuth2), forced and voluntary password change, password recovery by email, settings.
//! No inline script (CSP `default-src 'self'`); one stylesheet and one small script for the
//! copy button. Forms post back with a token derived from the access cookie, on top of the
//! Origin/Referer check in [`crate::csrf`] and SameSite=Strict cookies.

mod audit;
mod home;
mod ldap;
mod login;
mod password_reset;
mod session;
mod settings;

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};

use crate::body::read_limited;
use crate::config::MAX_JSON_BODY_BYTES;
use crate::error::ApiError;
use crate::state::AppState;

pub use session::Session;

/// Page routes (mounted under the root path by [`crate::router`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::show))
        .route("/projects/{id}", get(home::show_project))
        .route("/login", get(login::show).post(login::submit))
        .route("/login/ldap", post(ldap::submit))
        .route("/change-password", get(login::show_password).post(login::submit_password))
        .route("/forgot-password", get(password_reset::show_forgot).post(password_reset::submit_forgot))
        .route(
            "/reset-password-with-token",
            get(password_reset::show_reset).post(password_reset::submit_reset),
        )
        .route("/settings", get(settings::show))
        .route("/settings/audit", get(audit::show))
        .route("/settings/username", post(settings::rename_self))
        .route("/settings/api-keys", post(settings::create_own_key))
        .route("/settings/api-keys/{id}/delete", post(settings::delete_own_key))
        .route("/settings/system-keys", post(settings::create_system_key))
        .route("/settings/system-keys/{id}/delete", post(settings::delete_system_key))
        .route("/settings/users", post(settings::create_user))
        .route("/settings/users/{id}/delete", post(settings::delete_user))
        .route("/settings/users/{id}/username", post(settings::rename_user))
        .route("/settings/users/{id}/role", post(settings::change_role))
        .route("/settings/users/{id}/password", post(settings::reset_password))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
}

async fn stylesheet() -> Response {
    static_asset(include_str!("../../static/app.css"), "text/css; charset=utf-8")
}

async fn script() -> Response {
    static_asset(include_str!("../../static/app.js"), "text/javascript; charset=utf-8")
}

fn static_asset(body: &'static str, content_type: &'static str) -> Response {
    let headers = [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "public, max-age=3600")];
    (headers, body).into_response()
}

/// 303 to `path` under the root path (after a form post, or to send someone elsewhere).
pub fn see_other(state: &AppState, path: &str) -> Response {
    Redirect::to(&state.config.at_root(path)).into_response()
}

/// A rendered page with `status`, never cached.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => ApiError::Internal(format!("template: {error}")).into_response(),
    }
}

/// A friendly error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    root: &'a str,
    status: u16,
    heading: &'a str,
    message: &'a str,
}

/// Renders `error` as a page (for failures that have no better place to be shown).
pub fn error_page(state: &AppState, error: &ApiError) -> Response {
    let status = error.status();
    let heading = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
        s if s.is_client_error() => "That did not work",
        _ => "Something went wrong",
    };
    if let ApiError::Internal(detail) = error {
        tracing::error!(%detail, "internal error on a page");
    }
    let page = ErrorPage {
        root: &state.config.root_path,
        status: status.as_u16(),
        heading,
        message: error.public_message(),
    };
    render(status, &page)
}

/// The fields of an `application/x-www-form-urlencoded` body (at most 64 KiB; any other
/// content type is 415).
#[derive(Debug, Default)]
pub struct FormFields(HashMap<String, String>);

impl FormFields {
    /// A field, trimmed; "" when absent.
    pub fn text(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |v| v.trim())
    }

    /// A field exactly as sent (passwords are not trimmed).
    pub fn raw(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

impl<S: Send + Sync> FromRequest<S> for FormFields {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        crate::body::require_content_type(
            &request,
            "application/x-www-form-urlencoded",
            "Content-Type must be application/x-www-form-urlencoded",
        )?;
        let bytes = read_limited(request, MAX_JSON_BODY_BYTES).await?;
        Ok(Self(url::form_urlencoded::parse(&bytes).into_owned().collect()))
    }
}
