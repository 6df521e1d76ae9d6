//! Brute-force protection and per-address rate limits, shared by every replica through Redis
//! when configured, else kept in this process (bounded caches with expiry, so a flood of
//! distinct emails or addresses costs bounded memory). If Redis fails, each replica falls back
//! to its own records (logged once) rather than letting everything through or refusing everyone.
//!
//! Guessing passwords is limited per (subject, client address), where the subject is a sign-in
//! email (or any other name a guard is keyed by, such as a user whose current password is
//! being asked for):
//! - an attempt is *reserved* before the password is checked, atomically, and released only
//!   when it succeeds: guesses sent at once are counted as they arrive, not after argon2;
//! - `max_attempts` failures from one address lock that address out of that subject for the
//!   lockout (Phoenix: 5, 300 s), right password or not;
//! - Phoenix locks the email itself after 5 failures from anywhere, so anyone who knows an
//!   email could lock its owner out. Here failures of one subject from all addresses only make
//!   it *under attack* (`max_attempts_per_email`, 10 × `max_attempts`, within the window): an
//!   address then gets a single failure before its lock, so a distributed attacker gets about
//!   one guess per address per lockout, while an address with no failures, the owner's, is
//!   always let through to the password check.

mod memory;
mod redis_store;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ashgate_identity_client::address::client_key;
use sha2::{Digest, Sha256};

use crate::config::LoginProtection;
use crate::error::{Error, Result};

/// Phoenix's 429 text for a locked email.
pub const TOO_MANY_LOGIN_ATTEMPTS: &str = "Too many failed login attempts. Please try again later.";
/// The 429 text when a user's current password was given wrong too often.
pub const TOO_MANY_PASSWORD_ATTEMPTS: &str = "Too many failed password attempts. Please try again later.";
/// Phoenix's 429 text for a rate limit.
pub const TOO_MANY_REQUESTS: &str = "Too Many Requests";

/// A token bucket: `per_second` refill and `capacity` burst (Phoenix: 0.2/s, 12).
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    /// Name, part of the key.
    pub name: &'static str,
    /// Refill rate.
    pub per_second: f64,
    /// Burst.
    pub capacity: f64,
}

/// Phoenix's limit on `/auth/*` requests per client address.
pub const AUTH_BUCKET: Bucket = Bucket { name: "auth", per_second: 0.2, capacity: 12.0 };

/// What a guard protects; each has its own records and refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Sign-in by email (or another sign-in name), per client address.
    SignIn,
    /// The current password asked by a password change, per user (any address).
    CurrentPassword,
}

impl Guard {
    fn prefix(self) -> &'static str {
        match self {
            Guard::SignIn => "bf",
            Guard::CurrentPassword => "pw",
        }
    }

    fn refusal(self) -> Error {
        Error::TooMany(match self {
            Guard::SignIn => TOO_MANY_LOGIN_ATTEMPTS,
            Guard::CurrentPassword => TOO_MANY_PASSWORD_ATTEMPTS,
        })
    }
}

/// The thresholds of one reservation.
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    /// Failures from one address before its lock.
    per_address: u64,
    /// Failures of the subject from everywhere before it is under attack (0 = never).
    under_attack: u64,
    window: Duration,
    lockout: Duration,
}

/// Where one reservation's records are, to release it after a success.
#[derive(Debug, Clone)]
struct Reserved {
    /// The hashed subject key.
    subject: String,
    /// The subject's generation the records were written under (a reset starts a new one).
    generation: u64,
    addr: String,
    counted_subject: bool,
    in_redis: bool,
}

/// A reserved attempt: counted as a failure until [`Attempt::succeeded`] releases it.
#[must_use = "an attempt counts as a failure unless it is released on success"]
pub struct Attempt {
    limits: Limits,
    reserved: Option<Reserved>,
}

impl Attempt {
    /// The password was right: the address's record for this subject is cleared and the
    /// reservation no longer counts against the subject (Phoenix clears the key on success).
    pub async fn succeeded(mut self) {
        if let Some(reserved) = self.reserved.take() {
            self.limits.release(reserved).await;
        }
    }
}

/// The limits of one replica.
#[derive(Clone)]
pub struct Limits {
    protection: LoginProtection,
    rate_limit_enabled: bool,
    redis: Option<redis::aio::ConnectionManager>,
    memory: Arc<memory::Memory>,
    redis_failing: Arc<AtomicBool>,
    namespace: String,
}

impl Limits {
    /// Limits kept in Redis at `redis_url` if given, else in memory.
    pub fn new(
        protection: LoginProtection,
        rate_limit_enabled: bool,
        redis_url: Option<&str>,
        namespace: &str,
    ) -> Result<Self> {
        let redis = match redis_url {
            None => None,
            Some(url) => {
                let client = redis::Client::open(url)
                    .map_err(|e| Error::Invalid(format!("ASHGATE_REDIS_URL: {e}")))?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(500)))
                    .set_response_timeout(Some(Duration::from_millis(500)))
                    .set_number_of_retries(0);
                Some(
                    redis::aio::ConnectionManager::new_lazy_with_config(client, config)
                        .map_err(Error::internal)?,
                )
            }
        };
        Ok(Self {
            protection,
            rate_limit_enabled,
            redis,
            memory: Arc::new(memory::Memory::new(memory::DEFAULT_CAPACITY)),
            redis_failing: Arc::new(AtomicBool::new(false)),
            namespace: namespace.to_owned(),
        })
    }

    /// Reserves one attempt at guessing `subject`'s password from `addr`, before the password
    /// is checked; refused (429) while that address is locked out of the subject.
    pub async fn reserve(&self, guard: Guard, subject: &str, addr: Option<IpAddr>) -> Result<Attempt> {
        if !self.protection.enabled {
            return Ok(Attempt { limits: self.clone(), reserved: None });
        }
        let thresholds = Thresholds {
            per_address: self.protection.max_attempts,
            under_attack: match guard {
                Guard::SignIn => self.protection.max_attempts_per_email,
                Guard::CurrentPassword => 0,
            },
            window: self.protection.window,
            lockout: self.protection.lockout,
        };
        let subject = self.hashed(guard, subject);
        let addr = match (guard, addr) {
            (Guard::SignIn, Some(addr)) => client_key(addr),
            (Guard::SignIn, None) => "unknown".to_owned(),
            // Per user, from anywhere: a stolen session is not tied to one address.
            (Guard::CurrentPassword, _) => "any".to_owned(),
        };
        let counted_subject = thresholds.under_attack > 0;
        let outcome = match self.redis_reserve(&subject, &addr, thresholds).await {
            Some(outcome) => outcome.map(|generation| (generation, true)),
            None => self.memory.reserve(&subject, &addr, thresholds).map(|generation| (generation, false)),
        };
        match outcome {
            Some((generation, in_redis)) => Ok(Attempt {
                limits: self.clone(),
                reserved: Some(Reserved { subject, generation, addr, counted_subject, in_redis }),
            }),
            None => Err(guard.refusal()),
        }
    }

    /// Clears every record of `subject` (its password was just set by a reset): a new
    /// generation starts, and the old records expire unread.
    pub async fn clear(&self, guard: Guard, subject: &str) {
        let subject = self.hashed(guard, subject);
        if let Some(mut redis) = self.redis.clone() {
            let keep = self.protection.window + self.protection.lockout;
            let result = redis_store::clear(&mut redis, &subject, keep).await;
            self.note_redis(result);
        }
        self.memory.clear(&subject);
    }

    /// Records held in this process (for the benchmark of a flood of distinct keys).
    pub fn records_in_memory(&self) -> u64 {
        self.memory.entry_count()
    }

    async fn release(&self, reserved: Reserved) {
        if reserved.in_redis
            && let Some(mut redis) = self.redis.clone()
            && self.note_redis(redis_store::release(&mut redis, &reserved).await).is_some()
        {
            return;
        }
        self.memory.release(&reserved);
    }

    /// Takes one token from `bucket` for `addr`; TooMany when empty.
    pub async fn check_rate(&self, bucket: Bucket, addr: Option<IpAddr>) -> Result<()> {
        let Some(addr) = addr.filter(|_| self.rate_limit_enabled) else { return Ok(()) };
        let key = format!("{}:rl:{}:{}", self.namespace, bucket.name, client_key(addr));
        let interval = Duration::from_secs_f64(1.0 / bucket.per_second);
        let allowed = match self.redis_take(&key, bucket, interval).await {
            Some(allowed) => allowed,
            None => self.memory.take(key, bucket.capacity, interval),
        };
        if allowed { Ok(()) } else { Err(Error::TooMany(TOO_MANY_REQUESTS)) }
    }

    async fn redis_reserve(&self, subject: &str, addr: &str, thresholds: Thresholds) -> Option<Option<u64>> {
        let mut redis = self.redis.clone()?;
        self.note_redis(redis_store::reserve(&mut redis, subject, addr, thresholds).await)
    }

    async fn redis_take(&self, key: &str, bucket: Bucket, interval: Duration) -> Option<bool> {
        let mut redis = self.redis.clone()?;
        self.note_redis(redis_store::take(&mut redis, key, bucket.capacity, interval).await)
    }

    /// The key prefix of a subject; hashed so Redis never holds an email address.
    fn hashed(&self, guard: Guard, subject: &str) -> String {
        let digest = Sha256::digest(subject.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{}:{}:{hex}", self.namespace, guard.prefix())
    }

    /// Logs the first failure of a streak and the recovery; `None` means "use memory".
    fn note_redis<T>(&self, result: redis::RedisResult<T>) -> Option<T> {
        match result {
            Ok(value) => {
                if self.redis_failing.swap(false, Ordering::AcqRel) {
                    tracing::info!("Redis reachable again: login limits shared across replicas");
                }
                Some(value)
            }
            Err(e) => {
                if !self.redis_failing.swap(true, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "Redis unreachable: login limits fall back to this replica");
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protection() -> LoginProtection {
        LoginProtection {
            enabled: true,
            max_attempts: 3,
            max_attempts_per_email: 6,
            lockout: Duration::from_secs(300),
            window: Duration::from_secs(900),
        }
    }

    fn addr(last: u8) -> Option<IpAddr> {
        Some([10, 0, 0, last].into())
    }

    #[tokio::test]
    async fn locks_the_address_not_the_owner() {
        let limits = Limits::new(protection(), true, None, "t").unwrap();
        for _ in 0..3 {
            let _failed = limits.reserve(Guard::SignIn, "x@y", addr(1)).await.unwrap();
        }
        let refused = limits.reserve(Guard::SignIn, "x@y", addr(1)).await.err().unwrap();
        assert_eq!(refused.to_string(), TOO_MANY_LOGIN_ATTEMPTS);
        // Another address is not locked out by the first one's failures.
        let _failed = limits.reserve(Guard::SignIn, "x@y", addr(2)).await.unwrap();
        let _failed = limits.reserve(Guard::SignIn, "x@y", addr(2)).await.unwrap();
        let _failed = limits.reserve(Guard::SignIn, "x@y", addr(3)).await.unwrap();
        // Six failures: under attack. A fresh address still gets its check...
        limits.reserve(Guard::SignIn, "x@y", addr(4)).await.unwrap().succeeded().await;
        // ...but one that fails is refused after that single failure.
        let _failed = limits.reserve(Guard::SignIn, "x@y", addr(5)).await.unwrap();
        assert!(limits.reserve(Guard::SignIn, "x@y", addr(5)).await.is_err());
        limits.reserve(Guard::SignIn, "other@y", addr(1)).await.unwrap().succeeded().await;
    }

    #[tokio::test]
    async fn success_releases_and_clear_starts_over() {
        let limits = Limits::new(protection(), true, None, "t").unwrap();
        for _ in 0..10 {
            limits.reserve(Guard::SignIn, "x@y", addr(1)).await.unwrap().succeeded().await;
        }
        for _ in 0..3 {
            let _failed = limits.reserve(Guard::SignIn, "x@y", addr(1)).await.unwrap();
        }
        assert!(limits.reserve(Guard::SignIn, "x@y", addr(1)).await.is_err());
        limits.clear(Guard::SignIn, "x@y").await;
        limits.reserve(Guard::SignIn, "x@y", addr(1)).await.unwrap().succeeded().await;
        // Guards keep separate records.
        for _ in 0..3 {
            let _failed = limits.reserve(Guard::CurrentPassword, "7", addr(1)).await.unwrap();
        }
        let refused = limits.reserve(Guard::CurrentPassword, "7", addr(9)).await.err().unwrap();
        assert_eq!(refused.to_string(), TOO_MANY_PASSWORD_ATTEMPTS);
        limits.reserve(Guard::SignIn, "7", addr(1)).await.unwrap().succeeded().await;
    }

    #[tokio::test]
    async fn bucket_allows_a_burst_then_refuses() {
        let limits = Limits::new(protection(), true, None, "t").unwrap();
        for _ in 0..12 {
            limits.check_rate(AUTH_BUCKET, addr(9)).await.unwrap();
        }
        assert_eq!(limits.check_rate(AUTH_BUCKET, addr(9)).await.unwrap_err().to_string(), TOO_MANY_REQUESTS);
        limits.check_rate(AUTH_BUCKET, addr(8)).await.unwrap();
    }
}
