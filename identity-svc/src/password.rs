//! Password rules (Phoenix's) and argon2id hashing on a bounded blocking pool.

use std::sync::Arc;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Phoenix's `_PasswordRequirements`: the default policy, or the strong one.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    /// `PHOENIX_ENABLE_STRONG_PASSWORD_POLICY`.
    pub strong: bool,
}

const STRONG_SPECIALS: &str = "!@#$%^&*()_+";

impl PasswordPolicy {
    /// Checks a new password; the error says which rule it broke.
    pub fn check(&self, password: &str) -> Result<()> {
        let min_len = if self.strong { 12 } else { 4 };
        let broken = if password.is_empty() {
            Some("Password must not be empty".to_owned())
        } else if !password.is_ascii() {
            Some("Password must contain only ASCII characters".to_owned())
        } else if password.chars().any(|c| c.is_ascii_whitespace()) {
            Some("Password must not contain whitespace".to_owned())
        } else if password.len() < min_len {
            Some(format!("Password must be at least {min_len} characters long"))
        } else if self.strong && !password.chars().any(|c| c.is_ascii_digit()) {
            Some("Password must contain at least one digit".to_owned())
        } else if self.strong && !password.chars().any(|c| c.is_ascii_lowercase()) {
            Some("Password must contain at least one lowercase letter".to_owned())
        } else if self.strong && !password.chars().any(|c| c.is_ascii_uppercase()) {
            Some("Password must contain at least one uppercase letter".to_owned())
        } else if self.strong && !password.chars().any(|c| STRONG_SPECIALS.contains(c)) {
            Some(format!("Password must contain at least one special character ({STRONG_SPECIALS})"))
        } else {
            None
        };
        // Passwords longer than this only cost hashing time; no user needs more.
        if password.len() > 1024 {
            return Err(Error::Invalid("Password must be at most 1024 characters long".into()));
        }
        broken.map_or(Ok(()), |m| Err(Error::Invalid(m)))
    }
}

/// Hashes and verifies passwords with argon2id (OWASP: 19 MiB, t=2, p=1) on tokio's blocking
/// pool, at most `concurrency` at a time so memory stays bounded (19 MiB each).
#[derive(Clone)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: unknown emails are verified against it, so a failed
    /// login costs the same time whether or not the email exists.
    decoy: Arc<str>,
}

impl PasswordHasherPool {
    /// A pool allowing `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Result<Self> {
        let decoy = hash_now(&random_password())?;
        Ok(Self { permits: Arc::new(Semaphore::new(concurrency.max(1))), decoy: decoy.into() })
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: &Secret) -> Result<String> {
        let password = password.clone();
        self.run(move || hash_now(password.expose())).await
    }

    /// Whether `password` matches `phc` (or, when `phc` is `None`, spends the same time and fails).
    pub async fn verify(&self, password: &Secret, phc: Option<&str>) -> Result<bool> {
        let (password, known) = (password.clone(), phc.is_some());
        let phc: String = phc.unwrap_or(&self.decoy).to_owned();
        let matched = self
            .run(move || {
                Ok(Argon2::default().verify_password(password.expose().as_bytes(), phc.as_str()).is_ok())
            })
            .await?;
        Ok(known && matched)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(work).await.map_err(Error::internal)?
    }
}

fn hash_now(password: &str) -> Result<String> {
    Ok(Argon2::default().hash_password(password.as_bytes()).map_err(Error::internal)?.to_string())
}

/// A random password nobody knows (seeded users that must get theirs by reset or OAuth2).
pub fn random_password() -> String {
    crate::token::random_token(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy() {
        let policy = PasswordPolicy { strong: false };
        let msg = |p: &str| policy.check(p).unwrap_err().to_string();
        assert_eq!(msg(""), "Password must not be empty");
        assert_eq!(msg("abc"), "Password must be at least 4 characters long");
        assert_eq!(msg("ab cd"), "Password must not contain whitespace");
        assert_eq!(msg("pässword"), "Password must contain only ASCII characters");
        assert!(policy.check("abcd").is_ok());
    }

    #[test]
    fn strong_policy() {
        let policy = PasswordPolicy { strong: true };
        let msg = |p: &str| policy.check(p).unwrap_err().to_string();
        assert_eq!(msg("Abcdefgh1!"), "Password must be at least 12 characters long");
        assert_eq!(msg("Abcdefghijk!"), "Password must contain at least one digit");
        assert_eq!(msg("ABCDEFGHIJ1!"), "Password must contain at least one lowercase letter");
        assert_eq!(msg("abcdefghij1!"), "Password must contain at least one uppercase letter");
        assert_eq!(
            msg("Abcdefghij12"),
            "Password must contain at least one special character (!@#$%^&*()_+)"
        );
        assert!(policy.check("Abcdefghij1!").is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_and_decoy_fails() {
        let pool = PasswordHasherPool::new(2).unwrap();
        let hash = pool.hash(&Secret::new("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(pool.verify(&Secret::new("correct horse"), Some(&hash)).await.unwrap());
        assert!(!pool.verify(&Secret::new("wrong"), Some(&hash)).await.unwrap());
        assert!(!pool.verify(&Secret::new("anything"), None).await.unwrap());
    }
}
