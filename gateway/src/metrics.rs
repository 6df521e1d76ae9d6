//! Prometheus text metrics, kept with plain atomics (no exporter dependency).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use ashgate_identity_client::CacheStats;

/// Status classes counted separately.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counters of one gateway.
#[derive(Debug, Default)]
pub struct Metrics {
    responses: [AtomicU64; 5],
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
    traces_forwarded: AtomicU64,
    traces_failed: AtomicU64,
    csrf_refused: AtomicU64,
}

impl Metrics {
    /// Counts one response by status class.
    pub fn record_response(&self, status: u16) {
        let class = usize::from(status / 100).saturating_sub(1);
        if let Some(counter) = self.responses.get(class) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a sign-in attempt.
    pub fn record_login(&self, ok: bool) {
        let counter = if ok { &self.logins_ok } else { &self.logins_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a forwarded export (`ok` = the collector answered at all).
    pub fn record_forward(&self, ok: bool) {
        let counter = if ok { &self.traces_forwarded } else { &self.traces_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused by the CSRF check.
    pub fn record_csrf_refusal(&self) {
        self.csrf_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, cache: CacheStats) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str("# HELP ashgate_gateway_responses_total HTTP responses by status class.\n");
        out.push_str("# TYPE ashgate_gateway_responses_total counter\n");
        for (class, counter) in CLASSES.iter().zip(&self.responses) {
            let _ = writeln!(out, "ashgate_gateway_responses_total{{class=\"{class}\"}} {}", load(counter));
        }
        let counters = [
            ("ashgate_gateway_logins_total{result=\"ok\"}", "Sign-ins by result.", load(&self.logins_ok)),
            ("ashgate_gateway_logins_total{result=\"failed\"}", "", load(&self.logins_failed)),
            (
                "ashgate_gateway_traces_forwarded_total{result=\"ok\"}",
                "OTLP exports forwarded to collector-svc.",
                load(&self.traces_forwarded),
            ),
            ("ashgate_gateway_traces_forwarded_total{result=\"unreachable\"}", "", load(&self.traces_failed)),
            (
                "ashgate_gateway_csrf_refused_total",
                "Requests refused by the origin check.",
                load(&self.csrf_refused),
            ),
            (
                "ashgate_gateway_verify_cache_hits_total",
                "Credential verifications answered from the cache.",
                cache.hits,
            ),
            (
                "ashgate_gateway_verify_cache_misses_total",
                "Credential verifications that asked identity-svc.",
                cache.misses,
            ),
            (
                "ashgate_gateway_verify_cache_negative_hits_total",
                "Rejections answered from the negative cache.",
                cache.negative_hits,
            ),
        ];
        for (name, help, value) in counters {
            if !help.is_empty() {
                let family = name.split('{').next().unwrap_or(name);
                let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} counter");
            }
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}
