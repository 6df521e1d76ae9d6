//! OTLP/JSON decoding (with the collector's lenient normalisation) and conversion into span
//! rows. Errors are fine; panics, stack overflows and invalid JSON written back are not.
#![no_main]

use ashgate_collector::decode::attribute_index;
use ashgate_collector::decode::convert::{Sender, convert_export};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ashgate_collector::decode::otlp_json::decode_request(data) else { return };
    let batch = convert_export(request, Some("fuzz"), Sender { user_id: 1, kind: "fuzz" });
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
    }
});
