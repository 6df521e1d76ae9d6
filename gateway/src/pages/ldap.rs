//! The LDAP form of the sign-in page (shown when `PHOENIX_LDAP_HOST` is set, beside the local
//! form and the OAuth2 buttons; `PHOENIX_DISABLE_BASIC_AUTH` hides only the local form).

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;

use crate::caller::ClientAddr;
use crate::pages::login::login_page_with;
use crate::pages::{FormFields, see_other};
use crate::routes::auth::set_session_cookies;
use crate::routes::ldap::sign_in_ldap;
use crate::state::AppState;

/// What the LDAP form shows again after a failed attempt.
#[derive(Debug, Clone, Copy, Default)]
pub struct LdapForm<'a> {
    /// The username typed (never the password).
    pub username: &'a str,
    /// Why the sign-in failed.
    pub error: Option<&'a str>,
}

/// `POST /login/ldap` (form): sets the session cookies and goes on to the settings page, or
/// shows the sign-in page again with the error under the LDAP form.
#[tracing::instrument(skip_all)]
pub async fn submit(State(state): State<AppState>, client: ClientAddr, form: FormFields) -> Response {
    if !state.config.auth_enabled || !state.config.ldap_enabled {
        return see_other(&state, "/login");
    }
    let username = form.text("username");
    let password = form.raw("password");
    let failed = |status: StatusCode, error: &str| {
        login_page_with(&state, status, ("", None), None, None, LdapForm { username, error: Some(error) })
    };
    if username.is_empty() || password.is_empty() {
        return failed(StatusCode::UNAUTHORIZED, "Enter your LDAP username and password.");
    }
    match sign_in_ldap(&state, username, password, client).await {
        Ok(pair) => {
            let mut response = see_other(&state, "/settings");
            set_session_cookies(&state.config, &pair, response.headers_mut());
            response
        }
        Err(error) => failed(error.status(), error.public_message()),
    }
}
