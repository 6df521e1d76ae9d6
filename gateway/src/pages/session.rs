//! The signed-in browser session behind a page: the access cookie, verified; an expired one is
//! renewed from the refresh cookie; a user who must change their password is sent to do that.

use ashgate_identity_client::{AuthError, CredentialKind, Role};
use ashgate_proto::identity as pb;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderMap, Method, Uri};

use crate::caller::ClientAddr;
use crate::cookies::{ACCESS_COOKIE, REFRESH_COOKIE, clear_all, read_cookie};
use crate::csrf::{form_token, form_token_matches};
use crate::error::ApiError;
use crate::pages::{FormFields, error_page, see_other};
use crate::routes::auth::{rotate, set_session_cookies};
use crate::routes::users::role_name;
use crate::state::AppState;
use crate::upstream::CallContext;

/// Who is looking at a page.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user.
    pub user_id: i64,
    /// Their email.
    pub email: String,
    /// Their username.
    pub username: String,
    /// Their role's name.
    pub role: &'static str,
    /// Admin pages are shown.
    pub is_admin: bool,
    /// They must change their password before anything else.
    pub forced: bool,
    /// The form token of this session.
    pub csrf: String,
    /// How to call identity-svc as them.
    pub context: CallContext,
}

/// What a page does when there is no usable session.
fn to_login(state: &AppState, had_cookies: bool) -> Response {
    let mut response = see_other(state, "/login");
    if had_cookies {
        clear_all(&state.config, response.headers_mut());
    }
    response
}

/// The session of a page request, or the response to send instead (sign-in page, renewed
/// cookies, the forced password change). `allow_forced` is true only for the password page.
pub async fn session(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    client: ClientAddr,
    allow_forced: bool,
) -> Result<Session, Response> {
    if !state.config.auth_enabled {
        let error = ApiError::NotFound(
            "Authentication is disabled: set PHOENIX_ENABLE_AUTH=true to use sign-in and settings.".into(),
        );
        return Err(error_page(state, &error));
    }
    let had_cookies =
        read_cookie(headers, ACCESS_COOKIE).is_some() || read_cookie(headers, REFRESH_COOKIE).is_some();
    let access = read_cookie(headers, ACCESS_COOKIE);
    let verdict = match &access {
        Some(token) => state.verifier.verify_bearer(token).await,
        None => Err(AuthError::Missing),
    };
    let principal = match verdict {
        Ok(p) if p.kind == CredentialKind::AccessToken => p,
        Ok(_) => return Err(to_login(state, had_cookies)),
        Err(AuthError::Unavailable) => {
            return Err(error_page(
                state,
                &ApiError::Unavailable("The identity service is unavailable. Try again in a moment.".into()),
            ));
        }
        Err(_) => return Err(renew(state, method, uri, headers, client, had_cookies).await),
    };
    let token = access.unwrap_or_default();
    if principal.password_needs_reset && !allow_forced {
        return Err(see_other(state, "/change-password"));
    }
    let context = CallContext { bearer: Some(token.clone()), client_addr: client.0 };
    let request = state.identity.request(pb::GetSelfRequest {}, &context);
    let user = match state.identity.users().get_self(request).await {
        Ok(user) => user.into_inner(),
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            return Err(to_login(state, had_cookies));
        }
        Err(status) => return Err(error_page(state, &status.into())),
    };
    Ok(Session {
        user_id: user.id,
        email: user.email,
        username: user.username,
        role: role_name(user.role),
        is_admin: principal.role == Role::Admin,
        forced: principal.password_needs_reset,
        csrf: form_token(&token),
        context,
    })
}

/// An expired or revoked access cookie: a GET is retried with a renewed pair; anything else
/// goes to the sign-in page.
async fn renew(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    client: ClientAddr,
    had_cookies: bool,
) -> Response {
    if *method != Method::GET || read_cookie(headers, REFRESH_COOKIE).is_none() {
        return to_login(state, had_cookies);
    }
    match rotate(state, headers, client).await {
        Ok(pair) => {
            let target =
                uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
            let mut response = axum::response::Redirect::to(&target).into_response();
            set_session_cookies(&state.config, &pair, response.headers_mut());
            response
        }
        Err(_) => to_login(state, had_cookies),
    }
}

impl Session {
    /// Refuses a form that does not carry this session's token.
    pub fn check_form(&self, form: &FormFields) -> Result<(), ApiError> {
        let token = self.context.bearer.as_deref().unwrap_or_default();
        if form_token_matches(token, form.text("csrf")) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("This form has expired. Reload the page and try again.".into()))
        }
    }
}
