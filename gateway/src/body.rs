//! Request bodies: JSON read with a size limit, every failure a clear 4xx (never a 500).

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::config::MAX_JSON_BODY_BYTES;
use crate::error::ApiError;

/// A JSON body of at most [`MAX_JSON_BODY_BYTES`]; malformed JSON, wrong types and missing
/// fields are 422 with serde's description, an oversized body is 413.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_limited(request: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::TooLarge(format!("Request body is larger than {limit} bytes")))
}

/// Parses JSON, describing what is wrong in one line.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Unprocessable("Request body must be a JSON object".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::Unprocessable(format!("Invalid request body: {e}")))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_limited(request, MAX_JSON_BODY_BYTES).await?;
        parse_json(&bytes).map(Self)
    }
}
