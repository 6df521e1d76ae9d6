//! What the gateway's `/metrics` reports, kept by `prometheus-client`: every request by route,
//! method and status with a latency histogram per route, sign-ins, forwarded exports, CSRF
//! refusals and the credential cache.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use ashgate_identity_client::CacheStats;
use ashgate_identity_client::metrics::{self, HttpMetrics, Registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: &'static str,
}

/// The gateway's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Recorded by the router's middleware.
    pub http: Arc<HttpMetrics>,
    logins: Family<Outcome, Counter>,
    traces_forwarded: Family<Outcome, Counter>,
    csrf_refused: Counter,
    verify_cache_hits: Counter,
    verify_cache_misses: Counter,
    verify_cache_negative_hits: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ashgate_gateway");
        let http = HttpMetrics::register(&mut registry);
        let metrics = Self {
            registry: Registry::default(),
            http,
            logins: Family::default(),
            traces_forwarded: Family::default(),
            csrf_refused: Counter::default(),
            verify_cache_hits: Counter::default(),
            verify_cache_misses: Counter::default(),
            verify_cache_negative_hits: Counter::default(),
        };
        for result in ["ok", "failed"] {
            let _ = metrics.logins.get_or_create(&Outcome { result });
        }
        for result in ["ok", "unreachable"] {
            let _ = metrics.traces_forwarded.get_or_create(&Outcome { result });
        }
        registry.register("logins", "Sign-ins by result", metrics.logins.clone());
        registry.register(
            "traces_forwarded",
            "OTLP exports forwarded to collector-svc, by whether it answered",
            metrics.traces_forwarded.clone(),
        );
        registry.register(
            "csrf_refused",
            "Requests refused by the origin check",
            metrics.csrf_refused.clone(),
        );
        registry.register(
            "verify_cache_hits",
            "Credential verifications answered from the cache",
            metrics.verify_cache_hits.clone(),
        );
        registry.register(
            "verify_cache_misses",
            "Credential verifications that asked identity-svc",
            metrics.verify_cache_misses.clone(),
        );
        registry.register(
            "verify_cache_negative_hits",
            "Rejections answered from the negative cache",
            metrics.verify_cache_negative_hits.clone(),
        );
        Self { registry, ..metrics }
    }
}

impl Metrics {
    /// Counts a sign-in attempt.
    pub fn record_login(&self, ok: bool) {
        self.logins.get_or_create(&Outcome { result: if ok { "ok" } else { "failed" } }).inc();
    }

    /// Counts a forwarded export (`ok` = the collector answered at all).
    pub fn record_forward(&self, ok: bool) {
        self.traces_forwarded.get_or_create(&Outcome { result: if ok { "ok" } else { "unreachable" } }).inc();
    }

    /// Counts a request refused by the CSRF check.
    pub fn record_csrf_refusal(&self) {
        self.csrf_refused.inc();
    }

    /// The OpenMetrics text, after the cache's counts are read.
    pub fn render(&self, cache: CacheStats) -> String {
        // The verifier's cache keeps its own monotonic counts; these counters mirror them.
        self.verify_cache_hits.inner().store(cache.hits, Relaxed);
        self.verify_cache_misses.inner().store(cache.misses, Relaxed);
        self.verify_cache_negative_hits.inner().store(cache.negative_hits, Relaxed);
        metrics::render(&self.registry)
    }
}
