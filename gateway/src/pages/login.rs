//! The sign-in page and the password-change page (forced for a user flagged must-reset, such as
//! the default admin at first sign-in).

use ashgate_proto::identity as pb;
use askama::Template;
use axum::extract::{OriginalUri, Query, State};
use axum::response::{IntoResponse as _, Response};
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;

use crate::caller::ClientAddr;
use crate::cookies::{ACCESS_COOKIE, read_cookie};
use crate::error::ApiError;
use crate::oauth2::state::is_safe_return_url;
use crate::pages::ldap::LdapForm;
use crate::pages::session::session;
use crate::pages::{FormFields, Session, render, see_other};
use crate::routes::auth::{set_session_cookies, sign_in};
use crate::state::AppState;

/// A button on the sign-in page that starts an OAuth2 / OIDC sign-in.
#[derive(Debug, Clone)]
pub struct LoginProvider {
    /// What the button says after "Sign in with".
    pub display_name: String,
    /// Where it goes (`<root>/oauth2/<idp>/login`).
    pub url: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    root: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    password_login: bool,
    /// The LDAP form, when LDAP is configured.
    ldap: Option<LdapForm<'a>>,
    /// The cursor starts in the LDAP form (it failed, or it is the only form).
    ldap_focus: bool,
    providers: Vec<LoginProvider>,
    forgot_password_url: Option<String>,
}

/// Where OAuth2 providers and password recovery plug into the sign-in page: a button per
/// configured provider (keeping `returnUrl`), and the "Forgot password?" link when password
/// sign-in is on and SMTP is configured.
fn sign_in_options(state: &AppState, return_url: Option<&str>) -> (Vec<LoginProvider>, Option<String>) {
    let query = return_url
        .filter(|u| is_safe_return_url(u))
        .map(|u| {
            format!(
                "?{}",
                url::form_urlencoded::Serializer::new(String::new()).append_pair("returnUrl", u).finish()
            )
        })
        .unwrap_or_default();
    let providers = state
        .oauth2
        .all()
        .iter()
        .map(|p| LoginProvider {
            display_name: p.config.display_name.clone(),
            url: state.config.at_root(&format!("/oauth2/{}/login{query}", p.config.name)),
        })
        .collect();
    let forgot = (state.config.password_reset_email_enabled && !state.config.basic_auth_disabled)
        .then(|| state.config.at_root("/forgot-password"));
    (providers, forgot)
}

/// Messages for `/login?error=<code>` (redirects from OAuth2 sign-in land here).
fn error_message(code: &str) -> &'static str {
    crate::oauth2::error_message(code)
}

/// Notices for `/login?done=<what>`.
fn notice_message(done: &str) -> Option<&'static str> {
    match done {
        "password-changed" => Some("Password changed. Sign in with your new password."),
        "password-reset" => Some("Your password was reset. Sign in with your new password."),
        "signed-out" => Some("You are signed out."),
        _ => None,
    }
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
    notice: Option<&str>,
    return_url: Option<&str>,
) -> Response {
    login_page_with(state, status, (email, error), notice, return_url, LdapForm::default())
}

/// The sign-in page with what the local form (`email`, error) and the LDAP form show.
pub(super) fn login_page_with(
    state: &AppState,
    status: StatusCode,
    (email, error): (&str, Option<&str>),
    notice: Option<&str>,
    return_url: Option<&str>,
    ldap: LdapForm<'_>,
) -> Response {
    let (providers, forgot_password_url) = sign_in_options(state, return_url);
    let page = LoginPage {
        root: &state.config.root_path,
        email,
        error,
        notice,
        password_login: !state.config.basic_auth_disabled,
        ldap_focus: ldap.error.is_some() || state.config.basic_auth_disabled,
        ldap: state.config.ldap_enabled.then_some(ldap),
        providers,
        forgot_password_url,
    };
    render(status, &page)
}

/// Query of `GET /login`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    error: Option<String>,
    done: Option<String>,
    #[serde(rename = "returnUrl")]
    return_url: Option<String>,
}

/// `GET /login`.
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if state.config.auth_enabled
        && let Some(token) = read_cookie(&headers, ACCESS_COOKIE)
        && state.verifier.verify_bearer(&token).await.is_ok()
    {
        return see_other(&state, "/settings");
    }
    let query = Query::<LoginQuery>::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    // PHOENIX_DISABLE_BASIC_AUTH + AUTO_LOGIN: straight to the provider (307, query kept),
    // except when coming back with an error or after signing out (no redirect loop).
    if state.config.auth_enabled
        && state.config.basic_auth_disabled
        && query.error.is_none()
        && query.done.is_none()
        && let Some(provider) = state.oauth2.all().iter().find(|p| p.config.auto_login)
    {
        let query_string = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let target = state.config.at_root(&format!("/oauth2/{}/login{query_string}", provider.config.name));
        return (StatusCode::TEMPORARY_REDIRECT, [(http::header::LOCATION, target)]).into_response();
    }
    let error = query.error.as_deref().map(error_message);
    let notice = query.done.as_deref().and_then(notice_message);
    login_page(&state, StatusCode::OK, "", error, notice, query.return_url.as_deref())
}

/// `POST /login` (form): sets the session cookies and goes on to the settings page, or to the
/// password change when the user must change theirs.
#[tracing::instrument(skip_all)]
pub async fn submit(State(state): State<AppState>, client: ClientAddr, form: FormFields) -> Response {
    if !state.config.auth_enabled {
        return see_other(&state, "/settings");
    }
    let email = form.text("email");
    let password = form.raw("password");
    if email.is_empty() || password.is_empty() {
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            email,
            Some("Enter your email and password."),
            None,
            None,
        );
    }
    match sign_in(&state, email, password, client).await {
        Ok(pair) => {
            let next = if pair.password_needs_reset { "/change-password" } else { "/" };
            let mut response = see_other(&state, next);
            set_session_cookies(&state.config, &pair, response.headers_mut());
            response
        }
        Err(error) => login_page(&state, error.status(), email, Some(error.public_message()), None, None),
    }
}

#[derive(Template)]
#[template(path = "change_password.html")]
struct PasswordPage<'a> {
    root: &'a str,
    session: &'a Session,
    forced: bool,
    error: Option<&'a str>,
}

/// `GET /change-password`.
#[tracing::instrument(skip_all)]
pub async fn show_password(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    client: ClientAddr,
) -> Response {
    match session(&state, &Method::GET, &uri, &headers, client, true).await {
        Ok(session) => render(
            StatusCode::OK,
            &PasswordPage {
                root: &state.config.root_path,
                forced: session.forced,
                session: &session,
                error: None,
            },
        ),
        Err(response) => response,
    }
}

/// `POST /change-password` (form): changes the password, which ends every session of the
/// user, then signs in again with the new password so this browser stays signed in.
#[tracing::instrument(skip_all)]
pub async fn submit_password(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    client: ClientAddr,
    form: FormFields,
) -> Response {
    let session = match session(&state, &Method::POST, &uri, &headers, client, true).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let page = |status: StatusCode, error: &str| {
        render(
            status,
            &PasswordPage {
                root: &state.config.root_path,
                forced: session.forced,
                session: &session,
                error: Some(error),
            },
        )
    };
    if let Err(error) = session.check_form(&form) {
        return page(error.status(), error.public_message());
    }
    let (current, new, confirm) =
        (form.raw("current_password"), form.raw("new_password"), form.raw("confirm_password"));
    if current.is_empty() || new.is_empty() {
        return page(StatusCode::UNPROCESSABLE_ENTITY, "Enter your current password and a new one.");
    }
    if new != confirm {
        return page(StatusCode::UNPROCESSABLE_ENTITY, "The new passwords do not match.");
    }
    if new == current {
        return page(StatusCode::UNPROCESSABLE_ENTITY, "Choose a password different from the current one.");
    }
    let request = pb::UpdatePasswordRequest {
        user_id: session.user_id,
        new_password: new.to_owned(),
        current_password: current.to_owned(),
    };
    if let Err(status) =
        state.identity.users().update_password(state.identity.request(request, &session.context)).await
    {
        let error = ApiError::from(status);
        return page(error.status(), error.public_message());
    }
    match sign_in(&state, &session.email, new, client).await {
        Ok(pair) => {
            let mut response = see_other(&state, "/settings?done=password-changed");
            set_session_cookies(&state.config, &pair, response.headers_mut());
            response
        }
        // Changed, but the new session could not be opened: sign in by hand.
        Err(_) => {
            let mut response = see_other(&state, "/login?done=password-changed");
            crate::cookies::clear_all(&state.config, response.headers_mut());
            response
        }
    }
}
