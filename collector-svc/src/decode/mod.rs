//! Decoding: an export's bytes to rows. [`body`] reads an OTLP/HTTP body (content type,
//! encoding, size limits, decompression) and decodes protobuf or [`otlp_json`]; [`convert`]
//! turns the OTLP request into validated [`rows`], writing attributes as JSON text with
//! [`json_text`] and hashing each scalar value for the [`attribute_index`].

pub mod attribute_index;
pub mod body;
pub mod convert;
pub mod json_text;
pub mod otlp_json;
pub mod rows;
