//! The `state` of an authorization request and the return-URL rule.
//!
//! As Phoenix, `state` is a signed value that also sits in the `phoenix-oauth2-state` cookie,
//! and it carries the callback origin and the return URL through the provider. ashgate signs it
//! with HMAC-SHA256 under a key derived from `ASHGATE_INTERNAL_TOKEN` (shared by every gateway
//! replica, so the callback may land on another one), or a per-process random key without it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::Secret;

/// How long an authorization request may take (the cookies' Max-Age, as Phoenix).
pub const STATE_TTL_SECONDS: i64 = 900;
/// Longest accepted return URL.
const MAX_RETURN_URL: usize = 2048;

/// What the state carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateClaims {
    /// Random, so every state is unique.
    pub random: String,
    /// The provider this request went to.
    pub idp: String,
    /// `scheme://host[:port][/root]` the callback URL was built from.
    pub origin: String,
    /// Where to go after signing in (already checked by [`is_safe_return_url`]).
    pub return_url: Option<String>,
    /// Unix seconds after which the state is refused.
    pub expires_at: i64,
}

/// Signs and verifies states.
#[derive(Clone)]
pub struct StateSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for StateSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSigner(***)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl StateSigner {
    /// A signer keyed from the internal token (shared by replicas), else a random key.
    pub fn new(internal_token: Option<&Secret>) -> Self {
        let key = match internal_token {
            Some(token) => {
                let mut mac = <HmacSha256 as Mac>::new_from_slice(token.expose().as_bytes())
                    .unwrap_or_else(|_| fallback_mac());
                mac.update(b"ashgate-gateway oauth2-state v1");
                mac.finalize().into_bytes().to_vec()
            }
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        Self { key }
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| fallback_mac())
    }

    /// `base64url(json) "." base64url(hmac)`.
    pub fn sign(&self, claims: &StateClaims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// The claims of a state signed by us and not expired at `now` (Unix seconds).
    pub fn verify(&self, state: &str, now: i64) -> Option<StateClaims> {
        let (payload, signature) = state.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&signature).ok()?;
        let claims: StateClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.expires_at > now).then_some(claims)
    }
}

/// HMAC accepts keys of any length, so this is never reached; it keeps the code panic-free.
fn fallback_mac() -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(&rand::random::<[u8; 32]>()).unwrap_or_else(|_| fallback_mac())
}

/// Whether `url` is a path on this site: Phoenix's `^/($|\w)` rule, plus no backslash or
/// control character anywhere and no way to resolve to another origin (so `//host`, `/\host`,
/// `https://host` and their encoded forms are refused).
pub fn is_safe_return_url(url: &str) -> bool {
    if url.len() > MAX_RETURN_URL || url.chars().any(|c| c.is_control() || c == '\\') {
        return false;
    }
    let mut chars = url.chars();
    if chars.next() != Some('/') {
        return false;
    }
    match chars.next() {
        None => {}
        Some(c) if c.is_alphanumeric() || c == '_' => {}
        Some(_) => return false,
    }
    let Ok(base) = url::Url::parse("http://ashgate.invalid/") else { return false };
    base.join(url).is_ok_and(|u| u.origin() == base.origin())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires_at: i64) -> StateClaims {
        StateClaims {
            random: "r".into(),
            idp: "test".into(),
            origin: "http://127.0.0.1:6006".into(),
            return_url: Some("/settings".into()),
            expires_at,
        }
    }

    #[test]
    fn states_are_signed_and_expire() {
        let signer = StateSigner::new(Some(&Secret::new("internal-token-0123456789abcdefghijklm")));
        let state = signer.sign(&claims(100));
        assert_eq!(signer.verify(&state, 99), Some(claims(100)));
        assert_eq!(signer.verify(&state, 100), None, "expired");
        let replica = StateSigner::new(Some(&Secret::new("internal-token-0123456789abcdefghijklm")));
        assert!(replica.verify(&state, 0).is_some(), "replicas share the key");
        let other = StateSigner::new(None);
        assert_eq!(other.verify(&state, 0), None);
        let (payload, _) = state.split_once('.').unwrap();
        let forged = format!("{payload}.AAAA");
        assert_eq!(signer.verify(&forged, 0), None);
        assert_eq!(signer.verify("garbage", 0), None);
    }

    #[test]
    fn return_urls() {
        for good in ["/", "/settings", "/settings?x=1#y", "/_x", "/é", "/a//b"] {
            assert!(is_safe_return_url(good), "{good}");
        }
        for bad in [
            "",
            "settings",
            "//evil.com",
            "/\\evil.com",
            "https://evil.com",
            "/%2F%2Fevil.com",
            "/%5Cevil.com",
            "/\tevil",
            "/.",
            "/ x",
            "http:/evil.com",
            "/settings\\x",
            "%2F%2Fevil.com",
            "javascript:alert(1)",
            "/\u{0}",
        ] {
            assert!(!is_safe_return_url(bad), "{bad}");
        }
    }
}
