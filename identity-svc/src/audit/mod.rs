//! The audit trail: every security event, recorded in the database in the same transaction as
//! the change it records (store methods take the event), or on its own when nothing changes (a
//! failed sign-in, a refusal). Refusals anyone can repeat at will are aggregated: one row per
//! (type, subject, client address, detail, minute) whose count grows, so a flood costs one row a
//! minute per key instead of one per request. Never in an event: a password, a token, a key or a
//! link.

mod event;

use std::net::IpAddr;
use std::time::Duration;

pub use event::{Actor, AuditEvent, AuditQuery, EventType, Method, Outcome, StoredEvent, Subject};

use crate::error::{Error, Result};
use crate::identity::{Identity, now_ms};
use crate::limits::{Attempt, Bucket, Guard};
use crate::principal::{Principal, Role};
use crate::user::page_limit;

/// How long refusals are aggregated together.
pub const AGGREGATION_WINDOW_MS: i64 = 60_000;
/// The text of a bad page cursor.
pub const INVALID_CURSOR: &str = "Invalid cursor";

impl Identity {
    /// Writes an event that goes with no change (aggregated when `aggregate`). A database that
    /// fails here is logged and does not turn the answer into an error.
    pub(crate) async fn audit(&self, event: AuditEvent, aggregate: bool) {
        let now = now_ms();
        let result = if aggregate {
            self.store.record_aggregated_event(&event, now).await
        } else {
            self.store.record_event(&event, now).await
        };
        if let Err(e) = result {
            tracing::error!(error = %e, event = event.event_type.as_str(), "could not record an audit event");
        }
    }

    /// The per-address rate limit of `bucket`, a refusal recorded (aggregated) with `route`.
    pub(crate) async fn check_rate_audited(
        &self,
        bucket: Bucket,
        addr: Option<IpAddr>,
        route: &'static str,
    ) -> Result<()> {
        let checked = self.limits.check_rate(bucket, addr).await;
        if let Err(Error::TooMany(_)) = &checked {
            let event = AuditEvent::new(EventType::RateLimited)
                .outcome(Outcome::Refused)
                .from_addr(addr)
                .with("route", route);
            self.audit(event, true).await;
        }
        checked
    }

    /// Reserves a sign-in attempt at `key` (see [`crate::limits`]); a lockout is recorded
    /// (aggregated) under `name`, what was typed.
    pub(crate) async fn reserve_audited(
        &self,
        method: Method,
        key: &str,
        name: &str,
        addr: Option<IpAddr>,
    ) -> Result<Attempt> {
        let reserved = self.limits.reserve(Guard::SignIn, key, addr).await;
        if let Err(Error::TooMany(_)) = &reserved {
            let event = sign_in_refusal(EventType::SignInLockedOut, Outcome::Refused, method, name, addr);
            self.audit(event, true).await;
        }
        reserved
    }

    /// Records (aggregated) a sign-in refused for its credentials, under `name`, what was typed.
    pub(crate) async fn sign_in_failed(&self, method: Method, name: &str, addr: Option<IpAddr>) {
        self.audit(sign_in_refusal(EventType::SignInFailed, Outcome::Failure, method, name, addr), true)
            .await;
    }

    /// Records (aggregated) that `PHOENIX_ADMIN_SECRET` authenticated a call, `via` the public
    /// API or a verifier.
    pub(crate) async fn admin_secret_used(&self, addr: Option<IpAddr>, via: &'static str) {
        let event = AuditEvent::new(EventType::AdminSecretUsed)
            .actor(Actor::AdminSecret)
            .from_addr(addr)
            .with("via", via);
        self.audit(event, true).await;
    }

    /// Records (aggregated) a call to `rpc` refused for lack of the `credential` it needs
    /// (`internal` or `gateway`).
    pub(crate) async fn internal_credential_refused(
        &self,
        rpc: &'static str,
        credential: &'static str,
        addr: Option<IpAddr>,
    ) {
        let event = AuditEvent::new(EventType::InternalCredentialRefused)
            .outcome(Outcome::Refused)
            .on(Subject::Rpc(rpc))
            .from_addr(addr)
            .with("credential", credential);
        self.audit(event, true).await;
    }

    /// A page of events, newest first (admins and system keys); returns (events, next cursor
    /// or empty).
    #[tracing::instrument(skip_all, fields(caller = principal.user_id))]
    pub async fn list_audit_events(
        &self,
        principal: &Principal,
        mut query: AuditQuery,
    ) -> Result<(Vec<StoredEvent>, String)> {
        self.require_auth_enabled()?;
        if !(principal.is_admin() || (principal.role == Role::System && principal.is_api_key())) {
            return Err(Error::admin_only());
        }
        if let (Some(start), Some(end)) = (query.start_ms, query.end_ms)
            && start >= end
        {
            return Err(Error::Invalid("start_time must be before end_time".into()));
        }
        query.limit = page_limit(query.limit);
        let events = self.store.audit_events(&query).await?;
        let next = if events.len() == query.limit as usize {
            events.last().map(|e| e.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((events, next))
    }
}

fn sign_in_refusal(
    event_type: EventType,
    outcome: Outcome,
    method: Method,
    name: &str,
    addr: Option<IpAddr>,
) -> AuditEvent {
    AuditEvent::new(event_type)
        .outcome(outcome)
        .on(Subject::SignInName(name.to_owned()))
        .from_addr(addr)
        .with("method", method.as_str())
}

/// Parses a page cursor (the last id of the previous page; empty = first page).
pub fn parse_cursor(cursor: &str) -> Result<Option<i64>> {
    if cursor.is_empty() {
        return Ok(None);
    }
    cursor
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(Some)
        .ok_or_else(|| Error::Invalid(INVALID_CURSOR.into()))
}

/// Deletes events older than the retention every hour (and once at start).
pub(crate) async fn prune(identity: std::sync::Weak<Identity>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let Some(identity) = identity.upgrade() else { return };
        let retention = i64::try_from(identity.config.audit_retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(retention);
        match identity.store.prune_audit_events(cutoff).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "pruned audit events past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not prune audit events"),
        }
    }
}
