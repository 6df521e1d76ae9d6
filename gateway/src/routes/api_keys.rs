//! Phoenix's API-key routes (docs/phoenix-compat.md §5, Phoenix ≥ 18.1): user keys under
//! `/v1/user/api_keys`, every user's keys under `/v1/users/api_keys` (admins), system keys under
//! `/v1/system/api_keys` (admins). All refuse with 403 when authentication is disabled.

use ashgate_proto::identity as pb;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::body::JsonBody;
use crate::caller::Caller;
use crate::error::{ApiError, ApiResult};
use crate::global_id;
use crate::routes::{Page, Params, require_admin, require_auth_enabled};
use crate::state::AppState;
use crate::timestamp::{iso_from_millis, now_millis, parse_iso_millis};

/// Phoenix's `ApiKey` (absent fields omitted), `CreatedApiKey` (+ `key`) and `UserApiKey`
/// (+ `user`).
#[derive(Debug, Serialize)]
pub struct ApiKeyJson {
    id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Value>,
}

impl ApiKeyJson {
    /// The REST shape of `key` with GlobalID type `node_type`.
    pub fn new(key: pb::ApiKey, node_type: &str) -> Self {
        Self {
            id: global_id::encode(node_type, key.id),
            name: key.name,
            description: (!key.description.is_empty()).then_some(key.description),
            created_at: iso_from_millis(key.created_at_ms),
            expires_at: (key.expires_at_ms > 0).then(|| iso_from_millis(key.expires_at_ms)),
            key: None,
            user: None,
        }
    }

    fn with_owner(mut self, key_user_id: i64, username: String, email: String) -> Self {
        self.user = Some(
            json!({"id": global_id::encode(global_id::USER, key_user_id), "username": username, "email": email}),
        );
        self
    }
}

/// `data` of a create request.
#[derive(Debug, Deserialize)]
pub struct ApiKeyData {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
}

/// Body of the create routes: `{"data": {"name", "description"?, "expires_at"?}}`.
#[derive(Debug, Deserialize)]
pub struct CreateApiKeyBody {
    data: ApiKeyData,
}

impl ApiKeyData {
    /// Phoenix's validation: non-blank name; ISO expiry in the future, naive = UTC.
    pub fn to_request(self) -> ApiResult<pb::CreateApiKeyRequest> {
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            return Err(ApiError::Unprocessable("Name cannot be empty".into()));
        }
        let expires_at_ms = match self.expires_at.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => 0,
            Some(raw) => {
                let ms = parse_iso_millis(raw).ok_or_else(|| {
                    ApiError::Unprocessable(format!("expires_at is not an ISO 8601 datetime: {raw}"))
                })?;
                if ms <= now_millis() {
                    return Err(ApiError::Unprocessable("Expiration time must be in the future".into()));
                }
                ms
            }
        };
        Ok(pb::CreateApiKeyRequest { name, description: self.description.unwrap_or_default(), expires_at_ms })
    }
}

fn created(reply: pb::CreatedApiKey, node_type: &str) -> ApiResult<Response> {
    let key =
        reply.api_key.ok_or_else(|| ApiError::Internal("identity-svc returned no key metadata".into()))?;
    let mut json = ApiKeyJson::new(key, node_type);
    json.key = Some(reply.key);
    Ok((StatusCode::CREATED, Json(json!({"data": json}))).into_response())
}

fn newest_first(mut keys: Vec<pb::ApiKey>) -> Vec<pb::ApiKey> {
    keys.sort_by_key(|k| std::cmp::Reverse(k.id));
    keys
}

/// `GET /v1/user/api_keys`: the caller's own keys (system principals own none).
#[tracing::instrument(skip_all)]
pub async fn list_own(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<Value>> {
    require_auth_enabled(&state)?;
    let request = state.identity.request(pb::ListOwnApiKeysRequest {}, &caller.context);
    let keys = state.identity.keys().list_own_api_keys(request).await?.into_inner().api_keys;
    let data: Vec<_> =
        newest_first(keys).into_iter().map(|k| ApiKeyJson::new(k, global_id::USER_API_KEY)).collect();
    Ok(Json(json!({"data": data})))
}

/// `POST /v1/user/api_keys`: a key for the signed-in human (API keys cannot create keys).
#[tracing::instrument(skip_all)]
pub async fn create_own(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CreateApiKeyBody>,
) -> ApiResult<Response> {
    require_auth_enabled(&state)?;
    let request = state.identity.request(body.data.to_request()?, &caller.context);
    created(state.identity.keys().create_user_api_key(request).await?.into_inner(), global_id::USER_API_KEY)
}

/// `DELETE /v1/user/api_keys/{api_key_id}`: own key, or anyone's (admins); 404 otherwise.
#[tracing::instrument(skip_all)]
pub async fn delete_own(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(api_key_id): Path<String>,
) -> ApiResult<StatusCode> {
    require_auth_enabled(&state)?;
    let id = global_id::decode_id(&api_key_id, global_id::USER_API_KEY).ok_or_else(|| {
        ApiError::Unprocessable(format!("Invalid UserApiKey GlobalID format: {api_key_id}"))
    })?;
    let request = state.identity.request(pb::DeleteApiKeyRequest { id }, &caller.context);
    state.identity.keys().delete_user_api_key(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/users/api_keys?cursor&limit`: every user's keys with their owners (admins).
#[tracing::instrument(skip_all)]
pub async fn list_all_user_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Params(page): Params<Page>,
) -> ApiResult<Json<Value>> {
    require_auth_enabled(&state)?;
    require_admin(&state, &caller)?;
    let (cursor, limit) = page.to_identity(global_id::USER_API_KEY)?;
    let request = state.identity.request(pb::ListAllUserApiKeysRequest { cursor, limit }, &caller.context);
    let reply = state.identity.keys().list_all_user_api_keys(request).await?.into_inner();
    let data: Vec<_> = reply
        .api_keys
        .into_iter()
        .map(|mut k| {
            let (user_id, username, email) =
                (k.user_id, std::mem::take(&mut k.username), std::mem::take(&mut k.email));
            ApiKeyJson::new(k, global_id::USER_API_KEY).with_owner(user_id, username, email)
        })
        .collect();
    Ok(Json(
        json!({"data": data, "next_cursor": Page::next_cursor(global_id::USER_API_KEY, &reply.next_cursor)}),
    ))
}

/// `GET /v1/system/api_keys` (admins).
#[tracing::instrument(skip_all)]
pub async fn list_system(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<Value>> {
    require_auth_enabled(&state)?;
    require_admin(&state, &caller)?;
    let request = state.identity.request(pb::ListSystemApiKeysRequest {}, &caller.context);
    let keys = state.identity.keys().list_system_api_keys(request).await?.into_inner().api_keys;
    let data: Vec<_> =
        newest_first(keys).into_iter().map(|k| ApiKeyJson::new(k, global_id::SYSTEM_API_KEY)).collect();
    Ok(Json(json!({"data": data})))
}

/// `POST /v1/system/api_keys`: admins through a session, or the admin secret.
#[tracing::instrument(skip_all)]
pub async fn create_system(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CreateApiKeyBody>,
) -> ApiResult<Response> {
    require_auth_enabled(&state)?;
    require_admin(&state, &caller)?;
    let request = state.identity.request(body.data.to_request()?, &caller.context);
    created(
        state.identity.keys().create_system_api_key(request).await?.into_inner(),
        global_id::SYSTEM_API_KEY,
    )
}

/// `DELETE /v1/system/api_keys/{api_key_id}` (admins); 404 if it is not a system key.
#[tracing::instrument(skip_all)]
pub async fn delete_system(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(api_key_id): Path<String>,
) -> ApiResult<StatusCode> {
    require_auth_enabled(&state)?;
    require_admin(&state, &caller)?;
    let id = global_id::decode_id(&api_key_id, global_id::SYSTEM_API_KEY).ok_or_else(|| {
        ApiError::Unprocessable(format!("Invalid SystemApiKey GlobalID format: {api_key_id}"))
    })?;
    let request = state.identity.request(pb::DeleteApiKeyRequest { id }, &caller.context);
    match state.identity.keys().delete_system_api_key(request).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(status) if status.code() == tonic::Code::NotFound => {
            Err(ApiError::NotFound("System API key not found".into()))
        }
        Err(status) => Err(status.into()),
    }
}
