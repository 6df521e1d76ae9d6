//! Operational routes: `/healthz` (the process answers), `/readyz` (identity-svc and a
//! collector answer their gRPC health checks), `/metrics` (Prometheus text) and
//! `/openapi.json`.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::state::AppState;

/// The hand-written OpenAPI document of every route the gateway serves.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "OK"
}

async fn serving(channel: Channel) -> bool {
    let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
    request.set_timeout(Duration::from_secs(2));
    matches!(
        HealthClient::new(channel).check(request).await,
        Ok(reply) if reply.get_ref().status == i32::from(ServingStatus::Serving)
    )
}

/// `GET /readyz`: 200 "ready", or 503 naming what is not.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (identity, collector) =
        tokio::join!(serving(state.identity.channel()), serving(state.collector.channel()));
    let down: Vec<&str> = [(identity, "identity-svc"), (collector, "collector-svc")]
        .into_iter()
        .filter(|(up, _)| !up)
        .map(|(_, name)| name)
        .collect();
    if down.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {} unavailable", down.join(", ")))
            .into_response()
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(state.verifier.stats());
    ([(CONTENT_TYPE, ashgate_identity_client::metrics::CONTENT_TYPE), (CACHE_CONTROL, "no-store")], text)
        .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    ([(CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
