//! Reading `authorization: Bearer <credential>` the way Phoenix does.

/// The credential of an `authorization` value: split at the first space, the scheme must be
/// `bearer` in any case and the credential non-empty. Anything else is no credential.
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, credential) = value.trim().split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

#[cfg(test)]
mod tests {
    use super::parse_bearer;

    #[test]
    fn phoenix_rules() {
        assert_eq!(parse_bearer("Bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("BEARER  abc "), Some("abc"));
        assert_eq!(parse_bearer("Basic abc"), None);
        assert_eq!(parse_bearer("Bearer"), None);
        assert_eq!(parse_bearer("Bearer "), None);
        assert_eq!(parse_bearer("abc"), None);
        assert_eq!(parse_bearer(""), None);
    }
}
