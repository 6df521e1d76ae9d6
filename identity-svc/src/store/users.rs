//! The `users` table.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::insert_event;
use super::{Store, conflict_or, flag};
use crate::audit::AuditEvent;
use crate::error::{Error, Result};
use crate::principal::Role;
use crate::user::{AuthMethod, NewUser, User, username_skeleton};

pub(super) const COLUMNS: &str = "id, email, username, role, auth_method, password_hash, password_needs_reset, \
    oauth2_client_id, oauth2_user_id, profile_picture_url, ldap_unique_id, created_at, updated_at";

pub(super) fn user_from_row(row: &AnyRow) -> Result<User> {
    let role: String = row.try_get("role")?;
    let method: String = row.try_get("auth_method")?;
    Ok(User {
        id: row.try_get("id")?,
        // LDAP users of a directory without emails have none (NULL).
        email: row.try_get::<Option<String>, _>("email")?.unwrap_or_default(),
        username: row.try_get("username")?,
        role: Role::parse(&role).ok_or_else(|| Error::internal(format!("unknown role {role}")))?,
        auth_method: AuthMethod::parse(&method)
            .ok_or_else(|| Error::internal(format!("unknown auth method {method}")))?,
        password_hash: row.try_get("password_hash")?,
        password_needs_reset: flag(row, "password_needs_reset")?,
        oauth2_client_id: row.try_get("oauth2_client_id")?,
        oauth2_user_id: row.try_get("oauth2_user_id")?,
        profile_picture_url: row.try_get("profile_picture_url")?,
        ldap_unique_id: row.try_get("ldap_unique_id")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Inserts a user; "Username already exists" / "Email already exists" on conflicts. `event`
    /// (a creation, its subject filled in here) is written in the same transaction.
    pub async fn insert_user(&self, user: &NewUser, now_ms: i64, event: Option<&AuditEvent>) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO users (email, username, role, auth_method, password_hash, password_needs_reset, \
             oauth2_client_id, oauth2_user_id, profile_picture_url, created_at, updated_at, username_skeleton) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&user.email)
            .bind(&user.username)
            .bind(user.role.as_str())
            .bind(user.auth_method.as_str())
            .bind(user.password_hash.as_deref())
            .bind(i64::from(user.password_needs_reset))
            .bind(user.oauth2_client_id.as_deref())
            .bind(user.oauth2_user_id.as_deref())
            .bind(user.profile_picture_url.as_deref())
            .bind(now_ms)
            .bind(username_skeleton(&user.username))
            .fetch_one(&mut *tx)
            .await;
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                drop(tx);
                return Err(self.username_conflict(conflict_or(e), &user.username).await);
            }
        };
        let created = user_from_row(&row)?;
        if let Some(event) = event {
            insert_event(&mut tx, &event.clone().on_user(created.id, &created.username), now_ms).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        self.user_where("id = $1", id).await
    }

    /// The user with this (already lower-cased) email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(email).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user linked to an OAuth2 identity.
    pub async fn user_by_oauth2(&self, client_id: &str, subject: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE oauth2_client_id = $1 AND oauth2_user_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The lowest-id user with `role`, if any.
    pub async fn first_user_with_role(&self, role: Role) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE role = $1 ORDER BY id LIMIT 1");
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(role.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Human users (not the system user) with id > `after_id`, in id order.
    pub async fn list_users(&self, after_id: i64, limit: u32) -> Result<Vec<User>> {
        let sql =
            format!("SELECT {COLUMNS} FROM users WHERE id > $1 AND role <> 'SYSTEM' ORDER BY id LIMIT $2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Renames a user, with `event`.
    pub async fn update_username(
        &self,
        id: i64,
        username: &str,
        now_ms: i64,
        event: &AuditEvent,
    ) -> Result<Option<User>> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE users SET username = $1, updated_at = $2, username_skeleton = $4 WHERE id = $3 RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(username)
            .bind(now_ms)
            .bind(id)
            .bind(username_skeleton(username))
            .fetch_optional(&mut *tx)
            .await;
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                drop(tx);
                return Err(self.username_conflict(conflict_or(e), username).await);
            }
        };
        if row.is_some() {
            insert_event(&mut tx, event, now_ms).await?;
        }
        tx.commit().await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Which of the two username rules a conflict broke: the exact name taken ("Username
    /// already exists", Phoenix's text) or only its look (the skeleton index may be checked
    /// first, and reports both).
    pub(super) async fn username_conflict(&self, error: Error, username: &str) -> Error {
        if !matches!(error, Error::Conflict(crate::user::USERNAME_TOO_SIMILAR)) {
            return error;
        }
        let taken = sqlx::query("SELECT 1 FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await;
        match taken {
            Ok(Some(_)) => Error::Conflict("Username already exists"),
            _ => error,
        }
    }

    /// Fills `username_skeleton` for users created before it existed; a name that imitates an
    /// earlier one keeps none (logged), so it blocks nobody and stays usable.
    pub async fn backfill_username_skeletons(&self) -> Result<()> {
        let rows = sqlx::query("SELECT id, username FROM users WHERE username_skeleton IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let (id, username): (i64, String) = (row.try_get("id")?, row.try_get("username")?);
            let done = sqlx::query("UPDATE users SET username_skeleton = $1 WHERE id = $2")
                .bind(username_skeleton(&username))
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(conflict_or);
            match done {
                Ok(_) => {}
                Err(Error::Conflict(_)) => {
                    tracing::warn!(user_id = id, "username imitates an earlier one; left without a skeleton")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sets a password hash and the must-reset flag, and ends every session of the user in the
    /// same transaction (the old password's sessions must not outlive it), with `event`.
    pub async fn set_password(
        &self,
        id: i64,
        hash: &str,
        needs_reset: bool,
        now_ms: i64,
        event: &AuditEvent,
    ) -> Result<Option<User>> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE users SET password_hash = $1, password_needs_reset = $2, updated_at = $3 WHERE id = $4 RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hash)
            .bind(i64::from(needs_reset))
            .bind(now_ms)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM password_reset_tokens WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if row.is_some() {
            insert_event(&mut tx, event, now_ms).await?;
        }
        tx.commit().await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Changes a user's role and ends their sessions (Phoenix's `patchUser` logs them out), with
    /// `event`.
    pub async fn set_role(
        &self,
        id: i64,
        role: Role,
        now_ms: i64,
        event: &AuditEvent,
    ) -> Result<Option<User>> {
        let mut tx = self.pool.begin().await?;
        let sql = format!("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3 RETURNING {COLUMNS}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(role.as_str())
            .bind(now_ms)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
        if row.is_some() {
            insert_event(&mut tx, event, now_ms).await?;
        }
        tx.commit().await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Updates what an OAuth2 sign-in tells us about a user (identity link, picture, role):
    /// links `id` to (client id, subject) if it is not linked to another identity, and updates
    /// its picture and role; `None` when it is gone or linked elsewhere. `event` (a role change)
    /// goes with it.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_oauth2_profile(
        &self,
        id: i64,
        client_id: &str,
        subject: &str,
        picture: Option<&str>,
        role: Role,
        now_ms: i64,
        event: Option<&AuditEvent>,
    ) -> Result<Option<User>> {
        let mut tx = self.pool.begin().await?;
        // Only an account never linked, or linked to this very identity: two sign-ins racing to
        // link one pre-created account cannot both win.
        let sql = format!(
            "UPDATE users SET oauth2_client_id = $1, oauth2_user_id = $2, profile_picture_url = $3, role = $4, \
             updated_at = $5 WHERE id = $6 AND (oauth2_user_id IS NULL \
             OR (oauth2_client_id = $1 AND oauth2_user_id = $2)) RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .bind(subject)
            .bind(picture)
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

    /// Deletes a user, with `event`; their tokens and keys go with them (foreign keys cascade).
    pub async fn delete_user(&self, id: i64, event: &AuditEvent, now_ms: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // Written first: the actor's name is looked up while every row still exists.
        insert_event(&mut tx, event, now_ms).await?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn user_where(&self, condition: &'static str, value: i64) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE {condition}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }
}
