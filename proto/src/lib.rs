//! ashgate's gRPC wire types. Generated from `proto/ashgate/*.proto`; no logic lives here.

#![allow(clippy::all, missing_docs)]

/// `ashgate.identity.v1`: users, sessions, API keys, credential verification, revocations.
pub mod identity {
    tonic::include_proto!("ashgate.identity.v1");
}

/// `ashgate.collector.v1`: the span read path.
pub mod collector {
    tonic::include_proto!("ashgate.collector.v1");
}

/// OpenInference span kinds as Phoenix's `SpanKind` enum names them: the values a span's kind is
/// stored as and the values `span_kind` filters accept, on both sides of the collector's API.
pub const SPAN_KINDS: [&str; 12] = [
    "TOOL",
    "CHAIN",
    "LLM",
    "PROMPT",
    "RETRIEVER",
    "EMBEDDING",
    "AGENT",
    "RERANKER",
    "EVALUATOR",
    "GUARDRAIL",
    "DECISION",
    "UNKNOWN",
];

/// Encoded `FileDescriptorSet` of every ashgate proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ashgate_descriptor.bin"));

impl collector::ProjectSelector {
    /// The project with this name (as a request field).
    pub fn by_name(name: impl Into<String>) -> Option<Self> {
        Some(Self { by: Some(collector::project_selector::By::Name(name.into())) })
    }

    /// The project with this row id (as a request field).
    pub fn by_id(id: i64) -> Option<Self> {
        Some(Self { by: Some(collector::project_selector::By::Id(id)) })
    }
}
