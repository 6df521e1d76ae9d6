//! Phoenix-style tokens: compact HS256 JWTs signed with `PHOENIX_SECRET` whose `jti` is
//! `"<Kind>:<row id>"`. The database row is the truth (owner, expiry, revocation).
//!
//! Beyond Phoenix, every token also carries a random nonce `n` whose SHA-256 is stored in its
//! row: a key stays unique even if a database is rebuilt with the same secret and row ids
//! repeat, and the row can be checked without trusting the id alone. `exp` is included when the
//! token expires, so an expired token is recognised ("Expired token") even after its row is gone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// What a token is for; the `jti` prefix (Phoenix's SQLAlchemy model names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Short-lived session credential.
    Access,
    /// Exchanged for a new pair at `/auth/refresh`; never a credential by itself.
    Refresh,
    /// Emailed to reset a password; never a credential.
    PasswordReset,
    /// Long-lived credential for programs.
    ApiKey,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => "AccessToken",
            TokenKind::Refresh => "RefreshToken",
            TokenKind::PasswordReset => "PasswordResetToken",
            TokenKind::ApiKey => "ApiKey",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Self> {
        [TokenKind::Access, TokenKind::Refresh, TokenKind::PasswordReset, TokenKind::ApiKey]
            .into_iter()
            .find(|k| k.prefix() == prefix)
    }
}

/// A token's identity: its kind and database row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenId {
    /// What the token is for.
    pub kind: TokenKind,
    /// Its row id in that kind's table.
    pub id: i64,
}

/// A random nonce for a new token, and the hash stored in its row.
pub struct Nonce {
    value: String,
    hash: Vec<u8>,
}

impl Nonce {
    /// 128 random bits.
    pub fn generate() -> Self {
        let value = random_token(16);
        let hash = Sha256::digest(value.as_bytes()).to_vec();
        Self { value, hash }
    }

    /// What goes into the token row.
    pub fn hash(&self) -> &[u8] {
        &self.hash
    }
}

/// A token whose signature and expiry checked out; its row must still be checked.
#[derive(Debug, Clone)]
pub struct DecodedToken {
    /// Kind and row.
    pub id: TokenId,
    nonce: String,
}

impl DecodedToken {
    /// Whether the row's stored nonce hash is this token's (constant time).
    pub fn nonce_matches(&self, stored_hash: &[u8]) -> bool {
        let digest = Sha256::digest(self.nonce.as_bytes());
        let ours: &[u8] = digest.as_ref();
        ours.ct_eq(stored_hash).into()
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    jti: String,
    n: String,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
}

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct TokenCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenCodec {
    /// A codec for `secret` (PHOENIX_SECRET).
    pub fn new(secret: &Secret) -> Self {
        // Only HS256: `alg: none`, other HMACs and asymmetric algorithms (key confusion) fail.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.required_spec_claims.clear();
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    /// Signs a token for row `id`; `expires_at_ms` is the row's expiry, if any.
    pub fn issue(
        &self,
        id: TokenId,
        nonce: &Nonce,
        now_ms: i64,
        expires_at_ms: Option<i64>,
    ) -> Result<String> {
        let claims = Claims {
            jti: format!("{}:{}", id.kind.prefix(), id.id),
            n: nonce.value.clone(),
            iat: now_ms / 1000,
            // Rounded up so the JWT never expires before its row.
            exp: expires_at_ms.map(|ms| ms.saturating_add(999) / 1000),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(Error::internal)
    }

    /// Checks signature, algorithm and expiry, and parses the `jti`. Any token that was not
    /// signed by us is "Invalid token"; a genuine token past its `exp` is "Expired token".
    pub fn decode(&self, token: &str) -> Result<DecodedToken> {
        // A JWT longer than this is not one of ours; refuse before doing any work.
        if token.len() > 2048 {
            return Err(Error::Unauthenticated(INVALID_TOKEN));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            match e.kind() {
                ErrorKind::ExpiredSignature => Error::Unauthenticated(EXPIRED_TOKEN),
                _ => Error::Unauthenticated(INVALID_TOKEN),
            }
        })?;
        let claims = data.claims;
        let id = claims
            .jti
            .split_once(':')
            .and_then(|(prefix, id)| {
                Some(TokenId { kind: TokenKind::from_prefix(prefix)?, id: id.parse().ok()? })
            })
            .ok_or(Error::Unauthenticated(INVALID_TOKEN))?;
        Ok(DecodedToken { id, nonce: claims.n })
    }
}

/// Phoenix's message for a credential that does not authenticate.
pub const INVALID_TOKEN: &str = "Invalid token";
/// Phoenix's message for a genuine credential past its expiry.
pub const EXPIRED_TOKEN: &str = "Expired token";

/// `bytes` random bytes, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> TokenCodec {
        TokenCodec::new(&Secret::new("0123456789abcdefghijklmnopqrstuvwxyz"))
    }

    fn now_ms() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
    }

    #[test]
    fn round_trip_keeps_kind_and_row() {
        let nonce = Nonce::generate();
        let id = TokenId { kind: TokenKind::ApiKey, id: 42 };
        let token = codec().issue(id, &nonce, now_ms(), None).unwrap();
        let decoded = codec().decode(&token).unwrap();
        assert_eq!(decoded.id, id);
        assert!(decoded.nonce_matches(nonce.hash()));
        assert!(!decoded.nonce_matches(Nonce::generate().hash()));
    }

    #[test]
    fn expired_is_told_apart_from_forged() {
        let past = now_ms() - 10_000;
        let token = codec()
            .issue(TokenId { kind: TokenKind::Access, id: 1 }, &Nonce::generate(), past - 60_000, Some(past))
            .unwrap();
        assert_eq!(codec().decode(&token).unwrap_err().to_string(), EXPIRED_TOKEN);
        let other = TokenCodec::new(&Secret::new("zyxwvutsrqponmlkjihgfedcba9876543210"));
        assert_eq!(other.decode(&token).unwrap_err().to_string(), INVALID_TOKEN);
        for bad in ["", "a.b.c", "not a jwt", &"x".repeat(5000)] {
            assert_eq!(codec().decode(bad).unwrap_err().to_string(), INVALID_TOKEN);
        }
    }

    #[test]
    fn alg_none_and_unknown_jti_are_invalid() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"jti":"ApiKey:1","n":"x","iat":1}"#);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(codec().decode(&format!("{header}.{payload}.")).unwrap_err().to_string(), INVALID_TOKEN);
        let claims = Claims { jti: "Session:1".into(), n: "x".into(), iat: 1, exp: None };
        let key = EncodingKey::from_secret(b"0123456789abcdefghijklmnopqrstuvwxyz");
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert_eq!(codec().decode(&token).unwrap_err().to_string(), INVALID_TOKEN);
    }
}
