//! REST and auth routes, plus what they share: query parameters, paging, role gates.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod ldap;
pub mod ops;
pub mod password_reset;
pub mod read;
pub mod traces;
pub mod users;

use axum::extract::{FromRequestParts, Query};
use http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::caller::AnyCaller;
use crate::error::{ApiError, ApiResult};
use crate::global_id;
use crate::state::AppState;

/// Phoenix's `require_admin` text.
pub const ADMIN_ONLY: &str = "Only admin or system users can perform this action.";
/// Phoenix's `require_auth_enabled` text.
pub const AUTH_REQUIRED: &str = "This action requires authentication to be enabled. Set the PHOENIX_ENABLE_AUTH environment variable to true.";

/// Query parameters; a value of the wrong type is 422 (FastAPI's status), not axum's 400.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::Unprocessable(format!("Invalid query parameters: {}", e.body_text())))
    }
}

/// `cursor` and `limit` of a paged list.
#[derive(Debug, Default, Deserialize)]
pub struct Page {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<String>,
}

impl Page {
    /// The page size: a whole number in 1..=`max` (Phoenix: `gt=0`, `le=max`).
    pub fn limit(&self, max: u32) -> ApiResult<u32> {
        match self.limit.as_deref().map(str::trim) {
            None | Some("") => Ok(100.min(max)),
            Some(raw) => raw.parse::<u32>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
                ApiError::Unprocessable(format!("limit must be a whole number between 1 and {max}"))
            }),
        }
    }

    /// identity-svc's (cursor, limit) from a GlobalID cursor of `node_type`.
    pub fn to_identity(&self, node_type: &str) -> ApiResult<(String, u32)> {
        let limit = self.limit(1000)?;
        let cursor = match self.cursor.as_deref().map(str::trim) {
            None | Some("") => String::new(),
            Some(raw) => global_id::decode_id(raw, node_type)
                .map(|id| id.to_string())
                .ok_or_else(|| ApiError::Unprocessable(format!("Invalid cursor format: {raw}")))?,
        };
        Ok((cursor, limit))
    }

    /// The REST `next_cursor` for identity-svc's (empty = last page).
    pub fn next_cursor(node_type: &str, identity_cursor: &str) -> Option<String> {
        (!identity_cursor.is_empty()).then(|| global_id::encode(node_type, identity_cursor))
    }
}

/// Phoenix's `require_admin`: refused before the body is even looked at (identity-svc
/// enforces the same rule again).
pub fn require_admin(state: &AppState, caller: &AnyCaller) -> ApiResult<()> {
    if !state.config.auth_enabled || caller.principal.is_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(ADMIN_ONLY.into()))
    }
}

/// Phoenix's `require_auth_enabled` (API-key routes; beyond Phoenix, user management too: with
/// authentication off, anyone reaching the port could otherwise plant an admin who signs in
/// the day it is turned on).
pub fn require_auth_enabled(state: &AppState) -> ApiResult<()> {
    if state.config.auth_enabled { Ok(()) } else { Err(ApiError::Forbidden(AUTH_REQUIRED.into())) }
}
