//! Secrets that never show up in `Debug`, logs or errors, compared in constant time.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret string (PHOENIX_SECRET, the admin secret, the internal token, a password).
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret itself: only for the code that must use it (signing, hashing).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with a presented value in constant time, whatever either length is (both sides
    /// are hashed first, so timing reveals neither content nor length).
    pub fn matches(&self, presented: &str) -> bool {
        let ours = Sha256::digest(self.0.as_bytes());
        let theirs = Sha256::digest(presented.as_bytes());
        ours.ct_eq(&theirs).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed_and_compared_exactly() {
        let secret = Secret::new("hunter2-is-not-a-good-secret-0123");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!(secret.matches("hunter2-is-not-a-good-secret-0123"));
        assert!(!secret.matches("hunter2-is-not-a-good-secret-012"));
        assert!(!secret.matches(""));
    }
}
