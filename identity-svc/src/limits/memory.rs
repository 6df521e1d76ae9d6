//! The limits' records in this process: bounded caches whose entries expire on their own (a
//! lock when it ends, a count when its window has passed, a bucket when it is full again), so
//! memory stays bounded however many distinct emails or addresses arrive. Past the capacity the
//! least useful entries are evicted (moka's TinyLFU), which can forget a lock early under such a
//! flood; Redis, when configured, has no such bound.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

use super::{Reserved, Thresholds};

/// Entries kept at most per kind of record.
pub const DEFAULT_CAPACITY: u64 = 200_000;

/// A record that knows when it stops mattering.
trait Expiring {
    fn expires_at(&self) -> Instant;
}

struct UntilExpiry;

impl<K, V: Expiring> Expiry<K, V> for UntilExpiry {
    fn expire_after_create(&self, _key: &K, value: &V, created_at: Instant) -> Option<Duration> {
        Some(value.expires_at().saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &V,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.expires_at().saturating_duration_since(updated_at))
    }
}

/// Failures of one subject from everywhere, and the generation its address records live in.
#[derive(Clone, Copy)]
struct Subject {
    generation: u64,
    failures: u64,
    failures_until: Instant,
    expires_at: Instant,
}

impl Expiring for Subject {
    fn expires_at(&self) -> Instant {
        self.expires_at
    }
}

/// Failures of one subject from one address.
#[derive(Clone, Copy)]
struct Pair {
    failures: u64,
    locked_until: Option<Instant>,
    expires_at: Instant,
}

impl Expiring for Pair {
    fn expires_at(&self) -> Instant {
        self.expires_at
    }
}

/// A rate-limit bucket: its theoretical arrival time (GCRA).
#[derive(Clone, Copy)]
struct Tat(Instant);

impl Expiring for Tat {
    fn expires_at(&self) -> Instant {
        self.0
    }
}

/// Every record of one replica.
pub struct Memory {
    /// Makes each reserve/release/take one atomic step over the caches.
    gate: Mutex<()>,
    subjects: Cache<String, Subject>,
    pairs: Cache<String, Pair>,
    buckets: Cache<String, Tat>,
    /// Generations are never reused, so a subject created again never sees old records.
    next_generation: AtomicU64,
}

impl Memory {
    /// Caches of at most `capacity` entries each.
    pub fn new(capacity: u64) -> Self {
        fn cache<V: Expiring + Clone + Send + Sync + 'static>(capacity: u64) -> Cache<String, V> {
            Cache::builder().max_capacity(capacity).expire_after(UntilExpiry).build()
        }
        Self {
            gate: Mutex::new(()),
            subjects: cache(capacity),
            pairs: cache(capacity),
            buckets: cache(capacity),
            next_generation: AtomicU64::new(1),
        }
    }

    fn fresh_subject(&self, now: Instant) -> Subject {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        Subject { generation, failures: 0, failures_until: now, expires_at: now }
    }

    /// See `Limits::reserve`: the subject's generation, or `None` when refused.
    pub fn reserve(&self, subject: &str, addr: &str, t: Thresholds) -> Option<u64> {
        let _gate = self.gate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let mut record = self.subjects.get(subject).unwrap_or_else(|| self.fresh_subject(now));
        if record.failures_until <= now {
            record.failures = 0;
        }
        let pair_key = format!("{subject}:{}:{addr}", record.generation);
        let mut pair = self.pairs.get(&pair_key).filter(|p| p.expires_at > now).unwrap_or(Pair {
            failures: 0,
            locked_until: None,
            expires_at: now,
        });
        if pair.locked_until.is_some_and(|t| t > now) {
            return None;
        }
        if pair.locked_until.is_some() {
            // The first failure after a lock counts from one again (Phoenix).
            pair = Pair { failures: 0, locked_until: None, expires_at: now };
        }
        let under_attack = t.under_attack > 0 && record.failures >= t.under_attack;
        let allowed = if under_attack { 1 } else { t.per_address };
        let lock = |pair: &mut Pair| {
            *pair = Pair { failures: 0, locked_until: Some(now + t.lockout), expires_at: now + t.lockout };
        };
        if pair.failures >= allowed {
            lock(&mut pair);
            self.pairs.insert(pair_key, pair);
            return None;
        }
        pair.failures += 1;
        pair.expires_at = now + t.window;
        if pair.failures >= allowed {
            lock(&mut pair);
        }
        self.pairs.insert(pair_key, pair);
        if t.under_attack > 0 {
            record.failures += 1;
            record.failures_until = now + t.window;
        }
        record.expires_at = now + t.window + t.lockout;
        self.subjects.insert(subject.to_owned(), record);
        Some(record.generation)
    }

    /// A reservation that succeeded: its address record goes, its count is given back.
    pub fn release(&self, reserved: &Reserved) {
        let _gate = self.gate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.pairs.invalidate(&format!("{}:{}:{}", reserved.subject, reserved.generation, reserved.addr));
        if reserved.counted_subject
            && let Some(mut record) = self.subjects.get(&reserved.subject)
            && record.generation == reserved.generation
        {
            record.failures = record.failures.saturating_sub(1);
            self.subjects.insert(reserved.subject.clone(), record);
        }
    }

    /// Forgets every record of `subject`.
    pub fn clear(&self, subject: &str) {
        let _gate = self.gate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.subjects.invalidate(subject);
    }

    /// Takes a token from the bucket `key` (GCRA: each request pushes the bucket's theoretical
    /// arrival time forward by `interval`; more than `capacity` intervals ahead is refused).
    pub fn take(&self, key: String, capacity: f64, interval: Duration) -> bool {
        let _gate = self.gate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let tat = self.buckets.get(&key).map(|t| t.0).filter(|t| *t > now).unwrap_or(now);
        let next = tat + interval;
        let allowed = next.duration_since(now).as_secs_f64() <= capacity * interval.as_secs_f64();
        if allowed {
            self.buckets.insert(key, Tat(next));
        }
        allowed
    }

    /// Entries held now (for the bench of a flood of distinct keys).
    pub fn entry_count(&self) -> u64 {
        self.subjects.run_pending_tasks();
        self.pairs.run_pending_tasks();
        self.buckets.run_pending_tasks();
        self.subjects.entry_count() + self.pairs.entry_count() + self.buckets.entry_count()
    }
}
