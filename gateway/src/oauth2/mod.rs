//! Sign-in with any OpenID Provider (Phoenix `routers/oauth2.py`, docs/phoenix-compat.md §10):
//! the authorization-code flow with the openidconnect crate, PKCE S256 always, `state` and `nonce`
//! bound to cookies, the ID token verified (JWKS signature, issuer, audience, expiry, nonce),
//! UserInfo when the ID token lacks a claim, and the user resolved by identity-svc.
//!
//! Every failure redirects to `<root>/login?error=<code>` with Phoenix's codes; the sign-in
//! page shows [`error_message`] for it.

pub mod attribute;
pub mod callback;
pub mod config;
pub mod discovery;
pub mod login;
pub mod state;

use std::sync::Arc;

use axum::extract::Query;
use axum::response::{IntoResponse as _, Response};
use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde::de::DeserializeOwned;

use crate::caller::ClientAddr;
use crate::config::GatewayConfig;
use crate::error::ApiError;
use crate::oauth2::discovery::Provider;
use crate::rate_limit::RateLimiter;
use crate::state::AppState;

/// Cookie with the signed `state`.
pub const STATE_COOKIE: &str = "phoenix-oauth2-state";
/// Cookie with the `nonce`.
pub const NONCE_COOKIE: &str = "phoenix-oauth2-nonce";
/// Cookie with the PKCE code verifier.
pub const VERIFIER_COOKIE: &str = "phoenix-oauth2-code-verifier";

/// Why a sign-in through a provider failed; [`SignInError::code`] is Phoenix's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInError {
    /// No provider of that name.
    UnknownIdp,
    /// The provider refused, or the ID token, groups or role did not pass.
    AuthFailed,
    /// `state` does not match its cookie, is forged or expired.
    InvalidState,
    /// The return URL is not a path on this site.
    UnsafeReturnUrl,
    /// The token endpoint refused the code.
    OAuthError,
    /// The token response had no ID token.
    NoOidcSupport,
    /// No email in the claims.
    MissingEmailScope,
    /// The email belongs to an account that signs in another way.
    EmailInUse,
    /// The provider says it has not verified the email (`email_verified: false`).
    EmailNotVerified,
    /// Sign-up is off and no account matches.
    SignInNotAllowed,
    /// The provider's discovery document could not be fetched (ashgate's own code).
    ProviderUnavailable,
}

impl SignInError {
    /// Phoenix's code, used in `/login?error=<code>`.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownIdp => "unknown_idp",
            Self::AuthFailed => "auth_failed",
            Self::InvalidState => "invalid_state",
            Self::UnsafeReturnUrl => "unsafe_return_url",
            Self::OAuthError => "oauth_error",
            Self::NoOidcSupport => "no_oidc_support",
            Self::MissingEmailScope => "missing_email_scope",
            Self::EmailInUse => "email_in_use",
            Self::EmailNotVerified => "email_not_verified",
            Self::SignInNotAllowed => "sign_in_not_allowed",
            Self::ProviderUnavailable => "provider_unavailable",
        }
    }
}

/// The sign-in page's message for an error code (Phoenix's `auth_messages.py` wording).
pub fn error_message(code: &str) -> &'static str {
    match code {
        "unknown_idp" => "Unknown identity provider.",
        "auth_failed" => "Authentication failed. Please contact your administrator.",
        "invalid_state" => "Invalid authentication state. Please try again.",
        "unsafe_return_url" => "Invalid return URL. Please try again.",
        "oauth_error" => "Authentication failed. Please try again.",
        "no_oidc_support" => {
            "Your identity provider does not appear to support OpenID Connect. Please contact your administrator."
        }
        "missing_email_scope" => {
            "Please ensure your identity provider is configured to use the \"email\" scope."
        }
        "email_in_use" => "An account for this email address already exists.",
        "email_not_verified" => {
            "Your identity provider has not verified your email address. Verify it there, then try again."
        }
        "sign_in_not_allowed" => "Sign in is not allowed. Please contact your administrator.",
        "provider_unavailable" => {
            "The identity provider cannot be reached right now. Please try again in a moment."
        }
        _ => "Sign-in failed. Please try again.",
    }
}

/// `Set-Cookie` for one of the OAuth2 cookies: HttpOnly, SameSite=Lax (it must come back on
/// the provider's top-level redirect), Max-Age 900, Secure and Path as configured.
pub fn oauth_cookie(config: &GatewayConfig, name: &str, value: &str) -> Option<HeaderValue> {
    let secure = if config.secure_cookies { "; Secure" } else { "" };
    HeaderValue::try_from(format!(
        "{name}={value}; HttpOnly; SameSite=Lax; Path={}; Max-Age={}{secure}",
        config.cookies_path,
        state::STATE_TTL_SECONDS
    ))
    .ok()
}

/// Deletes the three OAuth2 cookies (on the configured path and on `/`, as sign-out does).
pub fn clear_oauth_cookies(config: &GatewayConfig, headers: &mut HeaderMap) {
    let secure = if config.secure_cookies { "; Secure" } else { "" };
    let mut paths = vec![config.cookies_path.as_str()];
    if config.cookies_path != "/" {
        paths.push("/");
    }
    for name in [STATE_COOKIE, NONCE_COOKIE, VERIFIER_COOKIE] {
        for path in &paths {
            let value = format!("{name}=\"\"; HttpOnly; Max-Age=0; Path={path}; SameSite=Lax{secure}");
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.append(SET_COOKIE, value);
            }
        }
    }
}

/// Phoenix's failure answer: 307 to `<root>/login?error=<code>`, OAuth2 cookies deleted.
pub fn fail(state: &AppState, error: SignInError) -> Response {
    let location = state.config.at_root(&format!("/login?error={}", error.code()));
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::try_from(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    clear_oauth_cookies(&state.config, response.headers_mut());
    response
}

/// What both OAuth2 routes check first: the caller's address is within `limiter`, `idp` names
/// a configured provider, and the query is read (leniently: a malformed one reads as empty).
pub(crate) fn admit<Q: DeserializeOwned + Default>(
    state: &AppState,
    limiter: &RateLimiter,
    idp: &str,
    client: ClientAddr,
    uri: &Uri,
) -> Result<(Arc<Provider>, Q), Refused> {
    if state.config.rate_limit_enabled && !limiter.allow(client.0) {
        return Err(Refused::TooMany);
    }
    let provider = state.oauth2.get(idp).cloned().ok_or(Refused::UnknownIdp)?;
    Ok((provider, Query::<Q>::try_from_uri(uri).map(|q| q.0).unwrap_or_default()))
}

/// Why [`admit`] refused.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refused {
    /// The address is over its limit: 429.
    TooMany,
    /// No provider of that name: back to the sign-in page with `unknown_idp`.
    UnknownIdp,
}

impl Refused {
    /// The answer to send.
    pub(crate) fn answer(self, state: &AppState) -> Response {
        match self {
            Self::TooMany => ApiError::TooMany("Too Many Requests".into()).into_response(),
            Self::UnknownIdp => fail(state, SignInError::UnknownIdp),
        }
    }
}
