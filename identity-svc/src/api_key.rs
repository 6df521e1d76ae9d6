//! API keys: system keys (owned by the system user, admins manage them) and user keys (any
//! signed-in human manages their own; admins see and delete everyone's). Phoenix ≥ 18.1: API
//! keys cannot create API keys.

use crate::audit::{AuditEvent, EventType, Subject};
use crate::error::{Error, Result};
use crate::identity::{Caller, Identity, now_ms};
use crate::principal::{CredentialKind, Principal, Role};
use crate::revocation::Revocation;
use crate::token::{Nonce, TokenId, TokenKind};
use crate::user::{page_limit, parse_cursor, require_admin};

/// A key's metadata (the key itself is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Row id.
    pub id: i64,
    /// Owner (the system user for system keys).
    pub user_id: i64,
    /// Name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms; `None` = never.
    pub expires_at_ms: Option<i64>,
    /// Unix ms, coarse (at most one write a minute).
    pub last_used_at_ms: Option<i64>,
    /// Owner's username.
    pub username: String,
    /// Owner's email.
    pub email: String,
    /// Owned by the system user.
    pub system: bool,
}

/// What a caller asks for.
#[derive(Debug, Clone)]
pub struct CreateApiKey {
    /// Non-blank name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Unix ms in the future, or `None`.
    pub expires_at_ms: Option<i64>,
}

/// What the store inserts.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Owner.
    pub owner_id: i64,
    /// Who created it (audit only; survives as NULL when they are deleted).
    pub created_by: Option<i64>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Expiry.
    pub expires_at_ms: Option<i64>,
}

/// 9999-12-31T23:59:59.999Z, the last instant an ISO 8601 date can name; later expiries are
/// refused rather than carried into arithmetic that could overflow.
pub const LATEST_EXPIRY_MS: i64 = 253_402_300_799_999;

/// Phoenix's 404 text for keys.
pub const API_KEY_NOT_FOUND: &str = "API key not found";

impl Identity {
    /// Creates a system key: admins through a session, or the admin secret.
    #[tracing::instrument(skip_all, fields(caller = caller.principal.user_id))]
    pub async fn create_system_api_key(
        &self,
        caller: &Caller,
        request: CreateApiKey,
    ) -> Result<(ApiKey, String)> {
        let principal = &caller.principal;
        self.require_auth_enabled()?;
        refuse_api_keys(principal)?;
        require_admin(principal)?;
        let created_by = (principal.kind == CredentialKind::AccessToken).then_some(principal.user_id);
        self.issue_api_key(caller, self.system_user_id, created_by, request).await
    }

    /// Every system key (admins).
    pub async fn list_system_api_keys(&self, principal: &Principal) -> Result<Vec<ApiKey>> {
        self.require_auth_enabled()?;
        require_admin(principal)?;
        self.store.system_api_keys().await
    }

    /// Deletes a system key (admins); NOT_FOUND if `id` is not a system key.
    #[tracing::instrument(skip_all, fields(caller = caller.principal.user_id, key = id))]
    pub async fn delete_system_api_key(&self, caller: &Caller, id: i64) -> Result<()> {
        self.require_auth_enabled()?;
        require_admin(&caller.principal)?;
        let row = self
            .store
            .api_key_row(id)
            .await?
            .filter(|r| r.key.system)
            .ok_or(Error::NotFound(API_KEY_NOT_FOUND))?;
        self.remove_api_key(caller, &row.key).await
    }

    /// Creates a key for the signed-in human (any role, viewers included: their key reads).
    #[tracing::instrument(skip_all, fields(caller = caller.principal.user_id))]
    pub async fn create_user_api_key(
        &self,
        caller: &Caller,
        request: CreateApiKey,
    ) -> Result<(ApiKey, String)> {
        let principal = &caller.principal;
        self.require_auth_enabled()?;
        refuse_api_keys(principal)?;
        if principal.kind != CredentialKind::AccessToken || principal.role == Role::System {
            return Err(Error::Forbidden("Only signed-in users can create user API keys".into()));
        }
        self.issue_api_key(caller, principal.user_id, Some(principal.user_id), request).await
    }

    /// The caller's own user keys (system principals own none).
    pub async fn list_own_api_keys(&self, principal: &Principal) -> Result<Vec<ApiKey>> {
        self.require_auth_enabled()?;
        if principal.role == Role::System || principal.kind == CredentialKind::AdminSecret {
            return Ok(Vec::new());
        }
        self.store.api_keys_of(principal.user_id).await
    }

    /// Every human user's keys, paged (admins).
    pub async fn list_all_user_api_keys(
        &self,
        principal: &Principal,
        cursor: &str,
        limit: u32,
    ) -> Result<(Vec<ApiKey>, String)> {
        self.require_auth_enabled()?;
        require_admin(principal)?;
        let limit = page_limit(limit);
        let keys = self.store.user_api_keys(parse_cursor(cursor)?, limit).await?;
        let next = if keys.len() == limit as usize {
            keys.last().map(|k| k.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((keys, next))
    }

    /// Deletes a user key: the owner's own, or anyone's (admins). Someone else's key is
    /// reported as not found; system keys are refused (they have their own route).
    #[tracing::instrument(skip_all, fields(caller = caller.principal.user_id, key = id))]
    pub async fn delete_user_api_key(&self, caller: &Caller, id: i64) -> Result<()> {
        let principal = &caller.principal;
        self.require_auth_enabled()?;
        let row = self.store.api_key_row(id).await?.ok_or(Error::NotFound(API_KEY_NOT_FOUND))?;
        // Someone else's key does not exist as far as a non-admin can tell, system keys included.
        if row.key.user_id != principal.user_id && !principal.is_admin() {
            return Err(Error::NotFound(API_KEY_NOT_FOUND));
        }
        if row.key.system {
            return Err(Error::Forbidden("System API keys cannot be deleted here".into()));
        }
        self.remove_api_key(caller, &row.key).await
    }

    async fn issue_api_key(
        &self,
        caller: &Caller,
        owner_id: i64,
        created_by: Option<i64>,
        request: CreateApiKey,
    ) -> Result<(ApiKey, String)> {
        let name = request.name.trim();
        if name.is_empty() {
            return Err(Error::Invalid("Name must not be empty".into()));
        }
        if name.chars().count() > 256 {
            return Err(Error::Invalid("Name must be at most 256 characters long".into()));
        }
        let description = request.description.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
        if description.as_ref().is_some_and(|d| d.chars().count() > 4096) {
            return Err(Error::Invalid("Description must be at most 4096 characters long".into()));
        }
        let now = now_ms();
        if request.expires_at_ms.is_some_and(|exp| exp <= now) {
            return Err(Error::Invalid("Expiry must be in the future".into()));
        }
        if request.expires_at_ms.is_some_and(|exp| exp > LATEST_EXPIRY_MS) {
            return Err(Error::Invalid("Expiry must be before the year 10000".into()));
        }
        let nonce = Nonce::generate();
        let new = NewApiKey {
            owner_id,
            created_by,
            name: name.to_owned(),
            description,
            expires_at_ms: request.expires_at_ms,
        };
        let system = owner_id == self.system_user_id;
        let owner = self.store.user_by_id(owner_id).await?.map(|u| u.username).unwrap_or_default();
        let mut event = AuditEvent::by(EventType::ApiKeyCreated, caller)
            .with("name", new.name.as_str())
            .with("kind", if system { "system" } else { "user" })
            .with("owner", owner);
        if let Some(expires) = new.expires_at_ms {
            event = event.with("expires_at_ms", expires);
        }
        let codec = self.codec()?;
        let key = self.store.insert_api_key(&new, nonce.hash(), codec.signing_id(), now, &event).await?;
        let token =
            codec.issue(TokenId { kind: TokenKind::ApiKey, id: key.id }, &nonce, now, key.expires_at_ms)?;
        Ok((key, token))
    }

    async fn remove_api_key(&self, caller: &Caller, key: &ApiKey) -> Result<()> {
        let event = AuditEvent::by(EventType::ApiKeyDeleted, caller)
            .on(Subject::ApiKey(key.id, key.name.clone()))
            .concerning(key.user_id)
            .with("name", key.name.as_str())
            .with("kind", if key.system { "system" } else { "user" })
            .with("owner", key.username.as_str());
        if !self.store.delete_api_key(key.id, &event, now_ms()).await? {
            return Err(Error::NotFound(API_KEY_NOT_FOUND));
        }
        self.revoke(Revocation::ApiKey(key.id));
        Ok(())
    }
}

fn refuse_api_keys(principal: &Principal) -> Result<()> {
    if principal.is_api_key() {
        Err(Error::Forbidden("API keys cannot create API keys".into()))
    } else {
        Ok(())
    }
}
