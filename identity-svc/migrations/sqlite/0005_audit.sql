-- The audit trail (issue 17): one row per security event, written in the same transaction as
-- the change it records. Append-only: a row's facts never change. Repeated refusals (failed
-- sign-ins, lockouts, rate limits, refused internal credentials) share one row per key and
-- minute, whose `count` and `last_at` grow instead: `bucket` is the hash of that key, NULL for
-- every other event. Rows older than ASHGATE_AUDIT_RETENTION_DAYS are deleted.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    count BIGINT NOT NULL DEFAULT 1,
    actor_type TEXT NOT NULL,
    actor_id BIGINT,
    actor TEXT,
    subject_type TEXT,
    subject_id BIGINT,
    subject TEXT,
    user_id BIGINT,
    client_addr TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    bucket TEXT UNIQUE
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_type ON audit_events (event_type, id);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_actor ON audit_events (actor_id, id);
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
WHEN NEW.id IS NOT OLD.id OR NEW.event_type IS NOT OLD.event_type
    OR NEW.occurred_at IS NOT OLD.occurred_at OR NEW.actor_type IS NOT OLD.actor_type
    OR NEW.actor_id IS NOT OLD.actor_id OR NEW.actor IS NOT OLD.actor
    OR NEW.subject_type IS NOT OLD.subject_type OR NEW.subject_id IS NOT OLD.subject_id
    OR NEW.subject IS NOT OLD.subject OR NEW.user_id IS NOT OLD.user_id
    OR NEW.client_addr IS NOT OLD.client_addr OR NEW.outcome IS NOT OLD.outcome
    OR NEW.detail IS NOT OLD.detail OR NEW.bucket IS NOT OLD.bucket
    OR NEW.count < OLD.count OR NEW.last_at < OLD.last_at
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
