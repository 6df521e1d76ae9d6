//! The OTLP/HTTP listener: `POST /v1/traces`, `GET /metrics`, `GET /healthz`, `GET /readyz`.

use std::sync::Arc;

use ashgate_identity_client::metrics::HttpMetrics;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message as _;

use crate::decode::body::{self, Format};

use crate::auth::CredentialVerifier;
use crate::error::Error;
use crate::pipeline::admission::{ExportOutcome, Ingest};
use crate::store::Store;

/// Header that names the project for every span of the request (Phoenix's override).
const PROJECT_HEADER: &str = "x-project-name";

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// Credential checks.
    pub verifier: CredentialVerifier,
    /// The ingest path.
    pub ingest: Arc<Ingest>,
    /// For `/readyz`.
    pub store: Store,
}

/// The HTTP routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/v1/traces", post(post_traces))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        // The handler applies the configured limit itself, before and after decompression.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.ingest.metrics.http.clone(),
            HttpMetrics::middleware,
        ))
        .with_state(state)
}

/// `POST /v1/traces`: authenticate first, then check the request, then decode, queue, commit.
#[tracing::instrument(skip_all, fields(user_id, spans))]
async fn post_traces(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let format = body::format_of(&headers).unwrap_or(Format::Protobuf);
    match export(&state, &headers, body).await {
        Ok(outcome) => {
            tracing::Span::current().record("spans", outcome.accepted_spans);
            success(format, &outcome)
        }
        Err((error, counted)) => {
            if !counted {
                state.ingest.metrics.record_refused(&error, None);
            }
            error.into_response()
        }
    }
}

/// The export itself; the error says whether it was already counted in the metrics.
async fn export(state: &HttpState, headers: &HeaderMap, body: Body) -> Result<ExportOutcome, (Error, bool)> {
    let principal = state.verifier.verify_headers(headers).await.map_err(|e| (Error::Auth(e), false))?;
    // Viewers may not write; a session that must change its password may do nothing else.
    principal.check(true).map_err(|e| (Error::Auth(e), false))?;
    tracing::Span::current().record("user_id", principal.user_id);
    let format = body::format_of(headers).map_err(|e| (e, false))?;
    let encoding = body::encoding_of(headers).map_err(|e| (e, false))?;
    let ingest = &state.ingest;
    // Do not read a body the queue could not take anyway.
    if ingest.queue.is_full() {
        return Err((ingest.queue.full_error(), false));
    }
    let project_override = headers
        .get(PROJECT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let permit = ingest.decode_permit().await.map_err(|e| (e, false))?;
    let limit = ingest.max_message_bytes;
    let raw = tokio::time::timeout(ingest.body_timeout, body::read_limited(headers, body, limit))
        .await
        .map_err(|_| (Error::BodyTimeout { secs: ingest.body_timeout.as_secs() }, false))?
        .map_err(|e| (e, false))?;
    let request = body::decode(raw, encoding, format, limit).await.map_err(|e| (e, false))?;
    // `Ingest::export` counts its own refusals.
    ingest.export(request, project_override, &principal, Some(permit)).await.map_err(|e| (e, true))
}

fn success(format: Format, outcome: &ExportOutcome) -> Response {
    let body = match format {
        Format::Json => {
            crate::decode::otlp_json::encode_response(outcome.rejected_spans, outcome.message.as_deref())
                .into_bytes()
        }
        Format::Protobuf => ExportTraceServiceResponse {
            partial_success: outcome.message.clone().map(|error_message| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(outcome.rejected_spans).unwrap_or(i64::MAX),
                error_message,
            }),
        }
        .encode_to_vec(),
    };
    (StatusCode::OK, [(CONTENT_TYPE, format.content_type())], body).into_response()
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let queue = &state.ingest.queue;
    let text = state.ingest.metrics.render(queue.depth(), queue.capacity(), state.verifier.stats());
    ([(CONTENT_TYPE, ashgate_identity_client::metrics::CONTENT_TYPE)], text).into_response()
}

async fn readyz(State(state): State<HttpState>) -> Response {
    if state.store.ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "span store unavailable").into_response()
    }
}
