-- Phoenix's read API (issue 14): the OpenInference span kind and LLM token counts as columns,
-- a traces table kept up to date by the writer, and indexes for every span filter.

ALTER TABLE spans ADD COLUMN span_kind TEXT NOT NULL DEFAULT 'UNKNOWN';
ALTER TABLE spans ADD COLUMN llm_token_count_prompt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE spans ADD COLUMN llm_token_count_completion BIGINT NOT NULL DEFAULT 0;

-- Spans stored before this migration: the same values the writer now computes.
UPDATE spans SET span_kind = CASE upper(COALESCE(json_extract(attributes, '$."openinference.span.kind"'), ''))
    WHEN 'TOOL' THEN 'TOOL' WHEN 'CHAIN' THEN 'CHAIN' WHEN 'LLM' THEN 'LLM' WHEN 'PROMPT' THEN 'PROMPT'
    WHEN 'RETRIEVER' THEN 'RETRIEVER' WHEN 'EMBEDDING' THEN 'EMBEDDING' WHEN 'AGENT' THEN 'AGENT'
    WHEN 'RERANKER' THEN 'RERANKER' WHEN 'EVALUATOR' THEN 'EVALUATOR' WHEN 'GUARDRAIL' THEN 'GUARDRAIL'
    WHEN 'DECISION' THEN 'DECISION' ELSE 'UNKNOWN' END
WHERE json_valid(attributes);
UPDATE spans SET
    llm_token_count_prompt = CASE WHEN json_type(attributes, '$."llm.token_count.prompt"') = 'integer'
        THEN json_extract(attributes, '$."llm.token_count.prompt"') ELSE 0 END,
    llm_token_count_completion = CASE WHEN json_type(attributes, '$."llm.token_count.completion"') = 'integer'
        THEN json_extract(attributes, '$."llm.token_count.completion"') ELSE 0 END
WHERE span_kind = 'LLM';

-- One row per (project, trace): the writer adds each newly stored span's share in the
-- transaction that stores it (increments commute, so concurrent writers stay exact).
CREATE TABLE IF NOT EXISTS traces (
    id INTEGER PRIMARY KEY,
    project_id BIGINT NOT NULL,
    trace_id TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT NOT NULL,
    latency BIGINT NOT NULL,
    span_count BIGINT NOT NULL,
    error_count BIGINT NOT NULL,
    token_count_prompt BIGINT NOT NULL,
    token_count_completion BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS traces_project_id_trace_id ON traces (project_id, trace_id);
CREATE INDEX IF NOT EXISTS traces_project_id_start_time ON traces (project_id, start_time, id);
CREATE INDEX IF NOT EXISTS traces_project_id_latency ON traces (project_id, latency, id);

INSERT INTO traces (project_id, trace_id, start_time, end_time, latency, span_count, error_count,
                    token_count_prompt, token_count_completion)
SELECT project_id, trace_id, MIN(start_time), MAX(end_time), MAX(end_time) - MIN(start_time), COUNT(*),
       SUM(CASE WHEN status_code = 'ERROR' THEN 1 ELSE 0 END),
       SUM(llm_token_count_prompt), SUM(llm_token_count_completion)
FROM spans GROUP BY project_id, trace_id;

-- Span filters, each in page order (newest first within a project).
CREATE INDEX IF NOT EXISTS spans_project_id_parent ON spans (project_id, parent_span_id, id);
CREATE INDEX IF NOT EXISTS spans_project_id_name ON spans (project_id, name, id);
CREATE INDEX IF NOT EXISTS spans_project_id_span_kind ON spans (project_id, span_kind, id);
CREATE INDEX IF NOT EXISTS spans_project_id_status ON spans (project_id, status_code, id);
CREATE INDEX IF NOT EXISTS spans_project_id_trace_id ON spans (project_id, trace_id, id);
CREATE INDEX IF NOT EXISTS spans_project_id_span_id ON spans (project_id, span_id, id);
-- A time window is a range, not an order: the page's ids are sorted from this index alone.
CREATE INDEX IF NOT EXISTS spans_project_id_start_time ON spans (project_id, start_time, id);
