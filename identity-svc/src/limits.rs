//! Brute-force lockout and per-address rate limits, shared by every replica through Redis when
//! configured, else kept in this process. If Redis fails, each replica falls back to its own
//! counters (logged once) rather than letting everything through or refusing everyone.
//!
//! Phoenix locks an email after 5 failures from anywhere, so anyone who knows the admin's email
//! can lock the admin out. ashgate counts failures per (email, client address), and only a
//! much larger number of failures of one email across all addresses locks the email everywhere.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::config::LoginProtection;
use crate::error::{Error, Result};

/// Phoenix's 429 text for a locked email.
pub const TOO_MANY_LOGIN_ATTEMPTS: &str = "Too many failed login attempts. Please try again later.";
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

/// The limits of one replica.
#[derive(Clone)]
pub struct Limits {
    protection: LoginProtection,
    rate_limit_enabled: bool,
    redis: Option<redis::aio::ConnectionManager>,
    memory: Arc<Mutex<Memory>>,
    redis_failing: Arc<AtomicBool>,
    namespace: String,
}

#[derive(Default)]
struct Memory {
    failures: HashMap<String, Failures>,
    buckets: HashMap<String, Instant>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u64,
    last: Instant,
    locked_until: Option<Instant>,
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
            memory: Arc::default(),
            redis_failing: Arc::new(AtomicBool::new(false)),
            namespace: namespace.to_owned(),
        })
    }

    /// Refuses a login attempt while (email, address) or the email as a whole is locked.
    pub async fn check_login(&self, email: &str, addr: Option<IpAddr>) -> Result<()> {
        if !self.protection.enabled {
            return Ok(());
        }
        let keys = self.failure_keys(email, addr);
        let locked = match self.redis_locked(&keys).await {
            Some(locked) => locked,
            None => {
                let now = Instant::now();
                let memory = self.memory.lock().await;
                keys.iter().any(|(key, _)| {
                    memory.failures.get(key).and_then(|f| f.locked_until).is_some_and(|t| t > now)
                })
            }
        };
        if locked { Err(Error::TooMany(TOO_MANY_LOGIN_ATTEMPTS)) } else { Ok(()) }
    }

    /// Counts a failed login; locks when a threshold is reached.
    pub async fn record_login_failure(&self, email: &str, addr: Option<IpAddr>) {
        if !self.protection.enabled {
            return;
        }
        let keys = self.failure_keys(email, addr);
        if self.redis_record_failure(&keys).await {
            return;
        }
        let now = Instant::now();
        let mut memory = self.memory.lock().await;
        let window = self.protection.window;
        if memory.failures.len() > 100_000 {
            memory.failures.retain(|_, f| {
                now.duration_since(f.last) < window || f.locked_until.is_some_and(|t| t > now)
            });
        }
        for (key, max) in keys {
            let entry =
                memory.failures.entry(key).or_insert(Failures { count: 0, last: now, locked_until: None });
            let expired_lock = entry.locked_until.is_some_and(|t| t <= now);
            if expired_lock || now.duration_since(entry.last) >= window {
                // Phoenix: the first failure after a lock (or a quiet window) starts counting again.
                *entry = Failures { count: 0, last: now, locked_until: None };
            }
            entry.count += 1;
            entry.last = now;
            if entry.count >= max {
                entry.locked_until = Some(now + self.protection.lockout);
            }
        }
    }

    /// A successful login clears the (email, address) record.
    pub async fn record_login_success(&self, email: &str, addr: Option<IpAddr>) {
        if !self.protection.enabled {
            return;
        }
        let keys = self.failure_keys(email, addr);
        let Some((pair_key, _)) = keys.first() else { return };
        if let Some(mut redis) = self.redis.clone() {
            let result: redis::RedisResult<()> = redis::pipe()
                .del(format!("{pair_key}:n"))
                .del(format!("{pair_key}:lock"))
                .query_async(&mut redis)
                .await;
            if self.note_redis(result).is_some() {
                return;
            }
        }
        self.memory.lock().await.failures.remove(pair_key);
    }

    /// Clears every record of an email (its password was just reset).
    pub async fn clear_email(&self, email: &str) {
        let prefix = self.hashed(email);
        if let Some(mut redis) = self.redis.clone() {
            let result: redis::RedisResult<()> = redis::pipe()
                .del(format!("{prefix}:n"))
                .del(format!("{prefix}:lock"))
                .query_async(&mut redis)
                .await;
            self.note_redis(result);
        }
        self.memory.lock().await.failures.retain(|k, _| !k.starts_with(&prefix));
    }

    /// Takes one token from `bucket` for `addr`; TooMany when empty.
    pub async fn check_rate(&self, bucket: Bucket, addr: Option<IpAddr>) -> Result<()> {
        let Some(addr) = addr.filter(|_| self.rate_limit_enabled) else { return Ok(()) };
        let key = format!("{}:rl:{}:{addr}", self.namespace, bucket.name);
        let interval = Duration::from_secs_f64(1.0 / bucket.per_second);
        let allowed = match self.redis_take(&key, bucket, interval).await {
            Some(allowed) => allowed,
            None => {
                // GCRA: the bucket is a "theoretical arrival time" that each request pushes forward.
                let now = Instant::now();
                let mut memory = self.memory.lock().await;
                if memory.buckets.len() > 100_000 {
                    memory.buckets.retain(|_, tat| *tat > now);
                }
                let tat = memory.buckets.get(&key).copied().filter(|t| *t > now).unwrap_or(now);
                let next = tat + interval;
                let allowed =
                    next.duration_since(now).as_secs_f64() <= bucket.capacity * interval.as_secs_f64();
                if allowed {
                    memory.buckets.insert(key, next);
                }
                allowed
            }
        };
        if allowed { Ok(()) } else { Err(Error::TooMany(TOO_MANY_REQUESTS)) }
    }

    /// (key, threshold) pairs: the (email, address) pair, then the email alone.
    fn failure_keys(&self, email: &str, addr: Option<IpAddr>) -> [(String, u64); 2] {
        let email_key = self.hashed(email);
        let addr = addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        [
            (format!("{email_key}:{addr}"), self.protection.max_attempts),
            (format!("{email_key}:*"), self.protection.max_attempts_per_email),
        ]
    }

    async fn redis_locked(&self, keys: &[(String, u64); 2]) -> Option<bool> {
        let mut redis = self.redis.clone()?;
        let result: redis::RedisResult<(i64, i64)> = redis::pipe()
            .exists(format!("{}:lock", keys[0].0))
            .exists(format!("{}:lock", keys[1].0))
            .query_async(&mut redis)
            .await;
        self.note_redis(result).map(|(a, b)| a > 0 || b > 0)
    }

    async fn redis_record_failure(&self, keys: &[(String, u64); 2]) -> bool {
        let Some(mut redis) = self.redis.clone() else { return false };
        let window_ms = self.protection.window.as_millis() as u64;
        let lockout_ms = self.protection.lockout.as_millis() as u64;
        let result: redis::RedisResult<(i64, i64)> = redis::Script::new(RECORD_FAILURE)
            .key(format!("{}:n", keys[0].0))
            .key(format!("{}:lock", keys[0].0))
            .key(format!("{}:n", keys[1].0))
            .key(format!("{}:lock", keys[1].0))
            .arg(keys[0].1)
            .arg(keys[1].1)
            .arg(window_ms)
            .arg(lockout_ms)
            .invoke_async(&mut redis)
            .await;
        self.note_redis(result).is_some()
    }

    async fn redis_take(&self, key: &str, bucket: Bucket, interval: Duration) -> Option<bool> {
        let mut redis = self.redis.clone()?;
        let result: redis::RedisResult<i64> = redis::Script::new(TAKE_TOKEN)
            .key(key)
            .arg(interval.as_millis() as u64)
            .arg(bucket.capacity)
            .invoke_async(&mut redis)
            .await;
        self.note_redis(result).map(|allowed| allowed == 1)
    }

    /// The brute-force key prefix of an email; hashed so Redis never holds the address.
    fn hashed(&self, email: &str) -> String {
        let digest = Sha256::digest(email.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{}:bf:{hex}", self.namespace)
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

/// KEYS: pair count, pair lock, email count, email lock. ARGV: pair max, email max, window ms,
/// lockout ms. A lock that has expired has vanished, so the next failure counts from one.
const RECORD_FAILURE: &str = r"
for i = 0, 1 do
  local n = redis.call('INCR', KEYS[1 + 2 * i])
  redis.call('PEXPIRE', KEYS[1 + 2 * i], ARGV[3])
  if n >= tonumber(ARGV[1 + i]) then
    redis.call('SET', KEYS[2 + 2 * i], 1, 'PX', ARGV[4])
    redis.call('DEL', KEYS[1 + 2 * i])
  end
end
return {0, 0}
";

/// GCRA token bucket. KEYS: bucket. ARGV: emission interval ms, capacity. Returns 1 if allowed.
const TAKE_TOKEN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + interval
if nxt - now > capacity * interval then return 0 end
redis.call('SET', KEYS[1], nxt, 'PX', math.ceil(capacity * interval))
return 1
";

#[cfg(test)]
mod tests {
    use super::*;

    fn protection() -> LoginProtection {
        LoginProtection {
            enabled: true,
            max_attempts: 3,
            max_attempts_per_email: 5,
            lockout: Duration::from_secs(300),
            window: Duration::from_secs(900),
        }
    }

    #[tokio::test]
    async fn locks_the_pair_then_the_email() {
        let limits = Limits::new(protection(), true, None, "t").unwrap();
        let (a, b, c) = (Some([10, 0, 0, 1].into()), Some([10, 0, 0, 2].into()), Some([10, 0, 0, 3].into()));
        for _ in 0..3 {
            limits.check_login("x@y", a).await.unwrap();
            limits.record_login_failure("x@y", a).await;
        }
        assert_eq!(limits.check_login("x@y", a).await.unwrap_err().to_string(), TOO_MANY_LOGIN_ATTEMPTS);
        // Another address is not locked out by the first one's failures...
        limits.check_login("x@y", b).await.unwrap();
        limits.record_login_failure("x@y", b).await;
        limits.record_login_failure("x@y", b).await;
        // ...until the email as a whole has failed too often.
        assert!(limits.check_login("x@y", c).await.is_err());
        limits.check_login("other@y", a).await.unwrap();
    }

    #[tokio::test]
    async fn bucket_allows_a_burst_then_refuses() {
        let limits = Limits::new(protection(), true, None, "t").unwrap();
        let addr = Some([10, 0, 0, 9].into());
        for _ in 0..12 {
            limits.check_rate(AUTH_BUCKET, addr).await.unwrap();
        }
        assert_eq!(limits.check_rate(AUTH_BUCKET, addr).await.unwrap_err().to_string(), TOO_MANY_REQUESTS);
        limits.check_rate(AUTH_BUCKET, Some([10, 0, 0, 8].into())).await.unwrap();
    }
}
