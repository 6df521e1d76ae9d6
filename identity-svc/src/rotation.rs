//! Rotating `PHOENIX_SECRET`: which live credentials depend on which secret.
//!
//! Every session's refresh row and every API key row stores the id of the secret that signed
//! it ([`crate::token::secret_id`]). A previous secret (`ASHGATE_PREVIOUS_SECRETS`) can be
//! retired once nothing live depends on it; `ashgate secrets status` and the
//! `ashgate_identity_secret_dependents` gauge say how much still does. Ids only: a secret is
//! never shown.

use std::fmt::Write as _;

use crate::config::IdentityConfig;
use crate::error::Result;
use crate::store::Store;
use crate::token::secret_id;

/// How a secret is configured on this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretRole {
    /// `PHOENIX_SECRET`: signs and verifies.
    Current,
    /// Listed in `ASHGATE_PREVIOUS_SECRETS`: verifies only.
    Previous,
    /// Signed live rows but is configured no more: their credentials are refused.
    Retired,
}

impl SecretRole {
    /// The word the status table and the metric label use.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretRole::Current => "current",
            SecretRole::Previous => "previous",
            SecretRole::Retired => "retired",
        }
    }
}

/// Live credentials signed by one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUse {
    /// The secret's public id (the JWT `kid`).
    pub secret_id: String,
    /// How it is configured here.
    pub role: SecretRole,
    /// Sessions whose refresh token is neither spent nor expired.
    pub sessions: u64,
    /// API keys not expired.
    pub api_keys: u64,
}

/// What depends on each secret, current first, then the previous ones in configured order,
/// then any retired ones that live rows still name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretStatus {
    /// One entry per secret.
    pub secrets: Vec<SecretUse>,
    /// Live sessions and API keys issued before ids were recorded and not attributed since (a
    /// first start of this version that already had previous secrets configured).
    pub unattributed: (u64, u64),
}

impl SecretStatus {
    /// Counts live rows per secret in `store`, for the secrets `config` holds.
    pub async fn read(store: &Store, config: &IdentityConfig, now_ms: i64) -> Result<Self> {
        let configured: Vec<(String, SecretRole)> = config
            .secret
            .iter()
            .map(|s| (secret_id(s), SecretRole::Current))
            .chain(config.previous_secrets.iter().map(|s| (secret_id(s), SecretRole::Previous)))
            .collect();
        let mut secrets: Vec<SecretUse> = configured
            .into_iter()
            .map(|(secret_id, role)| SecretUse { secret_id, role, sessions: 0, api_keys: 0 })
            .collect();
        let mut unattributed = (0, 0);
        let counts = store.live_rows_by_secret(now_ms).await?;
        for (id, sessions, api_keys) in counts {
            let Some(id) = id else {
                unattributed = (sessions, api_keys);
                continue;
            };
            let position = match secrets.iter().position(|s| s.secret_id == id) {
                Some(position) => position,
                None => {
                    secrets.push(SecretUse {
                        secret_id: id,
                        role: SecretRole::Retired,
                        sessions: 0,
                        api_keys: 0,
                    });
                    secrets.len() - 1
                }
            };
            if let Some(entry) = secrets.get_mut(position) {
                entry.sessions += sessions;
                entry.api_keys += api_keys;
            }
        }
        Ok(Self { secrets, unattributed })
    }

    /// The table `ashgate secrets status` prints.
    pub fn render(&self) -> String {
        let mut out =
            format!("{:<18} {:<9} {:>13} {:>9}\n", "secret id", "role", "live sessions", "API keys");
        for s in &self.secrets {
            let _ = writeln!(
                out,
                "{:<18} {:<9} {:>13} {:>9}",
                s.secret_id,
                s.role.as_str(),
                s.sessions,
                s.api_keys
            );
        }
        if self.unattributed != (0, 0) {
            let _ = writeln!(
                out,
                "{:<18} {:<9} {:>13} {:>9}",
                "(no id)", "unknown", self.unattributed.0, self.unattributed.1
            );
        }
        if let Some(s) =
            self.secrets.iter().find(|s| s.role == SecretRole::Previous && s.sessions + s.api_keys == 0)
        {
            let _ = writeln!(out, "previous secret {} signed nothing live: it can be retired", s.secret_id);
        }
        out
    }
}
