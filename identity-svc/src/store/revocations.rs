//! The `revocations` table: every revocation as it happens, for the replicas that cannot hear it
//! through Redis.

use sqlx::Row;

use super::Store;
use crate::error::Result;

impl Store {
    /// Records one revocation (its wire form, `a:<id>`, `k:<id>`, `u:<id>`).
    pub async fn record_revocation(&self, event: &str, now_ms: i64) -> Result<()> {
        sqlx::query("INSERT INTO revocations (event, created_at) VALUES ($1, $2)")
            .bind(event)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revocations recorded at or after `since_ms`: (row id, event), in id order.
    pub async fn revocations_since(&self, since_ms: i64) -> Result<Vec<(i64, String)>> {
        let rows =
            sqlx::query("SELECT id, event FROM revocations WHERE created_at >= $1 ORDER BY id LIMIT 10000")
                .bind(since_ms)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("event")?))).collect()
    }

    /// Forgets revocations recorded before `before_ms`.
    pub async fn purge_revocations(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM revocations WHERE created_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
