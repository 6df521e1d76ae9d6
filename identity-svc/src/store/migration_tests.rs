//! Migration 0003 on SQLite rebuilds `users`: a database full of users, sessions, reset tokens
//! and API keys comes out with the same rows, ids, counter and working foreign keys.

use std::borrow::Cow;

use sqlx::Row;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

use super::Store;
use crate::principal::Role;

async fn count(store: &Store, sql: &'static str) -> i64 {
    sqlx::query(sql).fetch_one(&store.pool).await.unwrap().try_get::<i64, _>(0).unwrap()
}

#[tokio::test]
async fn the_sqlite_rebuild_keeps_rows_ids_and_foreign_keys() {
    let path = std::env::temp_dir().join(format!(
        "ashgate-migration-{}-{}.db",
        std::process::id(),
        rand::random::<u32>()
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    sqlx::any::install_default_drivers();

    // The schema without LDAP, with data in every table that references users.
    let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut before = Migrator::new(dir.as_path()).await.unwrap();
    // Every migration but this one: a database of the release before LDAP has the later ones
    // (0004) already, so 0003 runs last there.
    before.migrations = Cow::Owned(before.migrations.iter().filter(|m| m.version != 3).cloned().collect());
    before.run(&pool).await.unwrap();
    let setup = [
        "INSERT INTO users (email, username, role, auth_method, created_at, updated_at) VALUES ('system@localhost', 'system', 'SYSTEM', 'LOCAL', 1, 1)",
        "INSERT INTO users (email, username, role, auth_method, password_hash, created_at, updated_at, username_skeleton) VALUES ('a@x.com', 'a', 'ADMIN', 'LOCAL', 'hash', 2, 2, 'a')",
        "INSERT INTO users (email, username, role, auth_method, oauth2_client_id, oauth2_user_id, created_at, updated_at) VALUES ('b@x.com', 'b', 'MEMBER', 'OAUTH2', 'client', 'sub', 3, 3)",
        "INSERT INTO users (email, username, role, auth_method, created_at, updated_at) VALUES ('gone@x.com', 'gone', 'VIEWER', 'LOCAL', 4, 4)",
        "DELETE FROM users WHERE id = 4",
        "INSERT INTO refresh_tokens (user_id, family_id, nonce_hash, created_at, expires_at) VALUES (2, 1, x'00', 5, 9999999999999)",
        "INSERT INTO access_tokens (user_id, refresh_token_id, nonce_hash, created_at, expires_at) VALUES (2, 1, x'00', 5, 9999999999999)",
        "INSERT INTO password_reset_tokens (user_id, nonce_hash, created_at, expires_at) VALUES (3, x'00', 5, 9999999999999)",
        "INSERT INTO api_keys (user_id, created_by_user_id, name, nonce_hash, created_at) VALUES (1, 2, 'system key', x'00', 5)",
        "INSERT INTO api_keys (user_id, created_by_user_id, name, nonce_hash, created_at) VALUES (2, 2, 'user key', x'00', 5)",
    ];
    for sql in setup {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    // Start-up migrates.
    let store = Store::connect(&url).await.unwrap();
    let users = store.list_users(0, 100).await.unwrap();
    let seen: Vec<(i64, &str, &str)> =
        users.iter().map(|u| (u.id, u.email.as_str(), u.auth_method.as_str())).collect();
    assert_eq!(seen, [(2, "a@x.com", "LOCAL"), (3, "b@x.com", "OAUTH2")]);
    let b = store.user_by_id(3).await.unwrap().unwrap();
    assert_eq!((b.oauth2_client_id.as_deref(), b.oauth2_user_id.as_deref()), (Some("client"), Some("sub")));
    assert_eq!(store.user_by_id(2).await.unwrap().unwrap().password_hash.as_deref(), Some("hash"));
    for (table, rows) in [
        ("SELECT COUNT(*) FROM refresh_tokens", 1),
        ("SELECT COUNT(*) FROM access_tokens", 1),
        ("SELECT COUNT(*) FROM password_reset_tokens", 1),
        ("SELECT COUNT(*) FROM api_keys", 2),
        ("SELECT COUNT(*) FROM pragma_foreign_key_check", 0),
        ("SELECT foreign_keys FROM pragma_foreign_keys", 1),
        // 0002's column and unique index survived the rebuild.
        ("SELECT COUNT(*) FROM users WHERE username_skeleton = 'a'", 1),
        ("SELECT COUNT(*) FROM sqlite_master WHERE name = 'users_username_skeleton'", 1),
    ] {
        assert_eq!(count(&store, table).await, rows, "{table}");
    }

    // The counter survived: the deleted user's id 4 is not handed out again.
    let ldap = store.insert_ldap_user(None, "no-email", Role::Member, Some("uuid-1"), 6, None).await.unwrap();
    assert_eq!((ldap.id, ldap.email.as_str(), ldap.ldap_unique_id.as_deref()), (5, "", Some("uuid-1")));
    let twin = store.insert_ldap_user(None, "no-email-2", Role::Member, Some("uuid-1"), 6, None).await;
    assert_eq!(twin.unwrap_err().to_string(), "LDAP identity already linked to another user");
    assert!(store.insert_ldap_user(None, "no-email-3", Role::Member, Some("uuid-2"), 6, None).await.is_ok());
    // Only LDAP users may lack an email.
    let local = sqlx::query("INSERT INTO users (username, role, auth_method, created_at, updated_at) VALUES ('x', 'MEMBER', 'LOCAL', 1, 1)")
        .execute(&store.pool)
        .await;
    assert!(local.is_err());

    // Foreign keys still cascade from the rebuilt table.
    let deleted = crate::audit::AuditEvent::new(crate::audit::EventType::UserDeleted);
    assert!(store.delete_user(2, &deleted, 7).await.unwrap());
    for (table, rows) in [
        ("SELECT COUNT(*) FROM refresh_tokens", 0),
        ("SELECT COUNT(*) FROM access_tokens", 0),
        ("SELECT COUNT(*) FROM api_keys WHERE user_id = 2", 0),
        ("SELECT COUNT(*) FROM api_keys WHERE user_id = 1 AND created_by_user_id IS NULL", 1),
    ] {
        assert_eq!(count(&store, table).await, rows, "{table}");
    }
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
