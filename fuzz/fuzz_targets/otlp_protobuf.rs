//! OTLP protobuf decoding and the collector's conversion of what decodes into span rows. The
//! JSON the collector writes itself (attributes, events, links, resources) must be valid JSON
//! whatever the export held.
#![no_main]

use ashgate_collector::decode::attribute_index;
use ashgate_collector::decode::convert::{Sender, convert_export};
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ExportTraceServiceRequest::decode(data) else { return };
    check(request);
});

fn check(request: ExportTraceServiceRequest) {
    let batch = convert_export(request, None, Sender { user_id: 1, kind: "fuzz" });
    for row in &batch.rows {
        for json in [&row.attributes_json, &row.events_json, &row.links_json] {
            assert!(serde_json::from_str::<serde_json::Value>(json).is_ok(), "invalid JSON written: {json}");
        }
        // The attribute index holds every value the stored JSON has (the JSON keeps one of
        // duplicate keys, the index both).
        let stored = attribute_index::hashes_of_json(&row.attributes_json).expect("attributes are an object");
        assert!(
            stored.iter().all(|hash| row.attribute_hashes.binary_search(hash).is_ok()),
            "a stored value is missing from the attribute index: {}",
            row.attributes_json
        );
        assert_eq!(row.trace_id.len(), 32);
        assert_eq!(row.span_id.len(), 16);
    }
    for resource in &batch.resources {
        assert!(
            serde_json::from_str::<serde_json::Value>(resource).is_ok(),
            "invalid resource JSON: {resource}"
        );
    }
}
