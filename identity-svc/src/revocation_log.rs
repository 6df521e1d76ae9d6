//! The database as a second path for revocations between identity replicas. Redis carries them
//! in a millisecond, but only from a replica whose Redis link is up: one that lost it used to
//! revoke in its database and tell nobody else, so the other replicas (and the verifiers that
//! follow them) kept a deleted key for as long as they cached it. Every revocation is also
//! recorded in the `revocations` table, and every replica reads what is new there four times a
//! second, so a revocation reaches every replica within about a quarter second whatever Redis
//! does. Only where other replicas may exist (Redis configured, or PostgreSQL); the embedded
//! default is one process.

use std::sync::Weak;
use std::time::Duration;

use moka::sync::Cache;

use crate::identity::{Identity, now_ms};
use crate::revocation::Revocation;

/// How often each replica reads the table.
const POLL: Duration = Duration::from_millis(250);
/// How far back each read looks: ids are not committed in order, so a read covers the last
/// seconds again and skips what it delivered already.
const LOOK_BACK: Duration = Duration::from_secs(5);
/// How long rows are kept.
const KEEP: Duration = Duration::from_secs(600);

impl Identity {
    /// Whether other replicas may exist (and so the table is written and read).
    pub(crate) fn shares_revocations(&self) -> bool {
        self.config.redis_url.is_some() || self.store.backend() == crate::store::Backend::Postgres
    }

    /// Records `revocation` for the other replicas, off the caller's path.
    pub(crate) fn record_revocation(&self, revocation: Revocation) {
        if !self.shares_revocations() || revocation == Revocation::Flush {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.record_revocation(&revocation.encode(), now_ms()).await {
                tracing::error!(error = %e, "could not record a revocation for the other replicas");
            }
        });
    }
}

/// Reads new revocations for as long as the replica lives, delivering each once, and forgets
/// old rows now and then.
pub(crate) async fn follow(identity: Weak<Identity>) {
    let delivered: Cache<i64, ()> =
        Cache::builder().max_capacity(100_000).time_to_live(LOOK_BACK * 2).build();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut purged_at = 0;
    loop {
        tick.tick().await;
        let Some(identity) = identity.upgrade() else { return };
        let now = now_ms();
        let since = now.saturating_sub(i64::try_from(LOOK_BACK.as_millis()).unwrap_or(0));
        match identity.store.revocations_since(since).await {
            Ok(rows) => {
                for (id, event) in rows {
                    if delivered.contains_key(&id) {
                        continue;
                    }
                    delivered.insert(id, ());
                    if let Some(revocation) = Revocation::decode(&event) {
                        identity.cache.evict(revocation);
                        identity.revocations.deliver_recorded(revocation);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not read recorded revocations"),
        }
        if now - purged_at > 60_000 {
            purged_at = now;
            let before = now.saturating_sub(i64::try_from(KEEP.as_millis()).unwrap_or(0));
            if let Err(e) = identity.store.purge_revocations(before).await {
                tracing::debug!(error = %e, "could not purge recorded revocations");
            }
        }
    }
}
