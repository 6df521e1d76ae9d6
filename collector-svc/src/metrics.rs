//! What collector-svc's `/metrics` reports, kept by `prometheus-client`: ingest counters, the
//! queue, the credential cache, and every gRPC call and HTTP request with latency histograms.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use ashgate_identity_client::metrics::{self, GrpcMetrics, HttpMetrics, Registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::auth::CacheStats;
use crate::error::Error;

/// Refusal reasons, as labelled on the wire (see [`Error::reason`]).
const REASONS: [&str; 10] = [
    "unauthenticated",
    "forbidden",
    "auth_unavailable",
    "queue_full",
    "too_large",
    "unsupported_media_type",
    "invalid",
    "not_found",
    "store_unavailable",
    "shutting_down",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// Process-wide ingest counters, with the gRPC and HTTP request metrics, in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Recorded by the gRPC server's layer.
    pub grpc: Arc<GrpcMetrics>,
    /// Recorded by the HTTP router's middleware.
    pub http: Arc<HttpMetrics>,
    accepted_exports: Counter,
    accepted_spans: Counter,
    rejected_spans: Counter,
    stored_spans: Counter,
    duplicate_spans: Counter,
    commits: Counter,
    refused_exports: Family<Reason, Counter>,
    refused_spans: Family<Reason, Counter>,
    auth_cache_hits: Counter,
    auth_cache_misses: Counter,
    auth_cache_negative_hits: Counter,
    queue_depth_spans: Gauge,
    queue_capacity_spans: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ashgate_collector");
        let grpc = GrpcMetrics::register(&mut registry);
        let http = HttpMetrics::register(&mut registry);
        let metrics = Self {
            registry: Registry::default(),
            grpc,
            http,
            accepted_exports: Counter::default(),
            accepted_spans: Counter::default(),
            rejected_spans: Counter::default(),
            stored_spans: Counter::default(),
            duplicate_spans: Counter::default(),
            commits: Counter::default(),
            refused_exports: Family::default(),
            refused_spans: Family::default(),
            auth_cache_hits: Counter::default(),
            auth_cache_misses: Counter::default(),
            auth_cache_negative_hits: Counter::default(),
            queue_depth_spans: Gauge::default(),
            queue_capacity_spans: Gauge::default(),
        };
        let counters: [(&str, &str, &Counter); 9] = [
            ("accepted_exports", "Exports answered OK", &metrics.accepted_exports),
            ("accepted_spans", "Spans acknowledged after commit", &metrics.accepted_spans),
            ("rejected_spans", "Invalid spans reported in partial_success", &metrics.rejected_spans),
            ("stored_spans", "Span rows inserted", &metrics.stored_spans),
            ("duplicate_spans", "Spans already stored (retried exports)", &metrics.duplicate_spans),
            ("commits", "Writer transactions committed", &metrics.commits),
            ("auth_cache_hits", "Credential checks answered by the cache", &metrics.auth_cache_hits),
            ("auth_cache_misses", "Credential checks that asked identity-svc", &metrics.auth_cache_misses),
            (
                "auth_cache_negative_hits",
                "Rejections answered by the cache",
                &metrics.auth_cache_negative_hits,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        // Every reason is listed from the start, at zero.
        for reason in REASONS {
            let _ = metrics.refused_exports.get_or_create(&Reason { reason });
            let _ = metrics.refused_spans.get_or_create(&Reason { reason });
        }
        registry.register("refused_exports", "Exports refused, by reason", metrics.refused_exports.clone());
        registry.register("refused_spans", "Decoded spans refused, by reason", metrics.refused_spans.clone());
        registry.register(
            "queue_depth_spans",
            "Spans accepted but not yet committed",
            metrics.queue_depth_spans.clone(),
        );
        registry.register("queue_capacity_spans", "Queue capacity", metrics.queue_capacity_spans.clone());
        Self { registry, ..metrics }
    }
}

impl Metrics {
    /// An export answered OK with `spans` committed and `rejected` invalid spans.
    pub fn record_accepted(&self, spans: u64, rejected: u64) {
        self.accepted_exports.inc();
        self.accepted_spans.inc_by(spans);
        self.rejected_spans.inc_by(rejected);
    }

    /// An export refused with `error`; `spans` when it was decoded far enough to know.
    pub fn record_refused(&self, error: &Error, spans: Option<u64>) {
        let reason = error.reason();
        let Some(reason) = REASONS.iter().copied().find(|r| *r == reason) else { return };
        self.refused_exports.get_or_create(&Reason { reason }).inc();
        if let Some(spans) = spans {
            self.refused_spans.get_or_create(&Reason { reason }).inc_by(spans);
        }
    }

    /// A committed writer batch.
    pub fn record_commit(&self, spans: u64, inserted: u64) {
        self.commits.inc();
        self.stored_spans.inc_by(inserted);
        self.duplicate_spans.inc_by(spans.saturating_sub(inserted));
    }

    /// Spans acknowledged so far.
    pub fn accepted_spans(&self) -> u64 {
        self.accepted_spans.get()
    }

    /// The OpenMetrics text, after the scrape-time values are read.
    pub fn render(&self, queue_depth: u64, queue_capacity: u32, auth: CacheStats) -> String {
        self.queue_depth_spans.set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        self.queue_capacity_spans.set(i64::from(queue_capacity));
        // The verifier's cache keeps its own monotonic counts; these counters mirror them.
        self.auth_cache_hits.inner().store(auth.hits, Relaxed);
        self.auth_cache_misses.inner().store(auth.misses, Relaxed);
        self.auth_cache_negative_hits.inner().store(auth.negative_hits, Relaxed);
        metrics::render(&self.registry)
    }
}
