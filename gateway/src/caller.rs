//! Who is calling: Phoenix's `BearerTokenAuthBackend` order (docs/phoenix-compat.md §4). An
//! `Authorization` header decides alone (a malformed one is no credential, and the cookie is
//! then not consulted); otherwise the `phoenix-access-token` cookie. Verification goes through
//! the shared [`CredentialVerifier`](ashgate_identity_client::CredentialVerifier).

use std::net::{IpAddr, SocketAddr};

use ashgate_identity_client::bearer::parse_bearer;
use ashgate_identity_client::{AuthError, Principal};
use axum::extract::{ConnectInfo, FromRequestParts};
use http::HeaderMap;
use http::header::AUTHORIZATION;
use http::request::Parts;

use crate::cookies::{ACCESS_COOKIE, read_cookie};
use crate::error::ApiError;
use crate::proxies::TrustedProxies;
use crate::state::AppState;
use crate::upstream::CallContext;

/// Where the credential of a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <credential>`.
    Bearer(String),
    /// An `Authorization` header that is not a well-formed Bearer credential.
    Malformed,
    /// The access-token cookie.
    Cookie(String),
    /// Nothing.
    None,
}

impl Credential {
    /// The credential of a request (Phoenix's order: header, then cookie).
    pub fn of(headers: &HeaderMap) -> Self {
        match headers.get(AUTHORIZATION) {
            Some(value) => match value.to_str().ok().and_then(parse_bearer) {
                Some(token) if token.len() <= 4096 => Self::Bearer(token.to_owned()),
                _ => Self::Malformed,
            },
            None => read_cookie(headers, ACCESS_COOKIE).map_or(Self::None, Self::Cookie),
        }
    }

    /// The token, if there is one.
    pub fn token(&self) -> Option<&str> {
        match self {
            Self::Bearer(t) | Self::Cookie(t) => Some(t),
            Self::Malformed | Self::None => None,
        }
    }
}

/// The TCP peer's address.
pub fn peer_addr(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The end user's address: the TCP peer, or what the trusted proxies in front of the gateway
/// say (see [`crate::proxies`]).
pub fn client_addr(parts: &Parts, proxies: &TrustedProxies) -> Option<IpAddr> {
    proxies.client_addr(peer_addr(parts), &parts.headers)
}

/// An authenticated caller whose session may be one that must change its password first
/// (only `GET /v1/user`, sign-out and the password change accept it).
#[derive(Debug, Clone)]
pub struct AnyCaller {
    /// Who they are.
    pub principal: Principal,
    /// How to call identity-svc on their behalf.
    pub context: CallContext,
    /// Authenticated by the access cookie (a browser) rather than a bearer header.
    pub via_cookie: bool,
}

impl FromRequestParts<AppState> for AnyCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client_addr = client_addr(parts, &state.config.trusted_proxies);
        let credential = Credential::of(&parts.headers);
        if !state.config.auth_enabled {
            let context = CallContext { bearer: None, client_addr };
            return Ok(Self { principal: Principal::anonymous(), context, via_cookie: false });
        }
        let via_cookie = matches!(credential, Credential::Cookie(_));
        let token = credential.token().ok_or(AuthError::Missing)?;
        let principal = state.verifier.verify_bearer(token).await?;
        tracing::Span::current().record("user_id", principal.user_id);
        Ok(Self {
            principal,
            context: CallContext { bearer: Some(token.to_owned()), client_addr },
            via_cookie,
        })
    }
}

/// An authenticated caller allowed to use the API (beyond Phoenix: a session that must change
/// its password first is refused with 403 "You must change your password before continuing.").
#[derive(Debug, Clone)]
pub struct Caller(pub AnyCaller);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = AnyCaller::from_request_parts(parts, state).await?;
        caller.principal.check(false)?;
        Ok(Self(caller))
    }
}

/// The client address and nothing else (sign-in routes, which authenticate by their body).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(client_addr(parts, &state.config.trusted_proxies)))
    }
}

/// The TCP peer's address (a proxy's, behind one), for deciding whether to believe the
/// `X-Forwarded-*` headers it wrote.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for PeerAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(peer_addr(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn phoenix_order() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("phoenix-access-token=c"));
        assert_eq!(Credential::of(&headers), Credential::Cookie("c".into()));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(Credential::of(&headers), Credential::Malformed);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer k"));
        assert_eq!(Credential::of(&headers), Credential::Bearer("k".into()));
        assert_eq!(Credential::of(&HeaderMap::new()), Credential::None);
    }
}
