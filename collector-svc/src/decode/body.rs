//! Reading an OTLP/HTTP body: content type, content encoding, size limits before and after
//! decompression (a gzip bomb is cut off at the limit, never inflated into memory), decoding.

use std::io::Read as _;

use axum::body::Body;
use bytes::Bytes;
use flate2::read::{GzDecoder, ZlibDecoder};
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt as _, Limited};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

use crate::error::Error;

/// Bodies above this size are decompressed and decoded on the blocking pool.
const INLINE_DECODE_BYTES: usize = 256 * 1024;

/// OTLP/HTTP payload encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP's JSON mapping).
    Json,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// `Content-Encoding` values OTLP exporters send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip.
    Gzip,
    /// zlib-wrapped deflate (HTTP's `deflate`).
    Deflate,
}

/// The payload format named by `Content-Type` (parameters such as `charset` are ignored).
pub fn format_of(headers: &HeaderMap) -> Result<Format, Error> {
    let raw = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = raw.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        "" => Err(Error::UnsupportedContentType("(none)".into())),
        _ => Err(Error::UnsupportedContentType(raw.chars().take(100).collect())),
    }
}

/// The compression named by `Content-Encoding`.
pub fn encoding_of(headers: &HeaderMap) -> Result<Encoding, Error> {
    let Some(value) = headers.get(CONTENT_ENCODING) else { return Ok(Encoding::Identity) };
    let raw = String::from_utf8_lossy(value.as_bytes()).trim().to_ascii_lowercase();
    match raw.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        _ => Err(Error::UnsupportedEncoding(raw.chars().take(100).collect())),
    }
}

/// Reads at most `limit` bytes of body; refuses early on a larger `Content-Length`.
pub async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Error> {
    let declared =
        headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Error::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(Error::TooLarge { limit }),
        Err(_) => Err(Error::InvalidBody("Request body could not be read".into())),
    }
}

/// Decompresses (stopping at `limit` bytes) and decodes a body.
pub async fn decode(
    body: Bytes,
    encoding: Encoding,
    format: Format,
    limit: usize,
) -> Result<ExportTraceServiceRequest, Error> {
    if body.len() <= INLINE_DECODE_BYTES && encoding == Encoding::Identity {
        return decode_now(body, encoding, format, limit);
    }
    tokio::task::spawn_blocking(move || decode_now(body, encoding, format, limit))
        .await
        .map_err(|_| Error::InvalidBody("Request body could not be decoded".into()))?
}

fn decode_now(
    body: Bytes,
    encoding: Encoding,
    format: Format,
    limit: usize,
) -> Result<ExportTraceServiceRequest, Error> {
    let plain = match encoding {
        Encoding::Identity => body,
        Encoding::Gzip => inflate(GzDecoder::new(body.as_ref()), limit, "gzip")?,
        Encoding::Deflate => inflate(ZlibDecoder::new(body.as_ref()), limit, "deflate")?,
    };
    match format {
        Format::Protobuf => ExportTraceServiceRequest::decode(plain)
            .map_err(|e| Error::InvalidBody(format!("Invalid OTLP protobuf: {e}"))),
        Format::Json => crate::decode::otlp_json::decode_request(&plain),
    }
}

fn inflate(decoder: impl std::io::Read, limit: usize, name: &str) -> Result<Bytes, Error> {
    let mut out = Vec::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let read = decoder.take(limit as u64 + 1).read_to_end(&mut out);
    match read {
        Ok(n) if n > limit => Err(Error::TooLarge { limit }),
        Ok(_) => Ok(Bytes::from(out)),
        Err(_) => Err(Error::InvalidBody(format!("Invalid {name} body"))),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![0u8; 64 * 1024 * 1024]).unwrap();
        let bomb = Bytes::from(encoder.finish().unwrap());
        assert!(bomb.len() < 128 * 1024);
        let error = decode_now(bomb, Encoding::Gzip, Format::Protobuf, 1024 * 1024).unwrap_err();
        assert_eq!(error.to_string(), "Request body is larger than the limit of 1048576 bytes");
    }

    #[test]
    fn content_types() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
        assert_eq!(format_of(&headers).unwrap(), Format::Json);
        headers.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            format_of(&headers).unwrap_err().to_string(),
            "Unsupported content type: text/plain; use application/x-protobuf or application/json"
        );
        headers.insert(CONTENT_ENCODING, "br".parse().unwrap());
        assert_eq!(
            encoding_of(&headers).unwrap_err().to_string(),
            "Unsupported content encoding: br; use gzip or deflate"
        );
    }
}
