-- Revocations as they happen, read by every replica every quarter second: the way a
-- revocation reaches the others when Redis does not carry it (a replica whose Redis link is
-- down, or no Redis at all). Rows are kept ten minutes.
CREATE TABLE revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX revocations_created_at ON revocations (created_at);
