//! Per-address token buckets for the OAuth2 routes (Phoenix §6: `/oauth2/{idp}/login` at 0.2
//! requests per second with a burst of 6). Kept in this process: the limit exists to stop one
//! address from hammering the identity provider through us, which a per-replica bucket does.
//! The `/auth/*` limits are identity-svc's (shared through Redis).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Most addresses remembered before idle ones are forgotten.
const MAX_TRACKED: usize = 100_000;

/// One bucket per client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    capacity: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` refill, `capacity` burst; every bucket starts full.
    pub fn new(per_second: f64, capacity: f64) -> Self {
        Self { per_second, capacity, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `addr`; false when its bucket is empty. Unknown addresses share one
    /// bucket (the unspecified address).
    pub fn allow(&self, addr: Option<IpAddr>) -> bool {
        let addr = addr.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let now = Instant::now();
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= MAX_TRACKED {
            let full_after = self.capacity / self.per_second;
            buckets.retain(|_, (_, last)| now.duration_since(*last).as_secs_f64() < full_after);
        }
        let (tokens, last) = buckets.entry(addr).or_insert((self.capacity, now));
        let refilled =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.capacity);
        *last = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            true
        } else {
            *tokens = refilled;
            false
        }
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
    }
}
