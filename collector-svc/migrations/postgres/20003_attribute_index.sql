-- The attribute index (issue 14): one row per scalar attribute value of a span, keyed by the
-- hash of its path, type and value (collector-svc/src/decode/attribute_index.rs). A filter
-- `attribute=key:value` walks (project_id, value_hash) newest first and checks each candidate's
-- JSON, so a page costs about its own size whether the value is common or rare.
CREATE TABLE IF NOT EXISTS span_attributes (
    project_id BIGINT NOT NULL,
    value_hash BIGINT NOT NULL,
    span_row_id BIGINT NOT NULL,
    PRIMARY KEY (project_id, value_hash, span_row_id)
);

-- Whether a span's values are in span_attributes. Spans stored before this migration, or by a
-- collector that predates it (a rolling upgrade), are not: attribute filters read their JSON,
-- found through this partial index, which is empty once every writer is new.
ALTER TABLE spans ADD COLUMN attributes_indexed BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS spans_attributes_not_indexed ON spans (project_id, id) WHERE attributes_indexed = 0;
