//! Request bodies: JSON read with a size limit and a deadline, every failure a clear 4xx (never
//! a 500).

use std::time::Duration;

use axum::extract::{FromRequest, Request};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::config::MAX_JSON_BODY_BYTES;
use crate::error::ApiError;

/// A JSON body of at most [`MAX_JSON_BODY_BYTES`]: `Content-Type: application/json` or 415 (a
/// body a cross-site page can send without a preflight is never read as JSON); malformed JSON,
/// wrong types and missing fields are 422 with serde's description, an oversized body is 413.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// The longest a request body may take to arrive (`ASHGATE_HTTP_BODY_TIMEOUT_SECONDS`), set on
/// every request by [`with_body_timeout`].
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Used when no [`BodyTimeout`] was set on the request.
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Middleware: gives every request the body deadline `timeout`.
pub async fn with_body_timeout(timeout: Duration, mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(BodyTimeout(timeout));
    next.run(request).await
}

/// Reads the whole body, refusing more than `limit` bytes with 413 and a body that does not
/// arrive within its deadline with 408 (a client trickling bytes must not hold a task for ever).
pub async fn read_limited(request: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let deadline = request.extensions().get::<BodyTimeout>().map_or(DEFAULT_BODY_TIMEOUT, |t| t.0);
    // A declared length over the limit is refused at once, not after waiting for the bytes.
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit));
    }
    match tokio::time::timeout(deadline, axum::body::to_bytes(request.into_body(), limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large(limit)),
        Err(_) => {
            Err(ApiError::Timeout(format!("Request body was not received within {} s", deadline.as_secs())))
        }
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::TooLarge(format!("Request body is larger than {limit} bytes"))
}

/// Parses JSON, describing what is wrong in one line.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Unprocessable("Request body must be a JSON object".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::Unprocessable(format!("Invalid request body: {e}")))
}

/// Refuses a body whose `Content-Type` (parameters aside, any case) is not `expected`.
pub fn require_content_type(
    request: &Request,
    expected: &'static str,
    refusal: &'static str,
) -> Result<(), ApiError> {
    let essence = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if essence.is_some_and(|e| e.eq_ignore_ascii_case(expected)) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(refusal))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        require_content_type(&request, "application/json", "Content-Type must be application/json")?;
        let bytes = read_limited(request, MAX_JSON_BODY_BYTES).await?;
        parse_json(&bytes).map(Self)
    }
}
