//! The Phoenix server version ashgate's REST contract follows. Phoenix's clients read it from
//! `GET /arize_phoenix_version` or the `x-phoenix-server-version` header of any response, and
//! refuse filtered reads when they cannot (`server_requirements.py`).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CONTENT_TYPE;

/// Phoenix 20.11.0: the newest release whose `GET /v1/projects/{p}/spans` and `/traces` take
/// exactly the parameters ashgate serves (20.12 added trace filter expressions, 20.20 span
/// sorting), and at or above every version the pinned clients gate span and trace reads on
/// (the highest, 20.8.0, for the trace `error` and latency filters).
pub const PHOENIX_VERSION: &str = "20.11.0";

/// Phoenix's response header naming the server version.
pub const VERSION_HEADER: &str = "x-phoenix-server-version";

/// `GET /arize_phoenix_version`: the version as plain text (public, as in Phoenix).
pub async fn version() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], PHOENIX_VERSION).into_response()
}

/// Adds the version header to every response, errors included (Phoenix's `HeadersMiddleware`).
pub async fn add_version_header(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(VERSION_HEADER, HeaderValue::from_static(PHOENIX_VERSION));
    response
}
