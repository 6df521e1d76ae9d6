//! The `Authorization` / cookie parsing every request goes through: Phoenix's bearer rule, the
//! gateway's credential order (header, then cookie) and the CSRF decision on arbitrary
//! `Origin`, `Referer`, `Host`, `Cookie` and `Content-Type` values. No input may panic.
#![no_main]

use ashgate_gateway::caller::Credential;
use ashgate_gateway::cookies::{ACCESS_COOKIE, REFRESH_COOKIE, read_cookie};
use ashgate_gateway::csrf;
use ashgate_identity_client::bearer::parse_bearer;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, ORIGIN, REFERER};
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(credential) = parse_bearer(text) {
            // Phoenix: the credential is what follows the scheme, never empty, never padded.
            assert!(!credential.is_empty() && credential.trim() == credential);
        }
    }
    // Fields separated by 0xff (which no header value may hold): authorization, cookie,
    // origin, referer, host, content-type.
    let mut fields = data.split(|b| *b == 0xff);
    let mut headers = HeaderMap::new();
    for name in [AUTHORIZATION, COOKIE, ORIGIN, REFERER, HOST, CONTENT_TYPE] {
        if let Some(value) = fields.next().and_then(|f| HeaderValue::from_bytes(f).ok()) {
            headers.insert(name, value);
        }
    }
    match Credential::of(&headers) {
        Credential::Bearer(token) | Credential::Cookie(token) => {
            assert!(!token.is_empty() && token.len() <= 4096)
        }
        Credential::Malformed | Credential::None => {}
    }
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        if let Some(value) = read_cookie(&headers, name) {
            assert!(!value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic()));
        }
    }
    let trusted = ["example.com".to_owned()];
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let _ = csrf::check(&[], &method, &headers);
        let _ = csrf::check(&trusted, &method, &headers);
    }
});
