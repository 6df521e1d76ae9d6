//! Phoenix's `POST /auth/ldap/login` (docs/phoenix-compat.md §9.2): JSON `{username, password}`
//! → 204 with the two session cookies. identity-svc talks to the directory; this route only
//! carries the request and the answer, with Phoenix's texts.

use std::time::Duration;

use ashgate_proto::identity as pb;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::Value;
use tonic::Code;

use crate::body::JsonBody;
use crate::caller::ClientAddr;
use crate::error::{ApiError, ApiResult};
use crate::routes::auth::set_session_cookies;
use crate::state::AppState;
use crate::upstream::CallContext;

/// Phoenix's 401 when either field is missing or empty.
pub const CREDENTIALS_REQUIRED: &str = "Username and password required";
/// identity-svc's texts for a directory that does not answer and for LDAP not configured
/// there; shown as they are (any other UNAVAILABLE stays the generic 503).
const PASSED_THROUGH: [&str; 2] = [
    "LDAP server unavailable. Please try again later.",
    "LDAP authentication is not configured on this server",
];
/// identity-svc bounds a directory sign-in at `ASHGATE_LDAP_TIMEOUT_SECONDS` (≤ 60 s); wait a
/// little longer so its own clear answer arrives, not a deadline error.
const LDAP_CALL_DEADLINE: Duration = Duration::from_secs(65);

/// Signs in against the directory through identity-svc (shared with the sign-in page).
pub async fn sign_in_ldap(
    state: &AppState,
    username: &str,
    password: &str,
    client: ClientAddr,
) -> ApiResult<pb::TokenPair> {
    let context = CallContext { bearer: None, client_addr: client.0 };
    let message = pb::LdapLoginRequest { username: username.to_owned(), password: password.to_owned() };
    let mut request = state.identity.request(message, &context);
    request.set_timeout(LDAP_CALL_DEADLINE);
    let result = state.identity.auth().ldap_login(request).await;
    state.metrics.record_login(result.is_ok());
    match result {
        Ok(pair) => Ok(pair.into_inner()),
        Err(status) if status.code() == Code::Unavailable && PASSED_THROUGH.contains(&status.message()) => {
            Err(ApiError::Unavailable(status.message().to_owned()))
        }
        Err(status) => Err(status.into()),
    }
}

/// `POST /auth/ldap/login`: JSON `{username, password}` → 204 + cookies.
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    // Phoenix: a blank username is a failed sign-in, not a missing one.
    let username = body.get("username").and_then(Value::as_str).filter(|u| !u.is_empty());
    let password = body.get("password").and_then(Value::as_str).filter(|p| !p.is_empty());
    let (Some(username), Some(password)) = (username, password) else {
        return Err(ApiError::Unauthenticated(CREDENTIALS_REQUIRED.into()));
    };
    let pair = sign_in_ldap(&state, username, password, client).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_session_cookies(&state.config, &pair, response.headers_mut());
    Ok(response)
}
