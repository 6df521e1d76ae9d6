//! Domain ⇄ wire conversions.

use ashgate_proto::identity as pb;
use tonic::Status;

use crate::api_key::ApiKey;
use crate::principal::{CredentialKind, Principal, Role};
use crate::session::TokenPair;
use crate::user::{AuthMethod, User};

pub fn role_to_pb(role: Role) -> pb::Role {
    match role {
        Role::System => pb::Role::System,
        Role::Admin => pb::Role::Admin,
        Role::Member => pb::Role::Member,
        Role::Viewer => pb::Role::Viewer,
    }
}

/// A role from the wire; unset or unknown is INVALID_ARGUMENT.
pub fn role_from_pb(value: i32) -> Result<Role, Status> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::System) => Ok(Role::System),
        Ok(pb::Role::Admin) => Ok(Role::Admin),
        Ok(pb::Role::Member) => Ok(Role::Member),
        Ok(pb::Role::Viewer) => Ok(Role::Viewer),
        _ => Err(Status::invalid_argument("Role must be ADMIN, MEMBER or VIEWER")),
    }
}

/// An auth method from the wire; unset means LOCAL.
pub fn auth_method_from_pb(value: i32) -> Result<AuthMethod, Status> {
    match pb::AuthMethod::try_from(value) {
        Ok(pb::AuthMethod::Unspecified | pb::AuthMethod::Local) => Ok(AuthMethod::Local),
        Ok(pb::AuthMethod::Oauth2) => Ok(AuthMethod::OAuth2),
        Ok(pb::AuthMethod::Ldap) => Ok(AuthMethod::Ldap),
        Err(_) => Err(Status::invalid_argument("Auth method must be LOCAL, OAUTH2 or LDAP")),
    }
}

pub fn user_to_pb(user: User) -> pb::User {
    pb::User {
        id: user.id,
        email: user.email,
        username: user.username,
        role: role_to_pb(user.role).into(),
        auth_method: match user.auth_method {
            AuthMethod::Local => pb::AuthMethod::Local,
            AuthMethod::OAuth2 => pb::AuthMethod::Oauth2,
            AuthMethod::Ldap => pb::AuthMethod::Ldap,
        }
        .into(),
        password_needs_reset: user.password_needs_reset,
        created_at_ms: user.created_at_ms,
        updated_at_ms: user.updated_at_ms,
        oauth2_client_id: user.oauth2_client_id.unwrap_or_default(),
        oauth2_user_id: user.oauth2_user_id.unwrap_or_default(),
        profile_picture_url: user.profile_picture_url.unwrap_or_default(),
    }
}

pub fn pair_to_pb(pair: TokenPair) -> pb::TokenPair {
    pb::TokenPair {
        access_token: pair.access_token,
        access_expires_at_ms: pair.access_expires_at_ms,
        refresh_token: pair.refresh_token,
        refresh_expires_at_ms: pair.refresh_expires_at_ms,
        password_needs_reset: pair.password_needs_reset,
        user_id: pair.user_id,
    }
}

pub fn api_key_to_pb(key: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id,
        name: key.name,
        description: key.description.unwrap_or_default(),
        created_at_ms: key.created_at_ms,
        expires_at_ms: key.expires_at_ms.unwrap_or(0),
        last_used_at_ms: key.last_used_at_ms.unwrap_or(0),
        user_id: key.user_id,
        username: key.username,
        email: key.email,
        system: key.system,
    }
}

pub fn principal_to_pb(principal: &Principal, cache_until_ms: i64) -> pb::Principal {
    pb::Principal {
        user_id: principal.user_id,
        kind: match principal.kind {
            CredentialKind::AccessToken => pb::CredentialKind::AccessToken,
            CredentialKind::UserApiKey => pb::CredentialKind::UserApiKey,
            CredentialKind::SystemApiKey => pb::CredentialKind::SystemApiKey,
            CredentialKind::AdminSecret => pb::CredentialKind::AdminSecret,
            CredentialKind::Anonymous => pb::CredentialKind::Anonymous,
        }
        .into(),
        role: role_to_pb(principal.role).into(),
        expires_at_ms: principal.expires_at_ms.unwrap_or(0),
        cache_until_ms,
        credential_id: principal.credential_id,
        password_needs_reset: principal.password_needs_reset,
        username: String::new(),
        email: String::new(),
    }
}

/// 0 on the wire means "none".
pub fn optional_ms(value: i64) -> Option<i64> {
    (value != 0).then_some(value)
}

/// Empty on the wire means "none".
pub fn optional_text(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}
