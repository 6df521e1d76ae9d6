-- The confusable skeleton of each username (Unicode TR39, case-folded), unique, so a new name
-- cannot imitate an existing one ("аdmin" with a Cyrillic a, "ADMIN"). Filled by identity-svc
-- at start-up for rows created before this column existed.
ALTER TABLE users ADD COLUMN username_skeleton TEXT;
CREATE UNIQUE INDEX users_username_skeleton ON users (username_skeleton);
