//! Phoenix's read API for Phoenix's own clients (`arize-phoenix-client`,
//! `@arizeai/phoenix-client`): the server version, projects, spans and traces, answered from
//! collector-svc's `SpanQueryService` in Phoenix 20.11's shapes, texts and GlobalIDs.

pub mod params;
pub mod projects;
pub mod spans;
pub mod traces;
pub mod version;
