//! LDAP sign-in as Phoenix does it (`POST /auth/ldap/login`, docs/phoenix-compat.md §9.2): the
//! username and password are checked against the directory ([`directory`]), the directory's
//! groups decide the role ([`config`]), the account is found or created ([`account`]), and the
//! result is the same session pair as any other sign-in.
//!
//! Every refusal reads "Invalid username and/or password" and counts against the lower-cased
//! username's brute-force record; only a directory that cannot be reached says so, with 503
//! (beyond Phoenix, which answers 401 after up to a minute). That counts as an attempt too.

mod account;
pub mod config;
pub mod directory;
pub mod dn;
pub mod entry;
mod tls;

use std::net::IpAddr;

pub use config::LdapConfig;
pub use directory::{Directory, DirectoryError, DirectoryUser};

use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::limits::{AUTH_BUCKET, Guard};
use crate::secret::Secret;
use crate::session::TokenPair;

/// Phoenix's 401 when either field is empty.
pub const LDAP_CREDENTIALS_REQUIRED: &str = "Username and password required";
/// Phoenix's 401 for every failed LDAP sign-in.
pub const INVALID_LDAP_CREDENTIALS: &str = "Invalid username and/or password";
/// No directory server answered in time (503).
pub const LDAP_UNAVAILABLE: &str = "LDAP server unavailable. Please try again later.";
/// Phoenix's 503 when LDAP is not configured on this server.
pub const LDAP_NOT_CONFIGURED: &str = "LDAP authentication is not configured on this server";

/// Phoenix refuses longer input before asking the directory.
const MAX_USERNAME_CHARS: usize = 256;
const MAX_PASSWORD_BYTES: usize = 1024;

/// The brute-force key of an LDAP username. The unit separator cannot occur in an email, so
/// no local account shares an LDAP username's record.
fn lockout_key(username: &str) -> String {
    format!("ldap\u{1f}{}", username.to_lowercase())
}

impl Identity {
    /// Signs in with a directory username and password (Phoenix `POST /auth/ldap/login`).
    #[tracing::instrument(skip_all, fields(client = ?client_addr))]
    pub async fn ldap_login(
        &self,
        username: &str,
        password: &Secret,
        client_addr: Option<IpAddr>,
    ) -> Result<TokenPair> {
        self.require_auth_enabled()?;
        let Some(directory) = &self.directory else {
            return Err(Error::Unavailable(LDAP_NOT_CONFIGURED.into()));
        };
        self.limits.check_rate(AUTH_BUCKET, client_addr).await?;
        // An empty password would be an anonymous bind, which many directories accept.
        if username.is_empty() || password.expose().is_empty() {
            return Err(Error::Unauthenticated(LDAP_CREDENTIALS_REQUIRED));
        }
        let username = username.trim();
        // Counted before the directory sees the password, so guesses sent at once cannot all
        // get in; released only when the directory accepts it. An outage counts too (as in
        // Phoenix): whether a directory answers in time is something a flood can influence, so
        // a timeout must not hand back a guess.
        let attempt = self.limits.reserve(Guard::SignIn, &lockout_key(username), client_addr).await?;
        // Phoenix refuses a blank or oversized username as a failed sign-in.
        let unusable = username.is_empty()
            || username.chars().count() > MAX_USERNAME_CHARS
            || password.expose().len() > MAX_PASSWORD_BYTES;
        let found = if unusable {
            Err(DirectoryError::Refused)
        } else {
            directory.authenticate(username, password).await
        };
        let found = match found {
            Ok(found) => found,
            Err(DirectoryError::Refused) => return Err(Error::Unauthenticated(INVALID_LDAP_CREDENTIALS)),
            Err(DirectoryError::Unavailable) => return Err(Error::Unavailable(LDAP_UNAVAILABLE.into())),
        };
        attempt.succeeded().await;
        let user = self.ldap_account(found, directory.config()).await?;
        tracing::info!(user_id = user.id, "signed in with LDAP");
        self.start_session(user.id, None, false).await
    }
}
