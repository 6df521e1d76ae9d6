//! `refresh_tokens`, `access_tokens` and `password_reset_tokens`.

use sqlx::Row;

use super::audit::insert_event;
use super::{Store, flag};
use crate::audit::AuditEvent;
use crate::error::{Error, Result};
use crate::principal::Role;

/// A refresh token row.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    /// Owner.
    pub user_id: i64,
    /// The first refresh token of this login; every rotation stays in the family.
    pub family_id: i64,
    /// SHA-256 of the token's nonce.
    pub nonce_hash: Vec<u8>,
    /// Unix ms.
    pub expires_at_ms: i64,
    /// When the token was exchanged (Unix ms); presenting it again after the grace window is reuse.
    pub rotated_at_ms: Option<i64>,
}

/// An access token row joined with its owner's current state.
#[derive(Debug, Clone)]
pub struct AccessRow {
    /// Owner.
    pub user_id: i64,
    /// SHA-256 of the token's nonce.
    pub nonce_hash: Vec<u8>,
    /// Unix ms.
    pub expires_at_ms: i64,
    /// Owner's current role.
    pub role: Role,
    /// Owner must change their password.
    pub password_needs_reset: bool,
}

/// A password-reset token row.
#[derive(Debug, Clone)]
pub struct ResetRow {
    /// Whose password it resets.
    pub user_id: i64,
    /// SHA-256 of the token's nonce.
    pub nonce_hash: Vec<u8>,
    /// Unix ms.
    pub expires_at_ms: i64,
}

impl Store {
    /// Starts a session or continues `family_id`'s: a refresh row (nonce hash, expiry, id of
    /// the signing secret) and its access row (nonce hash, expiry), in one transaction with
    /// `event` (a sign-in). Returns (refresh id, access id).
    pub async fn insert_session(
        &self,
        user_id: i64,
        family_id: Option<i64>,
        refresh: (&[u8], i64, &str),
        access: (&[u8], i64),
        now_ms: i64,
        event: Option<&AuditEvent>,
    ) -> Result<(i64, i64)> {
        let mut tx = self.pool.begin().await?;
        let ids = insert_pair(&mut tx, user_id, family_id, refresh, access, now_ms).await?;
        if let Some(event) = event {
            insert_event(&mut tx, event, now_ms).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// A refresh token row.
    pub async fn refresh_row(&self, id: i64) -> Result<Option<RefreshRow>> {
        let row = sqlx::query(
            "SELECT user_id, family_id, nonce_hash, expires_at, rotated_at FROM refresh_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(RefreshRow {
                user_id: r.try_get("user_id")?,
                family_id: r.try_get("family_id")?,
                nonce_hash: r.try_get("nonce_hash")?,
                expires_at_ms: r.try_get("expires_at")?,
                rotated_at_ms: r.try_get("rotated_at")?,
            })
        })
        .transpose()
    }

    /// Exchanges refresh token `refresh_id` of `user_id` for a new pair in `family_id`, in one
    /// transaction that first locks the user's row, as every sign-out, password and role change
    /// does: a renewal and a sign-out never interleave, so no pair outlives the sign-out. A
    /// token spent less than `grace_ms` ago still renews (two tabs at once); spent earlier, the
    /// answer is [`Renewal::Spent`] and nothing changes.
    #[allow(clippy::too_many_arguments)]
    pub async fn renew_session(
        &self,
        user_id: i64,
        refresh_id: i64,
        family_id: i64,
        grace_ms: i64,
        refresh: (&[u8], i64, &str),
        access: (&[u8], i64),
        now_ms: i64,
    ) -> Result<Renewal> {
        let mut tx = self.pool.begin().await?;
        if !lock_user(&mut tx, user_id).await? {
            return Ok(Renewal::Gone);
        }
        let row = sqlx::query("SELECT rotated_at FROM refresh_tokens WHERE id = $1")
            .bind(refresh_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(Renewal::Gone) };
        let replaced = match row.try_get::<Option<i64>, _>("rotated_at")? {
            Some(at) if now_ms.saturating_sub(at) < grace_ms => Vec::new(),
            Some(at) => return Ok(Renewal::Spent(at)),
            None => {
                sqlx::query("UPDATE refresh_tokens SET rotated_at = $1 WHERE id = $2")
                    .bind(now_ms)
                    .bind(refresh_id)
                    .execute(&mut *tx)
                    .await?;
                let rows = sqlx::query("DELETE FROM access_tokens WHERE refresh_token_id = $1 RETURNING id")
                    .bind(refresh_id)
                    .fetch_all(&mut *tx)
                    .await?;
                ids(&rows)?
            }
        };
        let (refresh_id, access_id) =
            insert_pair(&mut tx, user_id, Some(family_id), refresh, access, now_ms).await?;
        tx.commit().await?;
        Ok(Renewal::Issued { refresh_id, access_id, replaced })
    }

    /// Deletes a whole session family (refresh-token reuse) with `event`; returns the revoked
    /// access ids.
    pub async fn delete_family(&self, family_id: i64, event: &AuditEvent, now_ms: i64) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        insert_event(&mut tx, event, now_ms).await?;
        let rows = sqlx::query(
            "DELETE FROM access_tokens WHERE refresh_token_id IN (SELECT id FROM refresh_tokens WHERE family_id = $1) RETURNING id",
        )
        .bind(family_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE family_id = $1")
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        ids(&rows)
    }

    /// Ends every session of a user (logout everywhere), after locking the user's row so that
    /// a renewal in flight either finished before (and its pair is deleted here) or starts after
    /// (and finds its token gone).
    /// `event` (a sign-out; `None` for a role change recorded elsewhere) goes with it.
    pub async fn delete_sessions_of(
        &self,
        user_id: i64,
        event: Option<&AuditEvent>,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        lock_user(&mut tx, user_id).await?;
        if let Some(event) = event {
            insert_event(&mut tx, event, now_ms).await?;
        }
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An access token row with its owner's current role.
    pub async fn access_row(&self, id: i64) -> Result<Option<AccessRow>> {
        let row = sqlx::query(
            "SELECT a.user_id, a.nonce_hash, a.expires_at, u.role, u.password_needs_reset \
             FROM access_tokens a JOIN users u ON u.id = a.user_id WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let role: String = r.try_get("role")?;
            Ok(AccessRow {
                user_id: r.try_get("user_id")?,
                nonce_hash: r.try_get("nonce_hash")?,
                expires_at_ms: r.try_get("expires_at")?,
                role: Role::parse(&role).ok_or_else(|| Error::internal("unknown role"))?,
                password_needs_reset: flag(&r, "password_needs_reset")?,
            })
        })
        .transpose()
    }

    /// Replaces the user's reset token (one live token per user) and returns its id, unless
    /// the current one was issued less than `cooldown_ms` ago (`None`: it stays, so a flood of
    /// requests can neither fill the inbox nor void the link just sent).
    pub async fn replace_reset_token(
        &self,
        user_id: i64,
        nonce_hash: &[u8],
        now_ms: i64,
        expires_at_ms: i64,
        cooldown_ms: i64,
        event: &AuditEvent,
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        lock_user(&mut tx, user_id).await?;
        let recent = sqlx::query(
            "SELECT created_at FROM password_reset_tokens WHERE user_id = $1 AND created_at > $2",
        )
        .bind(user_id)
        .bind(now_ms.saturating_sub(cooldown_ms))
        .fetch_optional(&mut *tx)
        .await?;
        if recent.is_some() {
            return Ok(None);
        }
        sqlx::query("DELETE FROM password_reset_tokens WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query(
            "INSERT INTO password_reset_tokens (user_id, nonce_hash, created_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(user_id)
        .bind(nonce_hash)
        .bind(now_ms)
        .bind(expires_at_ms)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        insert_event(&mut tx, event, now_ms).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// A reset token row.
    pub async fn reset_row(&self, id: i64) -> Result<Option<ResetRow>> {
        let row =
            sqlx::query("SELECT user_id, nonce_hash, expires_at FROM password_reset_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(ResetRow {
                user_id: r.try_get("user_id")?,
                nonce_hash: r.try_get("nonce_hash")?,
                expires_at_ms: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Consumes a reset token; false if it was already used (single use under concurrency).
    pub async fn consume_reset_token(&self, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM password_reset_tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes expired sessions and reset tokens. Expired access tokens are recognised from
    /// their own `exp` claim, so dropping the rows loses nothing.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<u64> {
        let mut removed = 0;
        for sql in [
            "DELETE FROM access_tokens WHERE expires_at <= $1",
            "DELETE FROM refresh_tokens WHERE expires_at <= $1",
            "DELETE FROM password_reset_tokens WHERE expires_at <= $1",
        ] {
            removed += sqlx::query(sql).bind(now_ms).execute(&self.pool).await?.rows_affected();
        }
        Ok(removed)
    }
}

/// What [`Store::renew_session`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// A new pair of the family, and the access tokens of the spent one it replaced.
    Issued {
        /// The new refresh token's row.
        refresh_id: i64,
        /// The new access token's row.
        access_id: i64,
        /// Access tokens revoked with the spent refresh token.
        replaced: Vec<i64>,
    },
    /// The token was spent at this time (Unix ms), before the grace window: a replay.
    Spent(i64),
    /// The token or its user is gone (signed out, deleted).
    Gone,
}

/// Locks `user_id`'s row for the rest of the transaction with a write that changes nothing
/// (a row lock on PostgreSQL, the database's write lock on SQLite); false when it is gone.
async fn lock_user(tx: &mut sqlx::Transaction<'_, sqlx::Any>, user_id: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Inserts a refresh row (continuing `family_id` or starting a family) and its access row.
async fn insert_pair(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    family_id: Option<i64>,
    refresh: (&[u8], i64, &str),
    access: (&[u8], i64),
    now_ms: i64,
) -> Result<(i64, i64)> {
    let refresh_id: i64 = sqlx::query(
        "INSERT INTO refresh_tokens (user_id, family_id, nonce_hash, created_at, expires_at, secret_id) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(user_id)
    .bind(family_id.unwrap_or(0))
    .bind(refresh.0)
    .bind(now_ms)
    .bind(refresh.1)
    .bind(refresh.2)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    if family_id.is_none() {
        sqlx::query("UPDATE refresh_tokens SET family_id = id WHERE id = $1")
            .bind(refresh_id)
            .execute(&mut **tx)
            .await?;
    }
    let access_id: i64 = sqlx::query(
        "INSERT INTO access_tokens (user_id, refresh_token_id, nonce_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(user_id)
    .bind(refresh_id)
    .bind(access.0)
    .bind(now_ms)
    .bind(access.1)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    Ok((refresh_id, access_id))
}

fn ids(rows: &[sqlx::any::AnyRow]) -> Result<Vec<i64>> {
    rows.iter().map(|r| Ok(r.try_get::<i64, _>("id")?)).collect()
}
