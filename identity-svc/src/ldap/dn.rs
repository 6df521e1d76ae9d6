//! The two string forms LDAP sign-in must get exactly right: distinguished names (RFC 4514),
//! compared in a canonical form so `CN=Admins, OU=Groups` matches `cn=admins,ou=groups`, and
//! filter values (RFC 4515), escaped so a username like `*)(uid=*` is a literal that matches
//! nobody instead of a filter that matches everybody.

/// One attribute type and value of a relative DN, both canonical (the value escaped).
type Ava = (String, String);

/// The canonical form of a DN: attribute types and values lower-cased, whitespace around
/// separators dropped, escapes decoded and re-applied one way, the parts of a multi-valued RDN
/// sorted. `None` when `dn` is not a DN (Phoenix's `canonicalize_dn` refuses the same).
/// The empty DN (the root) is valid and canonically empty.
pub fn canonical_dn(dn: &str) -> Option<String> {
    if dn.trim().is_empty() {
        return Some(String::new());
    }
    let rdns = parse(dn)?;
    let rdns: Vec<String> = rdns
        .into_iter()
        .map(|mut avas| {
            avas.sort();
            avas.iter().map(|(t, v)| format!("{t}={v}")).collect::<Vec<_>>().join("+")
        })
        .collect();
    Some(rdns.join(","))
}

/// Whether `dn` is a syntactically valid DN (the empty DN included).
pub fn is_valid_dn(dn: &str) -> bool {
    canonical_dn(dn).is_some()
}

/// Escapes a value for use inside a search filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL
/// become `\2a`, `\28`, `\29`, `\5c`, `\00`; everything else stays as it is.
pub fn escape_filter_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => escaped.push_str("\\2a"),
            '(' => escaped.push_str("\\28"),
            ')' => escaped.push_str("\\29"),
            '\\' => escaped.push_str("\\5c"),
            '\0' => escaped.push_str("\\00"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `template` with every `%s` replaced by `value`, escaped.
pub fn fill_filter(template: &str, value: &str) -> String {
    template.replace("%s", &escape_filter_value(value))
}

/// Parses a non-empty DN into RDNs of (lower-cased type, canonical value).
fn parse(dn: &str) -> Option<Vec<Vec<Ava>>> {
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    let mut chars = dn.chars().peekable();
    loop {
        let attribute_type = read_type(&mut chars)?;
        let (value, end) = read_value(&mut chars)?;
        rdn.push((attribute_type, value));
        match end {
            End::Plus => {}
            End::Comma => rdns.push(std::mem::take(&mut rdn)),
            End::Done => {
                rdns.push(rdn);
                return Some(rdns);
            }
        }
    }
}

/// What ended a value.
enum End {
    /// `+`: another AVA of the same RDN follows.
    Plus,
    /// `,`: another RDN follows.
    Comma,
    /// The end of the DN.
    Done,
}

/// An attribute type up to `=`: a descriptor (`cn`, `objectGUID`) or a numeric OID.
fn read_type(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    let mut name = String::new();
    for c in chars.by_ref() {
        if c == '=' {
            let name = name.trim().to_ascii_lowercase();
            let descriptor = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            let oid = !name.is_empty()
                && name.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
            return (descriptor || oid).then_some(name);
        }
        name.push(c);
    }
    None
}

/// A value up to an unescaped `,`, `+` or the end, canonical: escapes decoded, unescaped
/// surrounding spaces dropped, lower-cased, escaped again one way. A `#`-prefixed (BER hex)
/// value stays hex; a text value that starts with `#` keeps it escaped, so the two never meet.
fn read_value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<(String, End)> {
    // (byte, was escaped): escaped spaces are significant, unescaped ones at the ends are not.
    let mut bytes: Vec<(u8, bool)> = Vec::new();
    let mut end = End::Done;
    while let Some(c) = chars.next() {
        match c {
            ',' => {
                end = End::Comma;
                break;
            }
            '+' => {
                end = End::Plus;
                break;
            }
            '\\' => {
                let first = chars.next()?;
                if let Some(high) = first.to_digit(16) {
                    let low = chars.next()?.to_digit(16)?;
                    bytes.push((u8::try_from(high * 16 + low).ok()?, true));
                } else if " \"#+,;<=>\\".contains(first) {
                    bytes.push((u8::try_from(first).ok()?, true));
                } else {
                    return None;
                }
            }
            '"' | ';' | '<' | '>' | '\0' => return None,
            c => {
                let mut buffer = [0u8; 4];
                bytes.extend(c.encode_utf8(&mut buffer).bytes().map(|b| (b, false)));
            }
        }
    }
    while bytes.first().is_some_and(|&(b, escaped)| b == b' ' && !escaped) {
        bytes.remove(0);
    }
    while bytes.last().is_some_and(|&(b, escaped)| b == b' ' && !escaped) {
        bytes.pop();
    }
    let hex = bytes.first().is_some_and(|&(b, escaped)| b == b'#' && !escaped);
    let value = String::from_utf8(bytes.into_iter().map(|(b, _)| b).collect()).ok()?;
    if hex {
        if value.len() < 2 || !value.chars().skip(1).all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        return Some((value.to_ascii_lowercase(), end));
    }
    Some((escape_value(&value.to_lowercase()), end))
}

/// Escapes a decoded text value the one canonical way (RFC 4514 §2.4).
fn escape_value(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut escaped = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i == last);
        if "\"+,;<>\\=".contains(c) || edge_space || (c == '#' && i == 0) {
            escaped.push('\\');
            escaped.push(c);
        } else if c == '\0' {
            escaped.push_str("\\00");
        } else {
            escaped.push(c);
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_compare_equal() {
        let same = [
            "cn=Admins,ou=Groups,dc=Example,dc=com",
            "CN=admins, OU=groups , DC=example,DC=COM",
            "cn = admins,ou=groups,dc=example,dc=com",
        ];
        for dn in same {
            assert_eq!(canonical_dn(dn).as_deref(), Some("cn=admins,ou=groups,dc=example,dc=com"), "{dn}");
        }
        assert_eq!(
            canonical_dn("email=John@corp.com+CN=John,OU=users").as_deref(),
            Some("cn=john+email=john@corp.com,ou=users")
        );
        // Hex and character escapes mean the same thing and come out one way.
        assert_eq!(canonical_dn(r"cn=Smith\2c John,dc=x"), canonical_dn(r"cn=smith\, john,dc=x"));
        assert_eq!(canonical_dn(r"cn=Smith\2c John,dc=x").as_deref(), Some(r"cn=smith\, john,dc=x"));
        assert_eq!(canonical_dn(r"cn=\ lead,dc=x").as_deref(), Some(r"cn=\ lead,dc=x"));
        assert_eq!(canonical_dn(r"cn=caf\c3\a9,dc=x").as_deref(), Some("cn=café,dc=x"));
        assert_eq!(canonical_dn("1.2.3.4=#04024869,dc=x").as_deref(), Some("1.2.3.4=#04024869,dc=x"));
        assert_eq!(canonical_dn("   ").as_deref(), Some(""));
        // A text value that starts with '#' is not the BER value with the same digits.
        assert_eq!(canonical_dn(r"cn=\#0A,dc=x").as_deref(), Some(r"cn=\#0a,dc=x"));
        assert_eq!(canonical_dn("cn=#0A,dc=x").as_deref(), Some("cn=#0a,dc=x"));
        // Canonical forms are fixed points.
        for dn in [r"cn=Smith\2c John+uid=J,dc=x", r"cn=\ a\ ,dc=x", r"cn=\#,o=\3d\00", "cn=#00ff,dc=X"] {
            let once = canonical_dn(dn).unwrap();
            assert_eq!(canonical_dn(&once).as_deref(), Some(once.as_str()), "{dn}");
        }
    }

    #[test]
    fn invalid_dns_are_refused() {
        for bad in [
            "invalid dn syntax",
            "cn",
            "=x",
            "cn=a,,dc=x",
            "cn=a,",
            r"cn=a\zz",
            r"cn=a\",
            "cn=a\"b",
            "cn=a;dc=x",
            "c n=a",
            "1.=a",
            "cn=#zz",
            "cn=#",
        ] {
            assert_eq!(canonical_dn(bad), None, "{bad:?}");
            assert!(!is_valid_dn(bad));
        }
    }

    #[test]
    fn random_text_never_panics_and_canonical_forms_are_fixed_points() {
        use rand::Rng as _;
        // The characters DN and filter syntax care about, plus some that they do not.
        let alphabet: Vec<char> = "cnou=,+\\#\" ;<>*()0aZ9é\0".chars().collect();
        let mut rng = rand::rng();
        for _ in 0..20_000 {
            let len = rng.random_range(0..16);
            let text: String =
                (0..len).filter_map(|_| alphabet.get(rng.random_range(0..alphabet.len())).copied()).collect();
            if let Some(once) = canonical_dn(&text) {
                assert_eq!(canonical_dn(&once).as_deref(), Some(once.as_str()), "{text:?}");
            }
            let filter = fill_filter("(&(objectClass=person)(uid=%s))", &text);
            assert!(ldap3::parse_filter(&filter).is_ok(), "{text:?} gave {filter:?}");
        }
    }

    #[test]
    fn filter_values_cannot_change_the_filter() {
        assert_eq!(escape_filter_value("*)(uid=*"), r"\2a\29\28uid=\2a");
        assert_eq!(escape_filter_value(r"a\b"), r"a\5cb");
        assert_eq!(escape_filter_value("nul\0"), r"nul\00");
        assert_eq!(escape_filter_value("jdoe"), "jdoe");
        assert_eq!(
            fill_filter("(&(objectClass=inetOrgPerson)(uid=%s))", "*"),
            r"(&(objectClass=inetOrgPerson)(uid=\2a))"
        );
        assert_eq!(fill_filter("(|(uid=%s)(mail=%s))", "a(b"), r"(|(uid=a\28b)(mail=a\28b))");
        // Every escaped filter still parses as one filter.
        for hostile in ["*)(uid=*", "*", ")(|(objectClass=*", "\\", "a\0b", "é*"] {
            let filter = fill_filter("(&(objectClass=person)(uid=%s))", hostile);
            assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
        }
    }
}
