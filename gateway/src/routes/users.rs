//! Phoenix's user routes (docs/phoenix-compat.md §6.2): `GET /v1/user`, `GET/POST /v1/users`,
//! `DELETE /v1/users/{user_id}`, with Phoenix's JSON shapes and GlobalIDs.

use ashgate_proto::identity as pb;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::body::JsonBody;
use crate::caller::{AnyCaller, Caller};
use crate::error::{ApiError, ApiResult};
use crate::global_id;
use crate::routes::{Page, Params, require_admin, require_auth_enabled};
use crate::state::AppState;
use crate::timestamp::iso_from_millis;

/// Phoenix's `User` (LOCAL, OAUTH2 or LDAP variant).
#[derive(Debug, Serialize)]
pub struct UserJson {
    id: String,
    email: String,
    username: String,
    role: &'static str,
    auth_method: &'static str,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_needs_reset: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oauth2_client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oauth2_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile_picture_url: Option<String>,
}

/// Phoenix's name of a role.
pub fn role_name(role: i32) -> &'static str {
    match pb::Role::try_from(role).unwrap_or(pb::Role::Unspecified) {
        pb::Role::System => "SYSTEM",
        pb::Role::Admin => "ADMIN",
        pb::Role::Member => "MEMBER",
        pb::Role::Viewer => "VIEWER",
        pb::Role::Unspecified => "UNKNOWN",
    }
}

fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// Phoenix's name of an auth method.
pub fn auth_method_name(auth_method: i32) -> &'static str {
    match pb::AuthMethod::try_from(auth_method).unwrap_or(pb::AuthMethod::Unspecified) {
        pb::AuthMethod::Oauth2 => "OAUTH2",
        pb::AuthMethod::Ldap => "LDAP",
        pb::AuthMethod::Local | pb::AuthMethod::Unspecified => "LOCAL",
    }
}

impl From<pb::User> for UserJson {
    fn from(user: pb::User) -> Self {
        let auth_method = auth_method_name(user.auth_method);
        let oauth2 = auth_method == "OAUTH2";
        Self {
            id: global_id::encode(global_id::USER, user.id),
            role: role_name(user.role),
            auth_method,
            created_at: iso_from_millis(user.created_at_ms),
            updated_at: iso_from_millis(user.updated_at_ms),
            // Only local users have a password (Phoenix's LDAP and OAuth2 users have no field).
            password_needs_reset: (auth_method == "LOCAL").then_some(user.password_needs_reset),
            oauth2_client_id: if oauth2 { non_empty(user.oauth2_client_id) } else { None },
            oauth2_user_id: if oauth2 { non_empty(user.oauth2_user_id) } else { None },
            profile_picture_url: if oauth2 { non_empty(user.profile_picture_url) } else { None },
            email: user.email,
            username: user.username,
        }
    }
}

/// `GET /v1/user`: the authenticated user; `{"auth_method": "ANONYMOUS"}` when auth is off.
#[tracing::instrument(skip_all)]
pub async fn get_viewer(State(state): State<AppState>, caller: AnyCaller) -> ApiResult<Json<Value>> {
    if !state.config.auth_enabled {
        return Ok(Json(json!({"data": {"auth_method": "ANONYMOUS"}})));
    }
    let request = state.identity.request(pb::GetSelfRequest {}, &caller.context);
    let user = state.identity.users().get_self(request).await?.into_inner();
    if user.id == 0 {
        return Err(ApiError::Unauthenticated("User not found".into()));
    }
    Ok(Json(json!({"data": UserJson::from(user)})))
}

/// `GET /v1/users?cursor&limit`: a page of users (admins).
#[tracing::instrument(skip_all)]
pub async fn list_users(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<Value>> {
    require_auth_enabled(&state)?;
    require_admin(&state, &caller)?;
    let (cursor, limit) = page.to_identity(global_id::USER)?;
    let request = state.identity.request(pb::ListUsersRequest { cursor, limit }, &caller.context);
    let reply = state.identity.users().list_users(request).await?.into_inner();
    let users: Vec<UserJson> = reply.users.into_iter().map(UserJson::from).collect();
    Ok(Json(json!({"data": users, "next_cursor": Page::next_cursor(global_id::USER, &reply.next_cursor)})))
}

/// Roles a REST caller may name.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum RoleName {
    /// Phoenix rejects it with 400.
    System,
    /// Admin.
    Admin,
    /// Member.
    Member,
    /// Viewer.
    Viewer,
}

impl RoleName {
    /// The wire role.
    pub fn to_pb(self) -> pb::Role {
        match self {
            Self::System => pb::Role::System,
            Self::Admin => pb::Role::Admin,
            Self::Member => pb::Role::Member,
            Self::Viewer => pb::Role::Viewer,
        }
    }
}

/// `user` of `POST /v1/users`.
#[derive(Debug, Deserialize)]
#[serde(tag = "auth_method")]
enum NewUser {
    #[serde(rename = "LOCAL")]
    Local { email: String, username: String, role: RoleName, password: Option<String> },
    #[serde(rename = "OAUTH2")]
    OAuth2 {
        email: String,
        username: String,
        role: RoleName,
        oauth2_client_id: Option<String>,
        oauth2_user_id: Option<String>,
    },
    /// Pre-provisioned: matched by email at the first directory sign-in.
    #[serde(rename = "LDAP")]
    Ldap { email: String, username: String, role: RoleName },
}

/// Body of `POST /v1/users`.
#[derive(Debug, Deserialize)]
pub struct CreateUserBody {
    user: NewUser,
    /// Accepted for compatibility; welcome mail is identity-svc's business.
    #[serde(default)]
    #[allow(dead_code)]
    send_welcome_email: Option<bool>,
}

/// `POST /v1/users`: 201 with the new user (admins). REST-created local users must change
/// their password at first sign-in.
#[tracing::instrument(skip_all)]
pub async fn create_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CreateUserBody>,
) -> ApiResult<Response> {
    require_auth_enabled(&state)?;
    require_admin(&state, &caller)?;
    let mut request = match body.user {
        NewUser::Local { email, username, role, password } => pb::CreateUserRequest {
            email,
            username,
            role: role.to_pb().into(),
            auth_method: pb::AuthMethod::Local.into(),
            password: password.unwrap_or_default(),
            ..Default::default()
        },
        NewUser::OAuth2 { email, username, role, oauth2_client_id, oauth2_user_id } => {
            pb::CreateUserRequest {
                email,
                username,
                role: role.to_pb().into(),
                auth_method: pb::AuthMethod::Oauth2.into(),
                oauth2_client_id: oauth2_client_id.unwrap_or_default(),
                oauth2_user_id: oauth2_user_id.unwrap_or_default(),
                ..Default::default()
            }
        }
        NewUser::Ldap { email, username, role } => pb::CreateUserRequest {
            email,
            username,
            role: role.to_pb().into(),
            auth_method: pb::AuthMethod::Ldap.into(),
            ..Default::default()
        },
    };
    if request.role == i32::from(pb::Role::System) {
        return Err(ApiError::BadRequest("Cannot create users with SYSTEM role".into()));
    }
    request.email = request.email.trim().to_owned();
    let request = state.identity.request(request, &caller.context);
    let user = state.identity.users().create_user(request).await?.into_inner();
    Ok((StatusCode::CREATED, Json(json!({"data": UserJson::from(user)}))).into_response())
}

/// `DELETE /v1/users/{user_id}` (GlobalID): 204 (admins; never the default admin or system user).
#[tracing::instrument(skip_all)]
pub async fn delete_user(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    require_auth_enabled(&state)?;
    require_admin(&state, &caller)?;
    let id = global_id::decode_id(&user_id, global_id::USER)
        .ok_or_else(|| ApiError::Unprocessable(format!("Invalid User GlobalID format: {user_id}")))?;
    let request = state.identity.request(pb::DeleteUserRequest { user_id: id }, &caller.context);
    state.identity.users().delete_user(request).await?;
    Ok(StatusCode::NO_CONTENT)
}
