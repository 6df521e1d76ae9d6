//! `GET /oauth2/{idp}/tokens`: the provider's redirect back. Checks `state` against its cookie,
//! exchanges the code (with the PKCE verifier), verifies the ID token, reads the claims
//! (UserInfo when the ID token lacks one), applies the group and role rules, and asks
//! identity-svc to sign the person in. Success: the session cookies and a 302 to the relative
//! return URL; failure: Phoenix's 307 to `/login?error=<code>`.

use ashgate_proto::identity as pb;
use axum::extract::{OriginalUri, Path, State};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use http::header::LOCATION;
use http::{HeaderMap, HeaderValue, StatusCode};
use openidconnect::core::{CoreIdToken, CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, Nonce, OAuth2TokenResponse as _, PkceCodeVerifier,
    RedirectUrl, TokenResponse as _,
};
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq as _;

use crate::caller::ClientAddr;
use crate::cookies::read_cookie;
use crate::oauth2::attribute::{RoleDecision, decide_role, in_allowed_group};
use crate::oauth2::discovery::Provider;
use crate::oauth2::login::client_for;
use crate::oauth2::state::{StateClaims, is_safe_return_url};
use crate::oauth2::{
    NONCE_COOKIE, STATE_COOKIE, SignInError, VERIFIER_COOKIE, admit, clear_oauth_cookies, fail,
};
use crate::routes::auth::set_session_cookies;
use crate::state::AppState;
use crate::upstream::CallContext;

/// Query of the callback.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// `GET /oauth2/{idp}/tokens`.
#[tracing::instrument(skip_all, fields(idp = %idp))]
pub async fn finish(
    State(state): State<AppState>,
    Path(idp): Path<String>,
    OriginalUri(uri): OriginalUri,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let (provider, query) =
        match admit::<CallbackQuery>(&state, &state.oauth2_callback_limit, &idp, client, &uri) {
            Ok(admitted) => admitted,
            Err(refused) => return refused.answer(&state),
        };
    match sign_in(&state, &provider, query, &headers, client).await {
        Ok((pair, return_url)) => {
            let target = state.config.at_root(return_url.as_deref().unwrap_or("/"));
            let mut response = StatusCode::FOUND.into_response();
            let out = response.headers_mut();
            if let Ok(location) = HeaderValue::try_from(target) {
                out.insert(LOCATION, location);
            }
            clear_oauth_cookies(&state.config, out);
            set_session_cookies(&state.config, &pair, out);
            tracing::info!(user_id = pair.user_id, "signed in through an identity provider");
            response
        }
        Err(error) => {
            tracing::info!(code = error.code(), "identity-provider sign-in refused");
            fail(&state, error)
        }
    }
}

/// The state claims, if the query's `state` is ours, unexpired, for this provider, and equal to
/// the state cookie.
fn checked_state(
    state: &AppState,
    idp: &str,
    presented: Option<&str>,
    headers: &HeaderMap,
) -> Option<StateClaims> {
    let presented = presented?;
    let cookie = read_cookie(headers, STATE_COOKIE)?;
    if !bool::from(cookie.as_bytes().ct_eq(presented.as_bytes())) {
        return None;
    }
    let now = crate::timestamp::now_millis() / 1000;
    state.oauth2_state.verify(presented, now).filter(|claims| claims.idp == idp)
}

async fn sign_in(
    state: &AppState,
    provider: &Provider,
    query: CallbackQuery,
    headers: &HeaderMap,
    client: ClientAddr,
) -> Result<(pb::TokenPair, Option<String>), SignInError> {
    let config = &provider.config;
    if let Some(error) = &query.error {
        // The provider's error code is not a secret; its description may echo user input.
        tracing::info!(provider_error = %error.chars().take(64).collect::<String>(), "the provider refused");
        return Err(SignInError::AuthFailed);
    }
    let code = query.code.filter(|c| !c.is_empty()).ok_or(SignInError::AuthFailed)?;
    let claims = checked_state(state, &config.name, query.state.as_deref(), headers)
        .ok_or(SignInError::InvalidState)?;
    let nonce = read_cookie(headers, NONCE_COOKIE).ok_or(SignInError::InvalidState)?;
    let verifier = read_cookie(headers, VERIFIER_COOKIE).ok_or(SignInError::InvalidState)?;
    if claims.return_url.as_deref().is_some_and(|u| !is_safe_return_url(u)) {
        return Err(SignInError::UnsafeReturnUrl);
    }
    let metadata = provider.ensure(&state.oauth2.http).await.map_err(|_| SignInError::ProviderUnavailable)?;
    let redirect_uri = RedirectUrl::new(format!("{}/oauth2/{}/tokens", claims.origin, config.name))
        .map_err(|_| SignInError::InvalidState)?;
    let oidc = client_for(config, &metadata, redirect_uri.clone());
    let tokens = oidc
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            tracing::warn!(error = %e, "the provider has no token endpoint");
            SignInError::NoOidcSupport
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&state.oauth2.http)
        .await
        .map_err(|e| {
            tracing::info!(error = %token_error(&e), "the token endpoint refused the code");
            SignInError::OAuthError
        })?;
    let id_token = tokens.id_token().ok_or(SignInError::NoOidcSupport)?;
    let nonce = Nonce::new(nonce);
    let verified = match verify_id_token(config, &metadata, redirect_uri.clone(), id_token, &nonce) {
        // An unknown signing key may mean the provider rotated its keys: fetch them again once.
        Err(ClaimsVerificationError::SignatureVerification(_)) => {
            let fresh = provider.rediscover(&state.oauth2.http).await.map_err(|_| SignInError::AuthFailed)?;
            verify_id_token(config, &fresh, redirect_uri, id_token, &nonce)
        }
        other => other,
    };
    verified.map_err(|e| {
        tracing::info!(error = %e, "the ID token did not verify");
        SignInError::AuthFailed
    })?;
    let mut claims_json = id_token_payload(id_token).ok_or(SignInError::AuthFailed)?;
    let needs_userinfo = config.email_path.text(&claims_json).is_none()
        || config.groups.as_ref().is_some_and(|g| g.path.find(&claims_json).is_none())
        || config.role.as_ref().is_some_and(|r| r.path.find(&claims_json).is_none());
    if needs_userinfo && let Some(endpoint) = metadata.userinfo_endpoint() {
        let info = fetch_userinfo(state, endpoint.as_str(), tokens.access_token().secret()).await;
        merge_userinfo(&mut claims_json, info)?;
    }
    let identity = resolve(config, &claims_json)?;
    let request = state.identity.request(identity, &CallContext { bearer: None, client_addr: client.0 });
    let pair =
        state.identity.internal().complete_o_auth2_sign_in(request).await.map_err(|status| {
            match (status.code(), status.message()) {
                (tonic::Code::FailedPrecondition, "email_in_use") => SignInError::EmailInUse,
                (tonic::Code::FailedPrecondition, "sign_in_not_allowed") => SignInError::SignInNotAllowed,
                (code, message) => {
                    tracing::warn!(?code, %message, "identity-svc did not complete the sign-in");
                    SignInError::AuthFailed
                }
            }
        })?;
    Ok((pair.into_inner(), claims.return_url))
}

/// Signature (JWKS), issuer, audience, expiry and nonce, with the algorithms the provider
/// announces (never `none` or a symmetric one keyed by the client secret).
fn verify_id_token(
    config: &crate::oauth2::config::ProviderConfig,
    metadata: &CoreProviderMetadata,
    redirect_uri: RedirectUrl,
    id_token: &CoreIdToken,
    nonce: &Nonce,
) -> Result<(), ClaimsVerificationError> {
    let client = client_for(config, metadata, redirect_uri);
    let algorithms: Vec<CoreJwsSigningAlgorithm> = metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|a| {
            !matches!(
                a,
                CoreJwsSigningAlgorithm::None
                    | CoreJwsSigningAlgorithm::HmacSha256
                    | CoreJwsSigningAlgorithm::HmacSha384
                    | CoreJwsSigningAlgorithm::HmacSha512
            )
        })
        .cloned()
        .collect();
    let verifier = client.id_token_verifier().set_allowed_algs(algorithms);
    id_token.claims(&verifier, nonce).map(|_| ())
}

/// The ID token's payload as JSON (only read after it verified).
fn id_token_payload(id_token: &CoreIdToken) -> Option<Value> {
    let jwt = id_token.to_string();
    let payload = jwt.split('.').nth(1)?;
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object)
}

/// UserInfo as JSON; `None` when the provider does not answer with a JSON object.
async fn fetch_userinfo(state: &AppState, endpoint: &str, access_token: &str) -> Option<Value> {
    let response = state.oauth2.http.get(endpoint).bearer_auth(access_token).send().await;
    match response {
        Ok(r) if r.status().is_success() => r.json::<Value>().await.ok().filter(Value::is_object),
        Ok(r) => {
            tracing::info!(status = r.status().as_u16(), "UserInfo refused");
            None
        }
        Err(e) => {
            tracing::info!(error = %e, "UserInfo unreachable");
            None
        }
    }
}

/// Adds UserInfo claims the ID token lacks (the ID token wins); a missing or different `sub`
/// is refused.
fn merge_userinfo(claims: &mut Value, userinfo: Option<Value>) -> Result<(), SignInError> {
    let (Some(Value::Object(info)), Some(target)) = (userinfo, claims.as_object_mut()) else { return Ok(()) };
    // OIDC Core §5.3.2: UserInfo must name the subject, and the ID token's.
    if info.get("sub") != target.get("sub") {
        tracing::warn!("UserInfo names another subject than the ID token");
        return Err(SignInError::AuthFailed);
    }
    for (key, value) in info {
        target.entry(key).or_insert(value);
    }
    Ok(())
}

/// What identity-svc needs, after the email, group and role rules.
fn resolve(
    config: &crate::oauth2::config::ProviderConfig,
    claims: &Value,
) -> Result<pb::CompleteOAuth2SignInRequest, SignInError> {
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(SignInError::AuthFailed),
    };
    let email =
        config.email_path.text(claims).filter(|e| e.contains('@')).ok_or(SignInError::MissingEmailScope)?;
    // Beyond Phoenix: an email the provider says it has not verified is anyone's to claim.
    // (Some providers, AWS Cognito among them, send the flag as a string.) The flag speaks of
    // the `email` claim only: an email read elsewhere (EMAIL_ATTRIBUTE_PATH) is verified only
    // if it is that very address.
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(verified)) => Some(*verified),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    if email_verified == Some(false) {
        return Err(SignInError::EmailNotVerified);
    }
    let email_verified = email_verified == Some(true) && same_as_email_claim(claims, &email);
    if let Some(rule) = &config.groups
        && !in_allowed_group(rule, claims)
    {
        tracing::info!("the user is in none of the allowed groups");
        return Err(SignInError::AuthFailed);
    }
    let (role, resync_role) = match &config.role {
        None => (pb::Role::Unspecified, false),
        Some(rule) => match decide_role(rule, claims) {
            RoleDecision::Mapped(role) => (role, rule.resync),
            RoleDecision::Refused => {
                tracing::info!("no mappable role and ROLE_ATTRIBUTE_STRICT is set");
                return Err(SignInError::AuthFailed);
            }
        },
    };
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::trim).unwrap_or_default();
    let picture = text("picture");
    let picture =
        if picture.starts_with("https://") || picture.starts_with("http://") { picture } else { "" };
    Ok(pb::CompleteOAuth2SignInRequest {
        idp: config.name.clone(),
        client_id: config.client_id.clone(),
        subject,
        email,
        username: text("name").chars().take(64).collect(),
        profile_picture_url: picture.chars().take(2048).collect(),
        allow_sign_up: config.allow_sign_up,
        role: role.into(),
        resync_role,
        email_verified,
    })
}

/// Whether `email` is the `email` claim itself (trimmed, any case).
fn same_as_email_claim(claims: &Value, email: &str) -> bool {
    claims
        .get("email")
        .and_then(Value::as_str)
        .is_some_and(|claim| claim.trim().eq_ignore_ascii_case(email.trim()))
}

/// A token-endpoint failure described without the response body (it may hold tokens).
fn token_error<E: std::error::Error>(error: &E) -> String {
    error.to_string().chars().take(300).collect()
}
