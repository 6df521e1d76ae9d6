-- no-transaction
-- LDAP sign-in (issue 15): auth method LDAP, the directory's unique id (unique when set), and
-- no email for LDAP users of a directory without emails.
--
-- SQLite cannot change a CHECK or NOT NULL in place, so `users` is rebuilt (SQLite's own
-- procedure, https://sqlite.org/lang_altertable.html#otheralter). Foreign keys must be off
-- while the old table is dropped, or the drop would cascade into every session and API key;
-- the pragma is a no-op inside a transaction, hence `no-transaction` above and an explicit
-- transaction below. Ids, the AUTOINCREMENT counter, every column (0002's username_skeleton
-- with its index included) and the other tables' references are kept: a migration that adds a
-- column to users before this one must add it here too.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TEMP TABLE users_sequence AS SELECT seq FROM sqlite_sequence WHERE name = 'users';
CREATE TABLE users_ldap (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT UNIQUE,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('SYSTEM', 'ADMIN', 'MEMBER', 'VIEWER')),
    auth_method TEXT NOT NULL CHECK (auth_method IN ('LOCAL', 'OAUTH2', 'LDAP')),
    password_hash TEXT,
    password_needs_reset BIGINT NOT NULL DEFAULT 0,
    oauth2_client_id TEXT,
    oauth2_user_id TEXT,
    profile_picture_url TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    username_skeleton TEXT,
    ldap_unique_id TEXT UNIQUE,
    UNIQUE (oauth2_client_id, oauth2_user_id),
    CHECK (email IS NOT NULL OR auth_method = 'LDAP')
);
INSERT INTO users_ldap (id, email, username, role, auth_method, password_hash, password_needs_reset,
    oauth2_client_id, oauth2_user_id, profile_picture_url, created_at, updated_at, username_skeleton)
SELECT id, email, username, role, auth_method, password_hash, password_needs_reset,
    oauth2_client_id, oauth2_user_id, profile_picture_url, created_at, updated_at, username_skeleton
FROM users;
DROP TABLE users;
ALTER TABLE users_ldap RENAME TO users;
-- 0002's index went with the old table.
CREATE UNIQUE INDEX users_username_skeleton ON users (username_skeleton);
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'users', seq FROM temp.users_sequence
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users');
UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT seq FROM temp.users_sequence), 0))
    WHERE name = 'users';
DROP TABLE temp.users_sequence;
COMMIT;
PRAGMA foreign_keys = ON;
