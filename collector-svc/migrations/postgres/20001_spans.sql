-- collector-svc span store (PostgreSQL). Versions >= 20000 belong to collector-svc; identity-svc
-- shares sqlx's migration table and uses versions below 20000.
CREATE TABLE IF NOT EXISTS projects (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

-- No foreign key to projects: projects are created before their spans and never deleted, and a
-- per-row check would cost ingest throughput.
CREATE TABLE IF NOT EXISTS spans (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT NOT NULL,
    status_code TEXT NOT NULL,
    status_message TEXT NOT NULL,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL,
    links TEXT NOT NULL,
    resource TEXT NOT NULL,
    ingested_by_user_id BIGINT NOT NULL,
    ingested_by_kind TEXT NOT NULL
);

-- A retried export must not duplicate spans.
CREATE UNIQUE INDEX IF NOT EXISTS spans_trace_id_span_id ON spans (trace_id, span_id);
-- Paging through a project, newest first.
CREATE INDEX IF NOT EXISTS spans_project_id_id ON spans (project_id, id);
