//! Talking to the directory (Phoenix `server/ldap.py` `LDAPAuthenticator`): connect with the
//! configured TLS, search for the user as the service account (or anonymously), bind as the
//! user on a connection of their own, read email, display name, unique id and groups, and map
//! the groups to a role.
//!
//! Every connection, bind and search runs under a deadline and the whole sign-in under another,
//! so a directory that hangs answers "unavailable" in bounded time. Hosts are tried in the
//! order given; the next is tried only when one cannot be reached or stops answering, never
//! because a password was wrong or a user unknown (replicas hold the same people).

use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchOptions};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::{LdapConfig, LdapHost, TlsMode};
use super::dn::fill_filter;
use super::entry::Entry;
use crate::principal::Role;
use crate::secret::Secret;

/// Directory operations at once (Phoenix caps its LDAP threads at 10): a flood of sign-ins
/// queues here, within its deadline, instead of opening unbounded connections.
const CONCURRENT_SIGN_INS: usize = 16;

/// Who the directory says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// Lower-cased email; `None` when the directory has none (`PHOENIX_LDAP_ATTR_EMAIL=null`).
    pub email: Option<String>,
    /// `displayName`, else the login username.
    pub display_name: String,
    /// The immutable id (objectGUID, entryUUID), when configured.
    pub unique_id: Option<String>,
    /// From the first matching group mapping.
    pub role: Role,
}

/// Why the directory did not sign someone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryError {
    /// Unknown user, wrong password, ambiguous match, no mapped group, missing attribute: the
    /// caller hears only "Invalid username and/or password".
    Refused,
    /// No host answered in time, or the directory is misconfigured (logged).
    Unavailable,
}

/// How one host's attempt ended, when it did not sign the user in.
enum Failure {
    /// Final: the answer would be the same on every replica.
    Refused,
    /// This host cannot be reached or does not answer: try the next.
    Unreachable(String),
    /// Final: the configuration does not work with this directory (logged for the operator).
    Broken(String),
}

/// The directory client of one identity replica.
pub struct Directory {
    config: LdapConfig,
    permits: Semaphore,
}

/// A connection whose driver task ends with it (a timed-out operation leaves nothing behind).
struct Connection {
    ldap: Ldap,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The time left for the whole sign-in.
struct Budget(Instant);

impl Budget {
    /// `step`, or less when the whole sign-in has less left.
    fn limit(&self, step: Duration) -> Duration {
        step.min(self.0.saturating_duration_since(Instant::now()))
    }
}

impl Directory {
    /// A client for `config`.
    pub fn new(config: LdapConfig) -> Self {
        Self { config, permits: Semaphore::new(CONCURRENT_SIGN_INS) }
    }

    /// The configuration.
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    /// Checks `username` and `password` against the directory.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &Secret,
    ) -> Result<DirectoryUser, DirectoryError> {
        let budget = Budget(Instant::now() + self.config.timeout);
        let permit = tokio::time::timeout(budget.limit(self.config.timeout), self.permits.acquire()).await;
        let Ok(Ok(_permit)) = permit else {
            tracing::warn!("LDAP sign-in waited too long for a free directory connection");
            return Err(DirectoryError::Unavailable);
        };
        for host in &self.config.hosts {
            match self.try_host(host, username, password, &budget).await {
                Ok(user) => return Ok(user),
                Err(Failure::Refused) => return Err(DirectoryError::Refused),
                Err(Failure::Broken(reason)) => {
                    tracing::error!(host = %host.name, port = host.port, %reason, "LDAP sign-in cannot work");
                    return Err(DirectoryError::Unavailable);
                }
                Err(Failure::Unreachable(reason)) => {
                    tracing::warn!(host = %host.name, port = host.port, %reason, "LDAP server failed; trying the next");
                }
            }
        }
        tracing::error!("no LDAP server answered");
        Err(DirectoryError::Unavailable)
    }

    async fn try_host(
        &self,
        host: &LdapHost,
        username: &str,
        password: &Secret,
        budget: &Budget,
    ) -> Result<DirectoryUser, Failure> {
        let mut service = self.connect(host, budget).await?;
        if let Some((dn, secret)) = &self.config.bind {
            let bound = self.step(budget, service.ldap.simple_bind(dn, secret.expose())).await?;
            match bound.rc {
                0 => {}
                49 => {
                    return Err(Failure::Broken(
                        "the directory refused PHOENIX_LDAP_BIND_DN's password".into(),
                    ));
                }
                rc => return Err(result_failure(rc, "service account bind")),
            }
        }
        let Some(entry) = self.find_user(&mut service, username, budget).await? else {
            // Phoenix binds anyway, so an unknown name takes as long as a wrong password.
            let dummy = format!("cn=dummy-{},dc=invalid,dc=local", crate::token::random_token(8));
            let _ = self.bind_as(host, &dummy, password, budget).await;
            return Err(Failure::Refused);
        };
        if !self.bind_as(host, &entry.dn, password, budget).await? {
            return Err(Failure::Refused);
        }
        let email = match &self.config.attr_email {
            None => None,
            Some(attr) => match entry.first(attr) {
                Some(email) => Some(email.to_lowercase()),
                None => {
                    tracing::error!(attribute = %attr, "LDAP user has no email; populate it or set PHOENIX_LDAP_ATTR_EMAIL=null");
                    return Err(Failure::Refused);
                }
            },
        };
        let unique_id = match &self.config.attr_unique_id {
            None => None,
            Some(attr) => match entry.unique_id(attr) {
                Some(id) => Some(id),
                None => {
                    tracing::error!(attribute = %attr, "LDAP user lacks PHOENIX_LDAP_ATTR_UNIQUE_ID's attribute (objectGUID for AD, entryUUID for OpenLDAP?)");
                    return Err(Failure::Refused);
                }
            },
        };
        let display_name = self
            .config
            .attr_display_name
            .as_deref()
            .and_then(|attr| entry.first(attr))
            .unwrap_or_else(|| username.to_owned());
        let groups = self.groups_of(&mut service, &entry, username, budget).await?;
        let _ = tokio::time::timeout(budget.limit(Duration::from_millis(200)), service.ldap.unbind()).await;
        let Some(role) = self.config.role_for(&groups) else {
            tracing::info!("LDAP user is in no group of PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: sign-in refused");
            return Err(Failure::Refused);
        };
        Ok(DirectoryUser { email, display_name, unique_id, role })
    }

    /// Opens a connection to `host`, TLS established (StartTLS included) before it returns.
    async fn connect(&self, host: &LdapHost, budget: &Budget) -> Result<Connection, Failure> {
        let (scheme, starttls) = match self.config.tls_mode {
            TlsMode::Ldaps => ("ldaps", false),
            TlsMode::StartTls => ("ldap", true),
            TlsMode::None => ("ldap", false),
        };
        let address = if host.name.contains(':') { format!("[{}]", host.name) } else { host.name.clone() };
        let url = format!("{scheme}://{address}:{}", host.port);
        let limit = budget.limit(self.config.connect_timeout);
        let mut settings = LdapConnSettings::new().set_conn_timeout(limit);
        if let Some(tls) = &self.config.tls {
            settings = settings.set_config(tls.clone()).set_starttls(starttls);
        }
        let (conn, ldap) =
            match tokio::time::timeout(limit, LdapConnAsync::with_settings(settings, &url)).await {
                Err(_) => return Err(Failure::Unreachable(format!("no connection within {limit:?}"))),
                Ok(Err(error)) => return Err(Failure::Unreachable(format!("cannot connect: {error}"))),
                Ok(Ok(pair)) => pair,
            };
        let driver = tokio::spawn(async move {
            if let Err(error) = conn.drive().await {
                tracing::debug!(%error, "LDAP connection ended");
            }
        });
        Ok(Connection { ldap, driver })
    }

    /// One bind or search under the operation deadline; transport failures and timeouts mean
    /// the host is unreachable.
    async fn step<T>(
        &self,
        budget: &Budget,
        operation: impl Future<Output = Result<T, LdapError>>,
    ) -> Result<T, Failure> {
        let limit = budget.limit(self.config.operation_timeout);
        match tokio::time::timeout(limit, operation).await {
            Err(_) => Err(Failure::Unreachable(format!("no answer within {limit:?}"))),
            Ok(Err(LdapError::FilterParsing)) => {
                Err(Failure::Broken("a search filter does not parse".into()))
            }
            Ok(Err(error)) => Err(Failure::Unreachable(error.to_string())),
            Ok(Ok(value)) => Ok(value),
        }
    }

    /// The one entry the user filter matches in the first base DN where it matches anything;
    /// more than one there is refused (which of them would be arbitrary).
    async fn find_user(
        &self,
        service: &mut Connection,
        username: &str,
        budget: &Budget,
    ) -> Result<Option<Entry>, Failure> {
        let filter = fill_filter(&self.config.user_search_filter, username);
        let attrs: Vec<&str> = [
            &self.config.attr_email,
            &self.config.attr_display_name,
            &self.config.attr_member_of,
            &self.config.attr_unique_id,
            &self.config.group_search_filter_user_attr,
        ]
        .into_iter()
        .filter_map(|a| a.as_deref())
        .collect();
        for base in &self.config.user_search_base_dns {
            let search = service.ldap.with_search_options(SearchOptions::new().sizelimit(2)).search(
                base,
                Scope::Subtree,
                &filter,
                attrs.clone(),
            );
            let ldap3::SearchResult(raw, result) = self.step(budget, search).await?;
            let raw: Vec<_> = raw.into_iter().filter(|e| !e.is_ref() && !e.is_intermediate()).collect();
            match result.rc {
                0 | 10 => {}
                4 => {
                    tracing::error!(%base, "LDAP user search matched several entries: sign-in refused; make PHOENIX_LDAP_USER_SEARCH_FILTER specific");
                    return Err(Failure::Refused);
                }
                32 => {
                    tracing::warn!(%base, "LDAP user search base does not exist");
                    continue;
                }
                rc => return Err(result_failure(rc, "user search")),
            }
            let mut entries = raw.into_iter();
            match (entries.next(), entries.next()) {
                (None, _) => continue,
                (Some(_), Some(_)) => {
                    tracing::error!(%base, "LDAP user search matched several entries: sign-in refused; make PHOENIX_LDAP_USER_SEARCH_FILTER specific");
                    return Err(Failure::Refused);
                }
                (Some(raw), None) => {
                    return Entry::decode(raw)
                        .map(Some)
                        .ok_or_else(|| Failure::Unreachable("malformed search answer".into()));
                }
            }
        }
        Ok(None)
    }

    /// Binds as `dn` with `password` on a connection of its own: `Ok(true)` signed in,
    /// `Ok(false)` refused (wrong password, disabled account).
    async fn bind_as(
        &self,
        host: &LdapHost,
        dn: &str,
        password: &Secret,
        budget: &Budget,
    ) -> Result<bool, Failure> {
        let mut user = self.connect(host, budget).await?;
        let result = self.step(budget, user.ldap.simple_bind(dn, password.expose())).await?;
        let _ = tokio::time::timeout(budget.limit(Duration::from_millis(200)), user.ldap.unbind()).await;
        match result.rc {
            0 => Ok(true),
            51 | 52 => Err(result_failure(result.rc, "user bind")),
            _ => Ok(false),
        }
    }

    /// The user's group DNs: a group search when `PHOENIX_LDAP_GROUP_SEARCH_FILTER` is set
    /// (POSIX), else the member-of attribute (Active Directory, OpenLDAP's memberof overlay).
    async fn groups_of(
        &self,
        service: &mut Connection,
        entry: &Entry,
        username: &str,
        budget: &Budget,
    ) -> Result<Vec<String>, Failure> {
        let Some(template) = &self.config.group_search_filter else {
            return Ok(self
                .config
                .attr_member_of
                .as_deref()
                .map(|attr| entry.values(attr))
                .unwrap_or_default());
        };
        let value = match &self.config.group_search_filter_user_attr {
            None => username.to_owned(),
            Some(attr) => match entry.first(attr) {
                Some(value) => value,
                None => {
                    tracing::warn!(attribute = %attr, "LDAP user lacks PHOENIX_LDAP_GROUP_SEARCH_FILTER_USER_ATTR's attribute");
                    return Ok(Vec::new());
                }
            },
        };
        let filter = fill_filter(template, &value);
        let mut groups = Vec::new();
        for base in &self.config.group_search_base_dns {
            // "1.1": the DNs are all that is needed.
            let search = service.ldap.search(base, Scope::Subtree, &filter, vec!["1.1"]);
            let ldap3::SearchResult(raw, result) = self.step(budget, search).await?;
            match result.rc {
                0 | 10 => {}
                4 => {
                    tracing::warn!(%base, "LDAP group search hit the server's size limit: groups may be missing")
                }
                51 | 52 => return Err(result_failure(result.rc, "group search")),
                rc => {
                    tracing::warn!(%base, rc, "LDAP group search failed for this base");
                    continue;
                }
            }
            for raw in raw.into_iter().filter(|e| !e.is_ref() && !e.is_intermediate()) {
                if let Some(group) = Entry::decode(raw) {
                    groups.push(group.dn);
                }
            }
        }
        Ok(groups)
    }
}

/// A non-success result code: busy or unavailable (51, 52) means try another host; anything
/// else is a directory that does not accept what this configuration asks.
fn result_failure(rc: u32, operation: &str) -> Failure {
    match rc {
        51 | 52 => {
            Failure::Unreachable(format!("{operation}: the server is busy or unavailable (result {rc})"))
        }
        rc => Failure::Broken(format!("{operation} failed with LDAP result {rc}")),
    }
}
