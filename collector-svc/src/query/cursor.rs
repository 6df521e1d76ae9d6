//! Opaque paging cursors: base64url of `<kind>:<row id>`, so callers cannot mix them up and a
//! tampered cursor is refused with INVALID_ARGUMENT.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::Error;

/// What a cursor pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    /// `ListProjects`: continue after this project id.
    Projects,
    /// `QuerySpans`: continue before this span id.
    Spans,
}

impl CursorKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Projects => "projects:",
            Self::Spans => "spans:",
        }
    }
}

/// The cursor for continuing at row `id`.
pub fn encode_cursor(kind: CursorKind, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}{id}", kind.prefix()))
}

/// The row id in `cursor`; `None` for an empty cursor (the first page).
pub fn decode_cursor(kind: CursorKind, cursor: &str) -> Result<Option<i64>, Error> {
    if cursor.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::Invalid { field: "cursor", reason: "not a cursor returned by this query" };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let id = text.strip_prefix(kind.prefix()).and_then(|id| id.parse::<i64>().ok()).ok_or_else(invalid)?;
    Ok(Some(id))
}

/// A page size: 0 means 100; more than 1000 is refused.
pub fn page_limit(limit: u32) -> Result<u32, Error> {
    match limit {
        0 => Ok(100),
        1..=1000 => Ok(limit),
        _ => Err(Error::Invalid { field: "limit", reason: "must be between 1 and 1000" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let cursor = encode_cursor(CursorKind::Spans, 42);
        assert_eq!(decode_cursor(CursorKind::Spans, &cursor).unwrap(), Some(42));
        assert_eq!(decode_cursor(CursorKind::Spans, "").unwrap(), None);
        for bad in ["!!", "c3BhbnM6eA", &encode_cursor(CursorKind::Projects, 1)] {
            let error = decode_cursor(CursorKind::Spans, bad).unwrap_err();
            assert_eq!(error.to_string(), "Invalid cursor: not a cursor returned by this query");
        }
        assert_eq!(page_limit(0).unwrap(), 100);
        assert!(page_limit(1001).is_err());
    }
}
