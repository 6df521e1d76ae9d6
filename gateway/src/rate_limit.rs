//! Per-address token buckets for the OAuth2 routes (docs/phoenix-compat.md §2.6:
//! `/oauth2/{idp}/login` at 0.2 requests per second with a burst of 6). Kept in this process: the
//! limit exists to stop one address from hammering the identity provider through us, which a
//! per-replica bucket does.
//! The `/auth/*` limits are identity-svc's (shared through Redis).

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ashgate_identity_client::address::client_key;
use moka::sync::Cache;

/// Most clients remembered; past it the least used are forgotten first (their buckets would
/// be full again soon anyway).
const MAX_TRACKED: u64 = 100_000;

/// One bucket per client (an IPv4 address or an IPv6 /64).
pub struct RateLimiter {
    per_second: f64,
    capacity: f64,
    /// Serialises take-a-token, so two requests cannot both take the last one.
    gate: Mutex<()>,
    /// Tokens left and when they were counted; an entry idle for as long as a bucket takes to
    /// fill again is dropped (it would be full).
    buckets: Cache<String, (f64, Instant)>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_second", &self.per_second)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl RateLimiter {
    /// `per_second` refill, `capacity` burst; every bucket starts full.
    pub fn new(per_second: f64, capacity: f64) -> Self {
        let full_after = Duration::from_secs_f64((capacity / per_second).max(1.0));
        let buckets = Cache::builder().max_capacity(MAX_TRACKED).time_to_idle(full_after).build();
        Self { per_second, capacity, gate: Mutex::new(()), buckets }
    }

    /// Takes one token for `addr`; false when its bucket is empty. Unknown addresses share one
    /// bucket (the unspecified address).
    pub fn allow(&self, addr: Option<IpAddr>) -> bool {
        let key = client_key(addr.unwrap_or(IpAddr::from([0, 0, 0, 0])));
        let now = Instant::now();
        let _gate = self.gate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = self.buckets.get(&key).unwrap_or((self.capacity, now));
        let refilled = (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(self.capacity);
        let allowed = refilled >= 1.0;
        self.buckets.insert(key, (if allowed { refilled - 1.0 } else { refilled }, now));
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_per_address() {
        let limiter = RateLimiter::new(0.2, 6.0);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        assert!((0..6).all(|_| limiter.allow(a)));
        assert!(!limiter.allow(a));
        assert!(limiter.allow(b), "another address has its own bucket");
        let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, last]));
        assert!((0..6).all(|i| limiter.allow(v6(i))));
        assert!(!limiter.allow(v6(99)), "one IPv6 client is its /64");
    }
}
