//! Phoenix's GlobalIDs (strawberry relay): base64 of `"<Type>:<id>"`. identity-svc and
//! collector-svc speak int64 ids; REST speaks GlobalIDs, converted here at the edge.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Node type of users.
pub const USER: &str = "User";
/// Node type of user API keys (Phoenix's GraphQL name, so ids are interchangeable).
pub const USER_API_KEY: &str = "UserApiKey";
/// Node type of system API keys.
pub const SYSTEM_API_KEY: &str = "SystemApiKey";
/// Node type of projects.
pub const PROJECT: &str = "Project";
/// Node type of spans.
pub const SPAN: &str = "Span";

/// `GlobalID(node_type, id)`.
pub fn encode(node_type: &str, id: impl std::fmt::Display) -> String {
    STANDARD.encode(format!("{node_type}:{id}"))
}

/// The node type and id of a GlobalID, if `value` is one.
pub fn decode(value: &str) -> Option<(String, String)> {
    let bytes = STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (node_type, id) = text.split_once(':')?;
    (!node_type.is_empty() && !id.is_empty()).then(|| (node_type.to_owned(), id.to_owned()))
}

/// The positive int64 id of a GlobalID of `node_type`.
pub fn decode_id(value: &str, node_type: &str) -> Option<i64> {
    match decode(value) {
        Some((t, id)) if t == node_type => id.parse().ok().filter(|id: &i64| *id > 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(encode(USER, 1), "VXNlcjox");
        assert_eq!(decode_id("VXNlcjox", USER), Some(1));
        assert_eq!(decode_id("VXNlcjox", USER_API_KEY), None);
        assert_eq!(decode_id("not base64!", USER), None);
        assert_eq!(decode_id(&encode(USER, "x"), USER), None);
        assert_eq!(decode_id(&encode(USER, -3), USER), None);
        assert_eq!(decode("default"), None);
    }
}
