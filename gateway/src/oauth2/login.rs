//! `GET|POST /oauth2/{idp}/login?returnUrl=…`: starts the authorization-code flow. Answers 302
//! to the provider's authorization endpoint with `state`, `nonce` and a PKCE S256 challenge,
//! and sets the three OAuth2 cookies that the callback checks.

use axum::extract::{OriginalUri, Path, State};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use http::header::{HOST, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    AuthType, ClientId, ClientSecret, CsrfToken, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
};
use serde::Deserialize;

use std::net::IpAddr;

use crate::caller::{ClientAddr, PeerAddr};
use crate::oauth2::config::{ProviderConfig, TokenAuthMethod};
use crate::oauth2::discovery::Provider;
use crate::oauth2::state::{STATE_TTL_SECONDS, StateClaims, is_safe_return_url};
use crate::oauth2::{NONCE_COOKIE, STATE_COOKIE, SignInError, VERIFIER_COOKIE, admit, fail, oauth_cookie};
use crate::state::AppState;

/// Query of the login route.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// Where to go after signing in: a path on this site.
    #[serde(rename = "returnUrl")]
    return_url: Option<String>,
}

/// The OpenID client for `provider` with this callback URL.
pub fn client_for(
    config: &ProviderConfig,
    metadata: &openidconnect::core::CoreProviderMetadata,
    redirect_uri: RedirectUrl,
) -> CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
> {
    let secret = config.client_secret.as_ref().map(|s| ClientSecret::new(s.expose().to_owned()));
    let auth_type = match config.auth_method {
        TokenAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
        TokenAuthMethod::ClientSecretPost | TokenAuthMethod::None => AuthType::RequestBody,
    };
    CoreClient::from_provider_metadata(metadata.clone(), ClientId::new(config.client_id.clone()), secret)
        .set_redirect_uri(redirect_uri)
        .set_auth_type(auth_type)
}

/// `https://host[:port][/root]` the callback URL is built from: `PHOENIX_ROOT_URL` when set,
/// else the request's `Host` (and `X-Forwarded-Proto`/`-Host` when `peer` is a trusted proxy)
/// under `PHOENIX_HOST_ROOT_PATH`. (The provider only redirects to callback URLs registered
/// with it, so a forged `Host` cannot send the code elsewhere; `PHOENIX_ROOT_URL` is advised.)
pub fn callback_origin(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<String> {
    if let Some(root_url) = &state.config.root_url {
        return Some(root_url.clone());
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let trusted = state.config.trusted_proxies.trusts_peer(peer);
    let scheme = trusted.then(|| header("x-forwarded-proto")).flatten().unwrap_or("http");
    let host = trusted.then(|| header("x-forwarded-host")).flatten().or_else(|| header(HOST.as_str()))?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    // A Host header that is anything but a host and port is refused.
    let url = url::Url::parse(&format!("{scheme}://{host}")).ok()?;
    if url.path() != "/" || !url.username().is_empty() || url.query().is_some() || !url.has_host() {
        return None;
    }
    Some(format!("{}{}", url.as_str().trim_end_matches('/'), state.config.root_path))
}

fn random_token(bytes: usize) -> String {
    let data: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// `GET|POST /oauth2/{idp}/login`.
#[tracing::instrument(skip_all, fields(idp = %idp))]
pub async fn start(
    State(state): State<AppState>,
    Path(idp): Path<String>,
    OriginalUri(uri): OriginalUri,
    client: ClientAddr,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
) -> Response {
    let (provider, query) = match admit::<LoginQuery>(&state, &state.oauth2_login_limit, &idp, client, &uri) {
        Ok(admitted) => admitted,
        Err(refused) => return refused.answer(&state),
    };
    let return_url = query.return_url.filter(|u| !u.is_empty());
    if return_url.as_deref().is_some_and(|u| !is_safe_return_url(u)) {
        return fail(&state, SignInError::UnsafeReturnUrl);
    }
    match redirect_to_provider(&state, &provider, &headers, peer, return_url).await {
        Ok(response) => response,
        Err(error) => fail(&state, error),
    }
}

async fn redirect_to_provider(
    state: &AppState,
    provider: &Provider,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    return_url: Option<String>,
) -> Result<Response, SignInError> {
    let metadata = provider.ensure(&state.oauth2.http).await.map_err(|error| {
        tracing::warn!(%error, "sign-in started while the provider is unavailable");
        SignInError::ProviderUnavailable
    })?;
    let origin = callback_origin(state, headers, peer).ok_or(SignInError::AuthFailed)?;
    let redirect_uri = RedirectUrl::new(format!("{origin}/oauth2/{}/tokens", provider.config.name))
        .map_err(|_| SignInError::AuthFailed)?;
    let now = crate::timestamp::now_millis() / 1000;
    let claims = StateClaims {
        random: random_token(16),
        idp: provider.config.name.clone(),
        origin,
        return_url,
        expires_at: now.saturating_add(STATE_TTL_SECONDS),
    };
    let signed_state = state.oauth2_state.sign(&claims);
    let nonce = random_token(24);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let client = client_for(&provider.config, &metadata, redirect_uri);
    let (state_for_url, nonce_for_url) = (signed_state.clone(), nonce.clone());
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state_for_url),
            move || Nonce::new(nonce_for_url),
        )
        .set_pkce_challenge(challenge);
    let mut scopes = vec!["email".to_owned(), "profile".to_owned()];
    for scope in &provider.config.extra_scopes {
        if scope != "openid" && !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    for scope in scopes {
        request = request.add_scope(Scope::new(scope));
    }
    let (url, _, _) = request.url();
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(LOCATION, HeaderValue::try_from(url.as_str()).map_err(|_| SignInError::AuthFailed)?);
    let cookies = [
        (STATE_COOKIE, signed_state.as_str()),
        (NONCE_COOKIE, nonce.as_str()),
        (VERIFIER_COOKIE, verifier.secret().as_str()),
    ];
    for (name, value) in cookies {
        let cookie = oauth_cookie(&state.config, name, value).ok_or(SignInError::AuthFailed)?;
        headers.append(SET_COOKIE, cookie);
    }
    Ok(response)
}
