//! The domain's view of ingested spans: rows ready to store, grouped as one export.

/// One span, converted from OTLP and validated, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRow {
    /// Index into [`IngestBatch::projects`].
    pub project: usize,
    /// Lower-case hex, 32 characters.
    pub trace_id: String,
    /// Lower-case hex, 16 characters.
    pub span_id: String,
    /// Lower-case hex, 16 characters, or empty for a root span.
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// OTLP kind name, e.g. `SPAN_KIND_INTERNAL`.
    pub kind: &'static str,
    /// Start time, Unix nanoseconds.
    pub start_time_unix_nano: i64,
    /// End time, Unix nanoseconds.
    pub end_time_unix_nano: i64,
    /// `UNSET`, `OK` or `ERROR`.
    pub status_code: &'static str,
    /// The status description.
    pub status_message: String,
    /// JSON object of attribute key to value.
    pub attributes_json: String,
    /// The attribute index's entries for this span ([`crate::decode::attribute_index`]).
    pub attribute_hashes: Vec<i64>,
    /// JSON array of `{name, time_unix_nano, attributes}`.
    pub events_json: String,
    /// JSON array of `{trace_id, span_id, attributes}`.
    pub links_json: String,
    /// Index into [`IngestBatch::resources`].
    pub resource: usize,
    /// OpenInference kind (`openinference.span.kind`, upper case), `UNKNOWN` when absent.
    pub span_kind: &'static str,
    /// `llm.token_count.prompt` of an LLM span, else 0.
    pub llm_token_count_prompt: i64,
    /// `llm.token_count.completion` of an LLM span, else 0.
    pub llm_token_count_completion: i64,
}

/// The spans of one export, with who sent them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestBatch {
    /// Project names the rows refer to by index.
    pub projects: Vec<String>,
    /// Resource attributes as JSON objects, referred to by index.
    pub resources: Vec<String>,
    /// Valid spans.
    pub rows: Vec<SpanRow>,
    /// User id of the principal that sent the export.
    pub ingested_by_user_id: i64,
    /// Credential kind name of that principal, e.g. `CREDENTIAL_KIND_SYSTEM_API_KEY`.
    pub ingested_by_kind: &'static str,
    /// Spans that were invalid and will not be stored.
    pub rejected_spans: u64,
    /// Why the first invalid span was rejected.
    pub rejection: Option<String>,
}

impl IngestBatch {
    /// The `partial_success` message for the exporter, if any span was rejected.
    pub fn rejection_message(&self) -> Option<String> {
        let reason = self.rejection.as_deref()?;
        Some(format!("{} spans rejected; first: {reason}", self.rejected_spans))
    }
}

/// What the writer did with one export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    /// Rows inserted.
    pub inserted: u64,
    /// Rows already present (a retried export).
    pub duplicates: u64,
}
