//! `Set-Cookie` headers as tests read them.

use reqwest::header::{HeaderMap, SET_COOKIE};

/// One parsed `Set-Cookie`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    /// Cookie name.
    pub name: String,
    /// Value, unquoted.
    pub value: String,
    /// Attribute name (lower-cased) → value ("" for flags).
    pub attributes: Vec<(String, String)>,
}

impl SetCookie {
    /// The value of attribute `name` (any case), `""` for a flag.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == &name.to_ascii_lowercase()).map(|(_, v)| v.as_str())
    }
}

/// Every `Set-Cookie` of a response, parsed.
pub fn set_cookies(headers: &HeaderMap) -> Vec<SetCookie> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap();
            let mut parts = text.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let attributes = parts
                .map(|a| match a.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                    None => (a.to_ascii_lowercase(), String::new()),
                })
                .collect();
            SetCookie { name: name.to_owned(), value: value.trim_matches('"').to_owned(), attributes }
        })
        .collect()
}

/// The cookie `name` among `cookies` (panics when it is not there).
pub fn cookie<'a>(cookies: &'a [SetCookie], name: &str) -> &'a SetCookie {
    cookies.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no Set-Cookie {name} in {cookies:?}"))
}
