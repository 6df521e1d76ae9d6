//! The `audit_events` table: events written inside the transactions of the changes they record
//! (or alone, aggregated per key and minute), listed newest first, pruned by age.

use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;

use super::Store;
use crate::audit::{AGGREGATION_WINDOW_MS, AuditEvent, AuditQuery, StoredEvent};
use crate::error::Result;

/// The insert; the actor's name is looked up in the same statement, as it is at that moment.
macro_rules! insert_sql {
    () => {
        "INSERT INTO audit_events (event_type, occurred_at, last_at, count, actor_type, actor_id, \
         actor, subject_type, subject_id, subject, user_id, client_addr, outcome, detail, bucket) \
         VALUES ($1, $2, $2, 1, $3, $4, CASE $3 WHEN 'user' THEN (SELECT username FROM users WHERE id = $4) \
         WHEN 'system_key' THEN (SELECT name FROM api_keys WHERE id = $4) ELSE $5 END, \
         $6, $7, $8, $9, $10, $11, $12, $13)"
    };
}

const INSERT: &str = insert_sql!();
/// A repeat of an aggregated event within its minute counts on the existing row.
const UPSERT: &str = concat!(
    insert_sql!(),
    " ON CONFLICT (bucket) DO UPDATE SET count = audit_events.count + 1, last_at = CASE WHEN \
     excluded.last_at > audit_events.last_at THEN excluded.last_at ELSE audit_events.last_at END"
);

const COLUMNS: &str = "id, event_type, occurred_at, last_at, count, actor_type, actor_id, actor, subject_type, \
    subject_id, subject, user_id, client_addr, outcome, detail";

fn insert_query(
    sql: &'static str,
    event: &AuditEvent,
    now_ms: i64,
    bucket: Option<String>,
) -> Query<'static, sqlx::Any, AnyArguments> {
    let (actor_type, actor_id) = event.actor.parts();
    let (subject_type, subject_id, subject) = event.subject.parts();
    sqlx::query(sql)
        .bind(event.event_type.as_str())
        .bind(now_ms)
        .bind(actor_type)
        .bind(actor_id)
        .bind(event.actor.fixed_name())
        .bind(subject_type)
        .bind(subject_id)
        .bind(subject.map(str::to_owned))
        .bind(event.user_id)
        .bind(event.client_addr.map(|a| a.to_string()))
        .bind(event.outcome.as_str())
        .bind(serde_json::Value::Object(event.detail.clone()).to_string())
        .bind(bucket)
}

/// The key an aggregated event counts under: its type, subject, address, detail and minute
/// (hashed, so an email of any length makes a key of one size).
fn bucket(event: &AuditEvent, now_ms: i64) -> String {
    let (_, _, subject) = event.subject.parts();
    let mut hash = Sha256::new();
    for part in [
        event.event_type.as_str(),
        subject.unwrap_or_default(),
        &event.client_addr.map(|a| a.to_string()).unwrap_or_default(),
        &serde_json::Value::Object(event.detail.clone()).to_string(),
        &(now_ms / AGGREGATION_WINDOW_MS).to_string(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn event_from_row(row: &AnyRow) -> Result<StoredEvent> {
    Ok(StoredEvent {
        id: row.try_get("id")?,
        event_type: row.try_get("event_type")?,
        occurred_at_ms: row.try_get("occurred_at")?,
        last_at_ms: row.try_get("last_at")?,
        count: row.try_get("count")?,
        actor_type: row.try_get("actor_type")?,
        actor_id: row.try_get("actor_id")?,
        actor: row.try_get("actor")?,
        subject_type: row.try_get("subject_type")?,
        subject_id: row.try_get("subject_id")?,
        subject: row.try_get("subject")?,
        user_id: row.try_get("user_id")?,
        client_addr: row.try_get("client_addr")?,
        outcome: row.try_get("outcome")?,
        detail: row.try_get("detail")?,
    })
}

/// Writes `event` in `tx`, the transaction of the change it records.
pub(crate) async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    event: &AuditEvent,
    now_ms: i64,
) -> Result<()> {
    insert_query(INSERT, event, now_ms, None).execute(&mut **tx).await?;
    Ok(())
}

impl Store {
    /// Writes an event that goes with no change.
    pub async fn record_event(&self, event: &AuditEvent, now_ms: i64) -> Result<()> {
        insert_query(INSERT, event, now_ms, None).execute(&self.pool).await?;
        Ok(())
    }

    /// Writes an event, or counts it on the row of the same type, subject and address this
    /// minute.
    pub async fn record_aggregated_event(&self, event: &AuditEvent, now_ms: i64) -> Result<()> {
        insert_query(UPSERT, event, now_ms, Some(bucket(event, now_ms))).execute(&self.pool).await?;
        Ok(())
    }

    /// A page of events matching `query`, newest first.
    pub async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<StoredEvent>> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        let mut binds: Vec<i64> = Vec::new();
        if let Some(before) = query.before_id {
            sql.push_str(&format!(" AND id < ${}", next()));
            binds.push(before);
        }
        if !query.event_types.is_empty() {
            // Names from the enum only, never from the request.
            let names: Vec<String> = query.event_types.iter().map(|t| format!("'{}'", t.as_str())).collect();
            sql.push_str(&format!(" AND event_type IN ({})", names.join(", ")));
        }
        if let Some(user) = query.user_id {
            let (a, b) = (next(), next());
            sql.push_str(&format!(" AND (user_id = ${a} OR (actor_type = 'user' AND actor_id = ${b}))"));
            binds.extend([user, user]);
        }
        if let Some(start) = query.start_ms {
            sql.push_str(&format!(" AND occurred_at >= ${}", next()));
            binds.push(start);
        }
        if let Some(end) = query.end_ms {
            sql.push_str(&format!(" AND occurred_at < ${}", next()));
            binds.push(end);
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", next()));
        binds.push(i64::from(query.limit));
        let mut select = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in binds {
            select = select.bind(value);
        }
        let rows = select.fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Deletes events whose last occurrence is before `cutoff_ms`; returns how many.
    pub async fn prune_audit_events(&self, cutoff_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit_events WHERE last_at < $1")
            .bind(cutoff_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
