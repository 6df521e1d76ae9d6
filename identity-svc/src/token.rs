//! Phoenix-style tokens: compact HS256 JWTs signed with `PHOENIX_SECRET` whose `jti` is
//! `"<Kind>:<row id>"`. The database row is the truth (owner, expiry, revocation).
//!
//! Beyond Phoenix, the secret can be rotated: the header's `kid` names the secret that signed
//! the token ([`secret_id`], a one-way digest that reveals nothing of the secret), and secrets in
//! `ASHGATE_PREVIOUS_SECRETS` still verify what they signed. A token without a `kid` (issued
//! before ids existed) is tried against the current secret, then each previous one.
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

/// The public id of a signing secret (the JWT `kid`): 16 hex digits of SHA-256 over a
/// domain-separated string. One-way: it names a secret without helping to guess it (a token's
/// HMAC already allows exactly the same offline guessing, no more).
pub fn secret_id(secret: &Secret) -> String {
    let digest = Sha256::new()
        .chain_update(b"ashgate token signing secret id v1\0")
        .chain_update(secret.expose().as_bytes())
        .finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// One secret that checks tokens, by id.
#[derive(Clone)]
struct VerifyingKey {
    id: String,
    key: DecodingKey,
}

/// Signs tokens with the current secret and checks them with it or a previous one.
#[derive(Clone)]
pub struct TokenCodec {
    signing_id: String,
    encoding: EncodingKey,
    /// The current secret first, then the previous ones in the order configured.
    verifying: Vec<VerifyingKey>,
    validation: Validation,
}

impl TokenCodec {
    /// A codec for `secret` (PHOENIX_SECRET) alone.
    pub fn new(secret: &Secret) -> Self {
        Self::with_previous(secret, &[])
    }

    /// A codec that signs with `current` (PHOENIX_SECRET) and also accepts what `previous`
    /// (ASHGATE_PREVIOUS_SECRETS) signed.
    pub fn with_previous(current: &Secret, previous: &[Secret]) -> Self {
        // Only HS256: `alg: none`, other HMACs and asymmetric algorithms (key confusion) fail.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.required_spec_claims.clear();
        let verifying = std::iter::once(current)
            .chain(previous)
            .map(|s| VerifyingKey { id: secret_id(s), key: DecodingKey::from_secret(s.expose().as_bytes()) })
            .collect();
        Self {
            signing_id: secret_id(current),
            encoding: EncodingKey::from_secret(current.expose().as_bytes()),
            verifying,
            validation,
        }
    }

    /// The id of the secret new tokens are signed with (stored in their rows).
    pub fn signing_id(&self) -> &str {
        &self.signing_id
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
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(Error::internal)
    }

    /// Checks signature, algorithm and expiry, and parses the `jti`. Any token that was not
    /// signed by us is "Invalid token"; a genuine token past its `exp` is "Expired token".
    pub fn decode(&self, token: &str) -> Result<DecodedToken> {
        // A JWT longer than this is not one of ours; refuse before doing any work.
        if token.len() > 2048 {
            return Err(Error::Unauthenticated(INVALID_TOKEN));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::Unauthenticated(INVALID_TOKEN))?;
        let claims = match header.kid {
            // A `kid` names exactly one secret; one we do not hold (retired, or never ours) fails.
            Some(kid) => {
                let key = self
                    .verifying
                    .iter()
                    .find(|k| k.id == kid)
                    .ok_or(Error::Unauthenticated(INVALID_TOKEN))?;
                self.decode_with(token, key).map_err(judged)?
            }
            // Issued before key ids: whichever secret's signature checks out.
            None => self.decode_unnamed(token)?,
        };
        let id = claims
            .jti
            .split_once(':')
            .and_then(|(prefix, id)| {
                Some(TokenId { kind: TokenKind::from_prefix(prefix)?, id: id.parse().ok()? })
            })
            .ok_or(Error::Unauthenticated(INVALID_TOKEN))?;
        Ok(DecodedToken { id, nonce: claims.n })
    }

    fn decode_with(&self, token: &str, key: &VerifyingKey) -> jsonwebtoken::errors::Result<Claims> {
        jsonwebtoken::decode::<Claims>(token, &key.key, &self.validation).map(|data| data.claims)
    }

    /// A token without a `kid`: the first secret whose signature matches decides (its expiry is
    /// checked only after the signature, so a forgery is never reported as expired).
    fn decode_unnamed(&self, token: &str) -> Result<Claims> {
        for key in &self.verifying {
            match self.decode_with(token, key) {
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                other => return other.map_err(judged),
            }
        }
        Err(Error::Unauthenticated(INVALID_TOKEN))
    }
}

/// "Expired token" for a genuine token past its `exp`, "Invalid token" for anything else.
fn judged(e: jsonwebtoken::errors::Error) -> Error {
    match e.kind() {
        ErrorKind::ExpiredSignature => Error::Unauthenticated(EXPIRED_TOKEN),
        _ => Error::Unauthenticated(INVALID_TOKEN),
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

    const OLD: &str = "old-secret-0123456789abcdefghijklmnop";
    const NEW: &str = "new-secret-0123456789abcdefghijklmnop";

    fn header_of(token: &str) -> serde_json::Value {
        let header = token.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
    }

    #[test]
    fn secret_ids_are_short_distinct_and_reveal_nothing() {
        let (old, new) = (secret_id(&Secret::new(OLD)), secret_id(&Secret::new(NEW)));
        assert_eq!(old.len(), 16);
        assert!(old.chars().all(|c| c.is_ascii_hexdigit()), "{old}");
        assert_ne!(old, new);
        assert_eq!(old, secret_id(&Secret::new(OLD)), "stable across processes");
        // Not a plain digest of the secret (domain separated), and no piece of it.
        let plain: String =
            Sha256::digest(OLD.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect();
        assert_ne!(old, plain);
        assert!(!OLD.contains(&old) && !old.contains("secret"));
    }

    #[test]
    fn tokens_name_their_secret_and_previous_secrets_still_verify() {
        let (old, new) = (Secret::new(OLD), Secret::new(NEW));
        let before = TokenCodec::new(&old);
        let rotated = TokenCodec::with_previous(&new, std::slice::from_ref(&old));
        let id = TokenId { kind: TokenKind::ApiKey, id: 7 };
        let nonce = Nonce::generate();
        let old_token = before.issue(id, &nonce, now_ms(), None).unwrap();
        assert_eq!(header_of(&old_token)["kid"], secret_id(&old));
        assert_eq!(rotated.decode(&old_token).unwrap().id, id);
        let new_token = rotated.issue(id, &nonce, now_ms(), None).unwrap();
        assert_eq!(header_of(&new_token)["kid"], secret_id(&new));
        assert_eq!(rotated.signing_id(), secret_id(&new));
        // The old configuration cannot check what the new secret signed; once the old secret
        // is dropped, its tokens are refused.
        assert_eq!(before.decode(&new_token).unwrap_err().to_string(), INVALID_TOKEN);
        let dropped = TokenCodec::new(&new);
        assert_eq!(dropped.decode(&old_token).unwrap_err().to_string(), INVALID_TOKEN);
        assert_eq!(dropped.decode(&new_token).unwrap().id, id);
        // Expiry is still told apart under a previous secret.
        let past = now_ms() - 10_000;
        let expired = before.issue(id, &nonce, past - 60_000, Some(past)).unwrap();
        assert_eq!(rotated.decode(&expired).unwrap_err().to_string(), EXPIRED_TOKEN);
    }

    #[test]
    fn a_kid_naming_no_known_secret_is_invalid() {
        let claims = Claims { jti: "ApiKey:1".into(), n: "x".into(), iat: 1, exp: None };
        let mut header = Header::new(Algorithm::HS256);
        // Signed with the right secret but naming another: the kid decides, nothing else is tried.
        header.kid = Some("0000000000000000".into());
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(OLD.as_bytes())).unwrap();
        let codec = TokenCodec::new(&Secret::new(OLD));
        assert_eq!(codec.decode(&token).unwrap_err().to_string(), INVALID_TOKEN);
        header.kid = Some(secret_id(&Secret::new(OLD)));
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(OLD.as_bytes())).unwrap();
        assert!(codec.decode(&token).is_ok());
    }

    #[test]
    fn tokens_without_a_kid_are_tried_against_every_secret() {
        let legacy = |secret: &str, exp: Option<i64>| {
            let claims = Claims { jti: "AccessToken:3".into(), n: "x".into(), iat: 1, exp };
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        };
        let rotated = TokenCodec::with_previous(&Secret::new(NEW), &[Secret::new(OLD)]);
        assert_eq!(rotated.decode(&legacy(OLD, None)).unwrap().id.id, 3);
        assert_eq!(rotated.decode(&legacy(NEW, None)).unwrap().id.id, 3);
        let past = Some(now_ms() / 1000 - 60);
        assert_eq!(rotated.decode(&legacy(OLD, past)).unwrap_err().to_string(), EXPIRED_TOKEN);
        let stranger = "zyxwvutsrqponmlkjihgfedcba9876543210";
        assert_eq!(rotated.decode(&legacy(stranger, past)).unwrap_err().to_string(), INVALID_TOKEN);
        assert_eq!(rotated.decode(&legacy(stranger, None)).unwrap_err().to_string(), INVALID_TOKEN);
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
