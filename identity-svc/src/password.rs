//! Password rules (Phoenix's) and argon2id hashing on a bounded blocking pool.

use std::sync::Arc;

use std::sync::Mutex;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
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
/// pool, at most `concurrency` at a time, each in one of `concurrency` reusable 19 MiB work
/// areas. argon2's own API allocates 19 MiB per hash; on blocking threads, glibc then kept each
/// thread's area resident after the hash (30 sign-ins took a process from 85 MiB to 181 MiB),
/// so the areas are allocated once, at most one per permit, and handed from hash to hash.
#[derive(Clone)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
    /// Work areas not in use; never more than `concurrency` exist.
    areas: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A real hash of a random password: unknown emails are verified against it, so a failed
    /// login costs the same time whether or not the email exists.
    decoy: Arc<str>,
}

impl PasswordHasherPool {
    /// A pool allowing `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Result<Self> {
        let pool = Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            areas: Arc::default(),
            decoy: Arc::from(""),
        };
        let decoy = pool.with_area(|area| hash_in(area, random_password().as_bytes()))?;
        Ok(Self { decoy: decoy.into(), ..pool })
    }

    /// The PHC string of `password`.
    pub async fn hash(&self, password: &Secret) -> Result<String> {
        let password = password.clone();
        let pool = self.clone();
        self.run(move || pool.with_area(|area| hash_in(area, password.expose().as_bytes()))).await
    }

    /// Whether `password` matches `phc` (or, when `phc` is `None`, spends the same time and fails).
    pub async fn verify(&self, password: &Secret, phc: Option<&str>) -> Result<bool> {
        let (password, known) = (password.clone(), phc.is_some());
        let phc: String = phc.unwrap_or(&self.decoy).to_owned();
        let pool = self.clone();
        let matched = self
            .run(move || pool.with_area(|area| Ok(verify_in(area, password.expose().as_bytes(), &phc))))
            .await?;
        Ok(known && matched)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(work).await.map_err(Error::internal)?
    }

    /// Runs `work` in a free work area (allocated the first time one is missing; the permits
    /// bound how many ever exist), then gives the area back.
    fn with_area<T>(&self, work: impl FnOnce(&mut [Block]) -> Result<T>) -> Result<T> {
        let taken = self.areas.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let mut area = taken.unwrap_or_else(|| vec![Block::default(); Params::default().block_count()]);
        let result = work(&mut area);
        self.areas.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(area);
        result
    }
}

/// Hashes `password` with ashgate's parameters (argon2id, Phoenix/OWASP defaults) and a fresh
/// 16-byte salt in `area`: the PHC string.
fn hash_in(area: &mut [Block], password: &[u8]) -> Result<String> {
    let argon2 = Argon2::default();
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2.hash_password_into_with_memory(password, &salt, &mut out, &mut *area).map_err(Error::internal)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(argon2.params()).map_err(Error::internal)?,
        salt: Some(Salt::new(&salt).map_err(Error::internal)?),
        hash: Some(Output::new(&out).map_err(Error::internal)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc`, computed in `area` (a hash whose
/// parameters need more memory than the area holds gets its own, as argon2 would).
fn verify_in(area: &mut [Block], password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let (Ok(algorithm), Ok(params)) =
        (Algorithm::try_from(parsed.algorithm.as_str()), Params::try_from(&parsed))
    else {
        return false;
    };
    let version = parsed.version.map_or(Ok(Version::default()), Version::try_from);
    let Ok(version) = version else { return false };
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let computed = match area.get_mut(..argon2.params().block_count()) {
        Some(fits) => argon2.hash_password_into_with_memory(password, salt, &mut out, fits),
        None => argon2.hash_password_into(password, salt, &mut out),
    };
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
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
    async fn hashes_made_elsewhere_verify_and_areas_are_reused() {
        use argon2::PasswordHasher as _;
        let pool = PasswordHasherPool::new(2).unwrap();
        // A hash argon2's own API made (and Phoenix-style parameters) verifies here.
        let foreign = Argon2::default().hash_password(b"correct horse").unwrap().to_string();
        assert!(pool.verify(&Secret::new("correct horse"), Some(&foreign)).await.unwrap());
        assert!(!pool.verify(&Secret::new("wrong"), Some(&foreign)).await.unwrap());
        // A smaller memory cost verifies too; a garbled string never does.
        let small = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8, 1, 1, None).unwrap());
        let small = small.hash_password(b"pw").unwrap().to_string();
        assert!(pool.verify(&Secret::new("pw"), Some(&small)).await.unwrap());
        assert!(!pool.verify(&Secret::new("pw"), Some("$argon2id$garbage")).await.unwrap());
        for _ in 0..6 {
            pool.hash(&Secret::new("x")).await.unwrap();
        }
        assert!(pool.areas.lock().unwrap().len() <= 2, "at most one work area per permit");
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
