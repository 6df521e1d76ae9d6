-- LDAP sign-in (issue 15): auth method LDAP, the directory's unique id (unique when set), and
-- no email for LDAP users of a directory without emails.
ALTER TABLE users DROP CONSTRAINT users_auth_method_check;
ALTER TABLE users ADD CONSTRAINT users_auth_method_check
    CHECK (auth_method IN ('LOCAL', 'OAUTH2', 'LDAP'));
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_email_required CHECK (email IS NOT NULL OR auth_method = 'LDAP');
ALTER TABLE users ADD COLUMN ldap_unique_id TEXT;
ALTER TABLE users ADD CONSTRAINT users_ldap_unique_id_key UNIQUE (ldap_unique_id);
