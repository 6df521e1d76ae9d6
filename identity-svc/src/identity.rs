//! The identity domain: one [`Identity`] per replica, holding storage, the token codec, the
//! password pool, limits and the revocation bus. Transports (`grpc/`) only translate.
//!
//! `impl Identity` is split by what the operations are about, one block per module:
//!
//! | module | operations |
//! |---|---|
//! | `identity` (here) | start and shutdown, configuration, readiness, `authenticate`, revoking |
//! | `session` | `login`, `refresh`, `logout`, starting and renewing sessions |
//! | `user` | `create_user`, `delete_user`, `list_users`, `get_user`, `get_self`, `update_username`, `update_password`, `update_role` |
//! | `api_key` | system and user API keys: create, list, delete |
//! | `credential_check` | `verify_credential` for other services, with its cache |
//! | `password_reset` | `request_password_reset`, `reset_password`, `set_password_offline` (the CLI) |
//! | `oauth2` | `complete_oauth2_sign_in` |
//! | `ldap` (`mod`, `account`) | `ldap_login`; finding, creating and syncing LDAP accounts |
//! | `audit` | recording and `list_audit_events`, pruning |
//! | `revocation_log` | revocations through the database (the outbox poller) |

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::IdentityConfig;
use crate::credential_check::VerifyCache;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::mailer::Mailer;
use crate::password::{PasswordHasherPool, PasswordPolicy};
use crate::principal::{CredentialKind, Principal, Role};
use crate::revocation::{Revocation, RevocationBus};
use crate::store::Store;
use crate::token::{INVALID_TOKEN, TokenCodec};

/// One identity replica's state. Cheap to share (`Arc`).
pub struct Identity {
    pub(crate) config: IdentityConfig,
    pub(crate) store: Store,
    pub(crate) hasher: PasswordHasherPool,
    pub(crate) policy: PasswordPolicy,
    /// Present when a secret is configured (always when auth is enabled).
    pub(crate) codec: Option<TokenCodec>,
    pub(crate) limits: Limits,
    pub(crate) revocations: RevocationBus,
    pub(crate) cache: VerifyCache,
    pub(crate) system_user_id: i64,
    /// API keys whose `last_used_at` was written in the last minute (bounded, expiring).
    pub(crate) key_touches: moka::sync::Cache<i64, ()>,
    /// Present when SMTP is configured.
    pub(crate) mailer: Option<Mailer>,
    /// Present when LDAP is configured (`PHOENIX_LDAP_HOST`).
    pub(crate) directory: Option<crate::ldap::Directory>,
}

/// Who is calling a public RPC and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated principal.
    pub principal: Principal,
    /// The end user's address (as told by the gateway, or the peer).
    pub client_addr: Option<IpAddr>,
}

impl Identity {
    /// Connects to storage, migrates, seeds on first start, and starts background work.
    pub async fn start(config: IdentityConfig) -> Result<Arc<Self>> {
        let store = Store::connect(&config.database_url).await?;
        let revocations = match &config.redis_url {
            Some(url) => RevocationBus::with_redis(url, &config.redis_namespace)
                .map_err(|e| Error::Invalid(format!("ASHGATE_REDIS_URL: {e}")))?,
            None => RevocationBus::local(),
        };
        let limits = Limits::new(
            config.login_protection,
            config.rate_limit_enabled,
            config.redis_url.as_deref(),
            &config.redis_namespace,
        )?;
        let hasher = PasswordHasherPool::new(config.password_hash_concurrency)?;
        store.backfill_username_skeletons().await?;
        let system_user_id = crate::seed::seed(&store, &hasher, &config).await?;
        let mailer =
            config.smtp.as_ref().map(Mailer::new).transpose().map_err(|e| Error::Invalid(e.to_string()))?;
        let directory = config.ldap.clone().map(crate::ldap::Directory::new);
        let codec = config.signing_secret().map(|s| TokenCodec::with_previous(s, &config.previous_secrets));
        if let Some(codec) = &codec
            && config.previous_secrets.is_empty()
        {
            store.attribute_unnamed_rows(codec.signing_id()).await?;
        }
        let identity = Arc::new(Self {
            directory,
            policy: PasswordPolicy { strong: config.strong_password_policy },
            codec,
            cache: VerifyCache::new(),
            key_touches: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            mailer,
            config,
            store,
            hasher,
            limits,
            revocations,
            system_user_id,
        });
        identity.cache.follow(&identity.revocations);
        tokio::spawn(purge_expired_rows(Arc::downgrade(&identity)));
        tokio::spawn(crate::audit::prune(Arc::downgrade(&identity)));
        if identity.shares_revocations() {
            tokio::spawn(crate::revocation_log::follow(Arc::downgrade(&identity)));
        }
        Ok(identity)
    }

    /// The configuration this replica runs with.
    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// The revocation bus (the gRPC stream subscribes to it).
    pub fn revocations(&self) -> &RevocationBus {
        &self.revocations
    }

    /// What live sessions and API keys depend on each configured secret.
    pub async fn secret_status(&self) -> Result<crate::rotation::SecretStatus> {
        crate::rotation::SecretStatus::read(&self.store, &self.config, now_ms()).await
    }

    /// Whether the database answers.
    pub async fn is_ready(&self) -> bool {
        self.store.ping().await
    }

    /// Closes the database pool.
    pub async fn shutdown(&self) {
        self.store.close().await;
    }

    /// Authenticates the bearer credential of a public RPC. Auth disabled: anonymous.
    /// `during_reset` allows a session whose user must change their password (only the
    /// password change and sign-out accept it: beyond Phoenix, the API refuses the rest).
    pub async fn authenticate(&self, bearer: Option<&str>, during_reset: bool) -> Result<Principal> {
        if !self.config.auth_enabled {
            return Ok(Principal::anonymous());
        }
        let bearer = bearer.ok_or(Error::Unauthenticated(INVALID_TOKEN))?;
        let principal = self.verify_credential(bearer).await?;
        if principal.password_needs_reset && principal.is_session() && !during_reset {
            return Err(Error::Forbidden(PASSWORD_CHANGE_REQUIRED.into()));
        }
        Ok(principal)
    }

    /// Whether `presented` is the internal service credential (constant time).
    pub fn is_internal_caller(&self, presented: Option<&str>) -> bool {
        match (&self.config.internal_token, presented) {
            (Some(token), Some(presented)) => token.matches(presented),
            _ => false,
        }
    }

    pub(crate) fn codec(&self) -> Result<&TokenCodec> {
        self.codec.as_ref().ok_or_else(|| Error::Precondition(AUTH_DISABLED.into()))
    }

    pub(crate) fn require_auth_enabled(&self) -> Result<()> {
        if self.config.auth_enabled { Ok(()) } else { Err(Error::Precondition(AUTH_DISABLED.into())) }
    }

    /// The principal of `PHOENIX_ADMIN_SECRET`: the system user, with admin rights.
    pub(crate) fn admin_secret_principal(&self) -> Principal {
        Principal {
            user_id: self.system_user_id,
            kind: CredentialKind::AdminSecret,
            role: Role::Admin,
            expires_at_ms: None,
            credential_id: 0,
            password_needs_reset: false,
        }
    }

    /// Forgets `revocation`'s target in this replica's own cache at once (before the revoking
    /// call returns, so no answer after it comes from the cache), then tells every verifier
    /// and replica: through Redis, and through the database ([`crate::revocation_log`]).
    pub(crate) fn revoke(&self, revocation: Revocation) {
        self.cache.evict(revocation);
        self.revocations.publish(revocation);
        self.record_revocation(revocation);
    }
}

/// The user must change their password first (beyond Phoenix, enforced by the API).
pub const PASSWORD_CHANGE_REQUIRED: &str = "You must change your password before continuing.";
/// Operations that need authentication when it is disabled.
pub const AUTH_DISABLED: &str = "Authentication is not enabled";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `now + ttl` in Unix ms.
pub(crate) fn after(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

async fn purge_expired_rows(identity: std::sync::Weak<Identity>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let Some(identity) = identity.upgrade() else { return };
        if let Err(e) = identity.store.purge_expired(now_ms()).await {
            tracing::warn!(error = %e, "could not purge expired tokens");
        }
    }
}
