//! LDAP accounts in the `users` table: found by the directory's unique id or by email among
//! LDAP accounts only (a LOCAL or OAuth2 account is never matched), created with or without an
//! email, and kept in line with the directory.

use super::audit::insert_event;
use super::users::{COLUMNS, user_from_row};
use super::{Store, conflict_or};
use crate::audit::AuditEvent;
use crate::error::Result;
use crate::principal::Role;
use crate::user::{User, username_skeleton};

impl Store {
    /// The LDAP account with this (lower-cased) unique id.
    pub async fn ldap_user_by_unique_id(&self, unique_id: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE auth_method = 'LDAP' AND ldap_unique_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(unique_id).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The LDAP account with this (lower-cased) email.
    pub async fn ldap_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE auth_method = 'LDAP' AND email = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(email).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Creates an LDAP account (no password); conflicts are "Username already exists", a name
    /// too similar to another, "Email already exists" or "LDAP identity already linked to
    /// another user". `event` (the sign-up, its subject filled in here) goes with it.
    pub async fn insert_ldap_user(
        &self,
        email: Option<&str>,
        username: &str,
        role: Role,
        unique_id: Option<&str>,
        now_ms: i64,
        event: Option<&AuditEvent>,
    ) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO users (email, username, role, auth_method, password_needs_reset, ldap_unique_id, \
             created_at, updated_at, username_skeleton) VALUES ($1, $2, $3, 'LDAP', 0, $4, $5, $5, $6) \
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email)
            .bind(username)
            .bind(role.as_str())
            .bind(unique_id)
            .bind(now_ms)
            .bind(username_skeleton(username))
            .fetch_one(&mut *tx)
            .await;
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                drop(tx);
                return Err(self.username_conflict(conflict_or(e), username).await);
            }
        };
        let created = user_from_row(&row)?;
        if let Some(event) = event {
            insert_event(&mut tx, &event.clone().on_user(created.id, &created.username), now_ms).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Sets what the directory says of an LDAP account: `email` and `unique_id` when given (the
    /// current ones are kept otherwise), and the role; `event` (a role change) goes with it.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_ldap_user(
        &self,
        id: i64,
        email: Option<&str>,
        unique_id: Option<&str>,
        role: Role,
        now_ms: i64,
        event: Option<&AuditEvent>,
    ) -> Result<Option<User>> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE users SET email = COALESCE($1, email), ldap_unique_id = COALESCE($2, ldap_unique_id), \
             role = $3, updated_at = $4 WHERE id = $5 AND auth_method = 'LDAP' RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email)
            .bind(unique_id)
            .bind(role.as_str())
            .bind(now_ms)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(conflict_or)?;
        if let (Some(event), Some(_)) = (event, &row) {
            insert_event(&mut tx, event, now_ms).await?;
        }
        tx.commit().await?;
        row.as_ref().map(user_from_row).transpose()
    }
}
