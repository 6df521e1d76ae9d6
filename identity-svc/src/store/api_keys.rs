//! The `api_keys` table. System keys are those owned by a SYSTEM-role user (Phoenix).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use super::audit::insert_event;
use crate::api_key::{ApiKey, NewApiKey};
use crate::audit::{AuditEvent, Subject};
use crate::error::{Error, Result};
use crate::principal::Role;

/// An API key with what verification needs: the nonce hash and the owner's current role.
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    /// The key's metadata.
    pub key: ApiKey,
    /// SHA-256 of the key's nonce.
    pub nonce_hash: Vec<u8>,
    /// Owner's current role.
    pub owner_role: Role,
}

const COLUMNS: &str = "k.id, k.user_id, k.name, k.description, k.created_at, k.expires_at, k.last_used_at, \
    k.nonce_hash, u.username, u.email, u.role";

fn key_from_row(row: &AnyRow) -> Result<ApiKeyRow> {
    let role: String = row.try_get("role")?;
    let owner_role = Role::parse(&role).ok_or_else(|| Error::internal("unknown role"))?;
    Ok(ApiKeyRow {
        key: ApiKey {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            created_at_ms: row.try_get("created_at")?,
            expires_at_ms: row.try_get("expires_at")?,
            last_used_at_ms: row.try_get("last_used_at")?,
            username: row.try_get("username")?,
            email: row.try_get("email")?,
            system: owner_role == Role::System,
        },
        nonce_hash: row.try_get("nonce_hash")?,
        owner_role,
    })
}

impl Store {
    /// Inserts a key (its token is signed afterwards with the returned id, by the secret
    /// `secret_id` names), with `event` (its subject filled in here).
    pub async fn insert_api_key(
        &self,
        key: &NewApiKey,
        nonce_hash: &[u8],
        secret_id: &str,
        now_ms: i64,
        event: &AuditEvent,
    ) -> Result<ApiKey> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO api_keys (user_id, created_by_user_id, name, description, nonce_hash, created_at, expires_at, secret_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(key.owner_id)
        .bind(key.created_by)
        .bind(&key.name)
        .bind(key.description.as_deref())
        .bind(nonce_hash)
        .bind(now_ms)
        .bind(key.expires_at_ms)
        .bind(secret_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let event = event.clone().on(Subject::ApiKey(id, key.name.clone())).concerning(key.owner_id);
        insert_event(&mut tx, &event, now_ms).await?;
        tx.commit().await?;
        self.api_key_row(id).await?.map(|row| row.key).ok_or_else(|| Error::internal("inserted key vanished"))
    }

    /// A key with its owner.
    pub async fn api_key_row(&self, id: i64) -> Result<Option<ApiKeyRow>> {
        let sql =
            format!("SELECT {COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Keys owned by one user, oldest first.
    pub async fn api_keys_of(&self, user_id: i64) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.user_id = $1 ORDER BY k.id"
        );
        self.keys(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id)).await
    }

    /// Every system key.
    pub async fn system_api_keys(&self) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE u.role = 'SYSTEM' ORDER BY k.id"
        );
        self.keys(sqlx::query(sqlx::AssertSqlSafe(sql))).await
    }

    /// Every human user's keys with id > `after_id`.
    pub async fn user_api_keys(&self, after_id: i64, limit: u32) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE u.role <> 'SYSTEM' AND k.id > $1 ORDER BY k.id LIMIT $2"
        );
        self.keys(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_id).bind(i64::from(limit))).await
    }

    /// Deletes a key, with `event`.
    pub async fn delete_api_key(&self, id: i64, event: &AuditEvent, now_ms: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // Written first: a system key deleting itself is still there to be named.
        insert_event(&mut tx, event, now_ms).await?;
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records that a key was used.
    pub async fn touch_api_key(&self, id: i64, now_ms: i64) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn keys<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<Vec<ApiKey>> {
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|r| key_from_row(r).map(|row| row.key)).collect()
    }
}
