//! Counters for `/metrics`, rendered by hand in the Prometheus text format (a handful of atomics
//! needs no exporter crate).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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

/// Process-wide ingest counters.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted_exports: AtomicU64,
    accepted_spans: AtomicU64,
    rejected_spans: AtomicU64,
    stored_spans: AtomicU64,
    duplicate_spans: AtomicU64,
    commits: AtomicU64,
    refused_exports: [AtomicU64; REASONS.len()],
    refused_spans: [AtomicU64; REASONS.len()],
}

impl Metrics {
    /// An export answered OK with `spans` committed and `rejected` invalid spans.
    pub fn record_accepted(&self, spans: u64, rejected: u64) {
        self.accepted_exports.fetch_add(1, Relaxed);
        self.accepted_spans.fetch_add(spans, Relaxed);
        self.rejected_spans.fetch_add(rejected, Relaxed);
    }

    /// An export refused with `error`; `spans` when it was decoded far enough to know.
    pub fn record_refused(&self, error: &Error, spans: Option<u64>) {
        let reason = error.reason();
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            if let Some(counter) = self.refused_exports.get(i) {
                counter.fetch_add(1, Relaxed);
            }
            if let (Some(counter), Some(spans)) = (self.refused_spans.get(i), spans) {
                counter.fetch_add(spans, Relaxed);
            }
        }
    }

    /// A committed writer batch.
    pub fn record_commit(&self, spans: u64, inserted: u64) {
        self.commits.fetch_add(1, Relaxed);
        self.stored_spans.fetch_add(inserted, Relaxed);
        self.duplicate_spans.fetch_add(spans.saturating_sub(inserted), Relaxed);
    }

    /// Spans acknowledged so far.
    pub fn accepted_spans(&self) -> u64 {
        self.accepted_spans.load(Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self, queue_depth: u64, queue_capacity: u32, auth: CacheStats) -> String {
        let mut out = String::with_capacity(4096);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");
        };
        counter(
            "ashgate_collector_accepted_exports_total",
            "Exports answered OK.",
            self.accepted_exports.load(Relaxed),
        );
        counter(
            "ashgate_collector_accepted_spans_total",
            "Spans acknowledged after commit.",
            self.accepted_spans.load(Relaxed),
        );
        counter(
            "ashgate_collector_rejected_spans_total",
            "Invalid spans reported in partial_success.",
            self.rejected_spans.load(Relaxed),
        );
        counter(
            "ashgate_collector_stored_spans_total",
            "Span rows inserted.",
            self.stored_spans.load(Relaxed),
        );
        counter(
            "ashgate_collector_duplicate_spans_total",
            "Spans already stored (retried exports).",
            self.duplicate_spans.load(Relaxed),
        );
        counter(
            "ashgate_collector_commits_total",
            "Writer transactions committed.",
            self.commits.load(Relaxed),
        );
        counter(
            "ashgate_collector_auth_cache_hits_total",
            "Credential checks answered by the cache.",
            auth.hits,
        );
        counter(
            "ashgate_collector_auth_cache_misses_total",
            "Credential checks that asked identity-svc.",
            auth.misses,
        );
        counter(
            "ashgate_collector_auth_cache_negative_hits_total",
            "Rejections answered by the cache.",
            auth.negative_hits,
        );
        for (name, help, values) in [
            ("ashgate_collector_refused_exports_total", "Exports refused, by reason.", &self.refused_exports),
            (
                "ashgate_collector_refused_spans_total",
                "Decoded spans refused, by reason.",
                &self.refused_spans,
            ),
        ] {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
            for (reason, value) in REASONS.iter().zip(values.iter()) {
                let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", value.load(Relaxed));
            }
        }
        let _ = write!(
            out,
            "# HELP ashgate_collector_queue_depth_spans Spans accepted but not yet committed.\n\
             # TYPE ashgate_collector_queue_depth_spans gauge\nashgate_collector_queue_depth_spans {queue_depth}\n\
             # HELP ashgate_collector_queue_capacity_spans Queue capacity.\n\
             # TYPE ashgate_collector_queue_capacity_spans gauge\nashgate_collector_queue_capacity_spans {queue_capacity}\n"
        );
        out
    }
}
