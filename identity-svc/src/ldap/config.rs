//! `PHOENIX_LDAP_*`: every variable of Phoenix's `LDAPConfig.from_env` with its default and its
//! rules (docs/phoenix-compat.md §9.1), plus ashgate's deadlines. LDAP is on iff
//! `PHOENIX_LDAP_HOST` is set; every other error stops start-up with one line naming the
//! variable and the rule.

use std::sync::Arc;
use std::time::Duration;

use ashgate_identity_client::env::{ConfigError, Env};
use serde_json::Value;

use super::dn::{canonical_dn, fill_filter, is_valid_dn};
use crate::principal::Role;
use crate::secret::Secret;

const HOST: &str = "PHOENIX_LDAP_HOST";
const PORT: &str = "PHOENIX_LDAP_PORT";
const TLS_MODE: &str = "PHOENIX_LDAP_TLS_MODE";
const TLS_VERIFY: &str = "PHOENIX_LDAP_TLS_VERIFY";
const BIND_DN: &str = "PHOENIX_LDAP_BIND_DN";
const BIND_PASSWORD: &str = "PHOENIX_LDAP_BIND_PASSWORD";
const USER_SEARCH_BASE_DNS: &str = "PHOENIX_LDAP_USER_SEARCH_BASE_DNS";
const USER_SEARCH_FILTER: &str = "PHOENIX_LDAP_USER_SEARCH_FILTER";
const ATTR_EMAIL: &str = "PHOENIX_LDAP_ATTR_EMAIL";
const ATTR_DISPLAY_NAME: &str = "PHOENIX_LDAP_ATTR_DISPLAY_NAME";
const ATTR_MEMBER_OF: &str = "PHOENIX_LDAP_ATTR_MEMBER_OF";
const ATTR_UNIQUE_ID: &str = "PHOENIX_LDAP_ATTR_UNIQUE_ID";
const GROUP_SEARCH_BASE_DNS: &str = "PHOENIX_LDAP_GROUP_SEARCH_BASE_DNS";
const GROUP_SEARCH_FILTER: &str = "PHOENIX_LDAP_GROUP_SEARCH_FILTER";
const GROUP_SEARCH_FILTER_USER_ATTR: &str = "PHOENIX_LDAP_GROUP_SEARCH_FILTER_USER_ATTR";
const GROUP_ROLE_MAPPINGS: &str = "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS";
const ALLOW_SIGN_UP: &str = "PHOENIX_LDAP_ALLOW_SIGN_UP";
/// Phoenix's default user filter (Active Directory).
pub const DEFAULT_USER_SEARCH_FILTER: &str = "(&(objectClass=user)(sAMAccountName=%s))";

/// How the connection to the directory is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain LDAP upgraded with the StartTLS extended operation before any credential is sent.
    StartTls,
    /// TLS from the first byte (`ldaps`, port 636).
    Ldaps,
    /// No encryption: passwords cross the network in the clear (testing only).
    None,
}

/// One directory server, tried in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapHost {
    /// Host name or IP address (also the name its TLS certificate must carry).
    pub name: String,
    /// `host:port` in `PHOENIX_LDAP_HOST`, else `PHOENIX_LDAP_PORT`.
    pub port: u16,
}

/// Which groups a mapping matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupMatch {
    /// `"*"`: every authenticated user.
    Any,
    /// A group DN, canonical.
    Dn(String),
}

/// One entry of `PHOENIX_LDAP_GROUP_ROLE_MAPPINGS`; the first that matches decides the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRoleMapping {
    /// The group.
    pub group: GroupMatch,
    /// ADMIN, MEMBER or VIEWER.
    pub role: Role,
}

/// The directory sign-in configuration (its `Debug` shows neither the bind password nor the
/// TLS key material).
#[derive(Clone)]
pub struct LdapConfig {
    /// `PHOENIX_LDAP_HOST`: fail-over happens on connection errors only.
    pub hosts: Vec<LdapHost>,
    /// `PHOENIX_LDAP_TLS_MODE` (`starttls`).
    pub tls_mode: TlsMode,
    /// The TLS client configuration built from `PHOENIX_LDAP_TLS_*` (none for `TlsMode::None`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// `PHOENIX_LDAP_BIND_DN` + `PHOENIX_LDAP_BIND_PASSWORD`: the service account that searches;
    /// `None` searches anonymously.
    pub bind: Option<(String, Secret)>,
    /// `PHOENIX_LDAP_USER_SEARCH_BASE_DNS`, searched in order.
    pub user_search_base_dns: Vec<String>,
    /// `PHOENIX_LDAP_USER_SEARCH_FILTER` with `%s` for the escaped username.
    pub user_search_filter: String,
    /// `PHOENIX_LDAP_ATTR_EMAIL` (`mail`); `None` = the directory has no emails (`null`).
    pub attr_email: Option<String>,
    /// `PHOENIX_LDAP_ATTR_DISPLAY_NAME` (`displayName`).
    pub attr_display_name: Option<String>,
    /// `PHOENIX_LDAP_ATTR_MEMBER_OF` (`memberOf`), read when no group search is configured.
    pub attr_member_of: Option<String>,
    /// `PHOENIX_LDAP_ATTR_UNIQUE_ID` (objectGUID, entryUUID, nsUniqueId).
    pub attr_unique_id: Option<String>,
    /// `PHOENIX_LDAP_GROUP_SEARCH_BASE_DNS`.
    pub group_search_base_dns: Vec<String>,
    /// `PHOENIX_LDAP_GROUP_SEARCH_FILTER` (POSIX groups), with `%s`.
    pub group_search_filter: Option<String>,
    /// `PHOENIX_LDAP_GROUP_SEARCH_FILTER_USER_ATTR`: the user attribute put in for `%s`
    /// (default: the login username).
    pub group_search_filter_user_attr: Option<String>,
    /// `PHOENIX_LDAP_GROUP_ROLE_MAPPINGS`: at least one.
    pub group_role_mappings: Vec<GroupRoleMapping>,
    /// `PHOENIX_LDAP_ALLOW_SIGN_UP` (true).
    pub allow_sign_up: bool,
    /// `ASHGATE_LDAP_CONNECT_TIMEOUT_SECONDS` (5): TCP connection and TLS handshake, per host.
    pub connect_timeout: Duration,
    /// `ASHGATE_LDAP_OPERATION_TIMEOUT_SECONDS` (10): each bind and search.
    pub operation_timeout: Duration,
    /// `ASHGATE_LDAP_TIMEOUT_SECONDS` (20): the whole sign-in, every host included.
    pub timeout: Duration,
}

impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("hosts", &self.hosts)
            .field("tls_mode", &self.tls_mode)
            .field("tls", &self.tls.is_some())
            .field("bind_dn", &self.bind.as_ref().map(|(dn, _)| dn))
            .field("user_search_base_dns", &self.user_search_base_dns)
            .field("user_search_filter", &self.user_search_filter)
            .field("group_search_filter", &self.group_search_filter)
            .field("group_role_mappings", &self.group_role_mappings)
            .field("allow_sign_up", &self.allow_sign_up)
            .finish_non_exhaustive()
    }
}

impl LdapConfig {
    /// `None` unless `PHOENIX_LDAP_HOST` is set; `admins` is `PHOENIX_ADMINS` (refused when the
    /// directory has no emails).
    pub fn from_env(env: &Env, admins: &[(String, String)]) -> Result<Option<Self>, ConfigError> {
        let Some(host_list) = raw(env, HOST) else { return Ok(None) };
        let group_role_mappings = mappings(env)?;
        let tls_mode = match env.string(TLS_MODE).map(|m| m.to_ascii_lowercase()).as_deref() {
            None | Some("starttls") => TlsMode::StartTls,
            Some("ldaps") => TlsMode::Ldaps,
            Some("none") => TlsMode::None,
            Some(other) => {
                return Err(ConfigError::new(
                    TLS_MODE,
                    format!("must be 'none', 'starttls', or 'ldaps' (got {other:?})"),
                ));
            }
        };
        let port = env.port(PORT, if tls_mode == TlsMode::Ldaps { 636 } else { 389 })?;
        let hosts = hosts(host_list, port, tls_mode)?;

        let group_search_filter = env.string(GROUP_SEARCH_FILTER);
        if let Some(filter) = &group_search_filter {
            check_filter(GROUP_SEARCH_FILTER, filter)?;
        }
        let group_search_base_dns = match raw(env, GROUP_SEARCH_BASE_DNS).filter(|v| !v.is_empty()) {
            Some(json) => dn_list(GROUP_SEARCH_BASE_DNS, json)?,
            None => Vec::new(),
        };
        if group_search_filter.is_some() && group_search_base_dns.is_empty() {
            return Err(ConfigError::new(
                GROUP_SEARCH_BASE_DNS,
                format!("is required when {GROUP_SEARCH_FILTER} is set (POSIX group search)"),
            ));
        }
        let group_search_filter_user_attr = attribute(env, GROUP_SEARCH_FILTER_USER_ATTR, None)?;
        if group_search_filter_user_attr.is_some() && group_search_filter.is_none() {
            return Err(ConfigError::new(
                GROUP_SEARCH_FILTER_USER_ATTR,
                format!("only applies with {GROUP_SEARCH_FILTER}, which is not set"),
            ));
        }

        let tls_verify = env.bool(TLS_VERIFY, true)?;
        if tls_mode == TlsMode::None {
            tracing::warn!("{TLS_MODE}=none: passwords cross the network in plaintext; testing only");
        } else if !tls_verify {
            tracing::warn!("{TLS_VERIFY}=false: the directory's certificate is not checked (MITM possible)");
        }
        let tls = match tls_mode {
            TlsMode::None => None,
            TlsMode::StartTls | TlsMode::Ldaps => Some(super::tls::client_config(env, tls_verify)?),
        };

        let user_search_base_dns = match raw(env, USER_SEARCH_BASE_DNS).filter(|v| !v.is_empty()) {
            Some(json) => dn_list(USER_SEARCH_BASE_DNS, json)?,
            None => {
                return Err(ConfigError::new(
                    USER_SEARCH_BASE_DNS,
                    r#"must be set, e.g. '["OU=Users,DC=corp,DC=com"]'"#,
                ));
            }
        };
        if user_search_base_dns.is_empty() {
            return Err(ConfigError::new(USER_SEARCH_BASE_DNS, "must contain at least one base DN"));
        }
        let allow_sign_up = env.bool(ALLOW_SIGN_UP, true)?;

        // Unset means `mail` (Phoenix warns it will become required); empty or `null` means
        // the directory has no emails and users are known by their unique id alone.
        let attr_email = match raw(env, ATTR_EMAIL) {
            None => {
                tracing::warn!(
                    "{ATTR_EMAIL} is not set: using 'mail' (set it to 'mail', or 'null' without emails)"
                );
                Some("mail".to_owned())
            }
            Some(v) if v.is_empty() || v.eq_ignore_ascii_case("null") => None,
            Some(_) => attribute(env, ATTR_EMAIL, None)?,
        };
        let attr_display_name = attribute(env, ATTR_DISPLAY_NAME, Some("displayName"))?;
        let attr_member_of = attribute(env, ATTR_MEMBER_OF, Some("memberOf"))?;
        let attr_unique_id = attribute(env, ATTR_UNIQUE_ID, None)?;
        if attr_email.is_none() {
            if attr_unique_id.is_none() {
                return Err(ConfigError::new(
                    ATTR_UNIQUE_ID,
                    format!("is required when {ATTR_EMAIL} is 'null' (it identifies returning users)"),
                ));
            }
            if !allow_sign_up {
                return Err(ConfigError::new(
                    ALLOW_SIGN_UP,
                    format!(
                        "must be true when {ATTR_EMAIL} is 'null' (users can only be created at first sign-in)"
                    ),
                ));
            }
            if !admins.is_empty() {
                return Err(ConfigError::new(
                    "PHOENIX_ADMINS",
                    format!("is not supported when {ATTR_EMAIL} is 'null'; use {GROUP_ROLE_MAPPINGS}"),
                ));
            }
        }

        let user_search_filter =
            env.string(USER_SEARCH_FILTER).unwrap_or_else(|| DEFAULT_USER_SEARCH_FILTER.to_owned());
        check_filter(USER_SEARCH_FILTER, &user_search_filter)?;
        let bind_dn = env.string(BIND_DN);
        if let Some(dn) = bind_dn.as_deref().filter(|dn| !is_valid_dn(dn)) {
            return Err(ConfigError::new(BIND_DN, format!("has invalid LDAP DN syntax: {dn:?}")));
        }
        let bind = match (bind_dn, env.string(BIND_PASSWORD)) {
            (None, None) => None,
            (Some(dn), Some(password)) => Some((dn, Secret::new(password))),
            (Some(_), None) => {
                return Err(ConfigError::new(BIND_PASSWORD, format!("is required with {BIND_DN}")));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(BIND_DN, format!("is required with {BIND_PASSWORD}")));
            }
        };
        // At most a minute (Phoenix gives up after 60 s; the gateway waits 65 s for an answer).
        let seconds = |var, default| env.u64_in(var, default, 1, 60).map(Duration::from_secs);
        Ok(Some(Self {
            hosts,
            tls_mode,
            tls,
            bind,
            user_search_base_dns,
            user_search_filter,
            attr_email,
            attr_display_name,
            attr_member_of,
            attr_unique_id,
            group_search_base_dns,
            group_search_filter,
            group_search_filter_user_attr,
            group_role_mappings,
            allow_sign_up,
            connect_timeout: seconds("ASHGATE_LDAP_CONNECT_TIMEOUT_SECONDS", 5)?,
            operation_timeout: seconds("ASHGATE_LDAP_OPERATION_TIMEOUT_SECONDS", 10)?,
            timeout: seconds("ASHGATE_LDAP_TIMEOUT_SECONDS", 20)?,
        }))
    }

    /// The role of a member of `groups` (DNs as the directory spells them): the first mapping
    /// that matches, `None` when none does (sign-in refused).
    pub fn role_for(&self, groups: &[String]) -> Option<Role> {
        let groups: Vec<String> = groups.iter().filter_map(|g| canonical_dn(g)).collect();
        self.group_role_mappings
            .iter()
            .find(|m| match &m.group {
                GroupMatch::Any => true,
                GroupMatch::Dn(dn) => groups.iter().any(|g| g == dn),
            })
            .map(|m| m.role)
    }
}

/// A variable's value as set, trimmed: `Some("")` when set empty (Phoenix tells the two apart).
fn raw<'a>(env: &'a Env, var: &'a str) -> Option<&'a str> {
    env.with_prefix(var).find(|(name, _)| *name == var).map(|(_, value)| value)
}

/// An attribute name: `default` when unset, `None` when set empty, never with spaces.
fn attribute(env: &Env, var: &str, default: Option<&str>) -> Result<Option<String>, ConfigError> {
    let value = match raw(env, var) {
        None => default.map(str::to_owned),
        Some("") => None,
        Some(value) => Some(value.to_owned()),
    };
    match value {
        Some(name) if name.contains(char::is_whitespace) => Err(ConfigError::new(
            var,
            format!(
                "{name:?} contains spaces; LDAP attribute names have none (did you mean {:?}?)",
                name.replace(char::is_whitespace, "")
            ),
        )),
        other => Ok(other),
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, comma-separated.
fn hosts(list: &str, port: u16, tls_mode: TlsMode) -> Result<Vec<LdapHost>, ConfigError> {
    let mut hosts = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry.contains("://") {
            return Err(ConfigError::new(
                HOST,
                format!("{entry:?}: give host names (host or host:port), not URLs; {TLS_MODE} chooses TLS"),
            ));
        }
        let (name, entry_port) = match entry.strip_prefix('[') {
            Some(rest) => {
                let (address, after) = rest
                    .split_once(']')
                    .ok_or_else(|| ConfigError::new(HOST, format!("{entry:?} is not host[:port]")))?;
                (address, after.strip_prefix(':'))
            }
            None => match entry.split_once(':') {
                Some((name, p)) if !p.contains(':') => (name, Some(p)),
                Some(_) => (entry, None),
                None => (entry, None),
            },
        };
        let port = match entry_port {
            None => port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ConfigError::new(HOST, format!("{entry:?} has an invalid port")))?,
        };
        let ipv6 = name.parse::<std::net::Ipv6Addr>().is_ok();
        if ipv6 && tls_mode != TlsMode::None {
            return Err(ConfigError::new(
                HOST,
                format!("{entry:?}: TLS needs a host name or IPv4 address, not an IPv6 address"),
            ));
        }
        let valid = ipv6
            || (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)));
        if !valid {
            return Err(ConfigError::new(HOST, format!("{entry:?} is not a host name or address")));
        }
        hosts.push(LdapHost { name: name.to_owned(), port });
    }
    if hosts.is_empty() {
        return Err(ConfigError::new(
            HOST,
            "must contain at least one non-empty host, e.g. 'ldap.example.com' or 'dc1.corp.com,dc2.corp.com'",
        ));
    }
    Ok(hosts)
}

/// A filter template: it has `%s`, and with a value put in it is one valid filter.
fn check_filter(var: &str, template: &str) -> Result<(), ConfigError> {
    if !template.contains("%s") {
        return Err(ConfigError::new(var, format!("must contain the '%s' placeholder (got {template:?})")));
    }
    if ldap3::parse_filter(fill_filter(template, "x")).is_err() {
        return Err(ConfigError::new(var, format!("{template:?} is not a valid LDAP filter (RFC 4515)")));
    }
    Ok(())
}

/// A JSON array of DNs, each valid.
fn dn_list(var: &str, json: &str) -> Result<Vec<String>, ConfigError> {
    let example = r#"e.g. '["ou=users,dc=example,dc=com"]'"#;
    let value: Value = serde_json::from_str(json)
        .map_err(|e| ConfigError::new(var, format!("is not valid JSON: {e}; {example}")))?;
    let Value::Array(items) = value else {
        return Err(ConfigError::new(var, format!("must be a JSON array, {example}")));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let dn = item.as_str().ok_or_else(|| ConfigError::new(var, format!("[{i}] must be a string")))?;
            let dn = dn.trim();
            if is_valid_dn(dn) {
                Ok(dn.to_owned())
            } else {
                Err(ConfigError::new(var, format!("[{i}] has invalid LDAP DN syntax: {dn:?}")))
            }
        })
        .collect()
}

/// `PHOENIX_LDAP_GROUP_ROLE_MAPPINGS`: `[{"group_dn": "<dn>|*", "role": "ADMIN|MEMBER|VIEWER"}]`.
fn mappings(env: &Env) -> Result<Vec<GroupRoleMapping>, ConfigError> {
    let var = GROUP_ROLE_MAPPINGS;
    let json = env.string(var).unwrap_or_else(|| "[]".to_owned());
    let value: Value =
        serde_json::from_str(&json).map_err(|e| ConfigError::new(var, format!("is not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(ConfigError::new(var, r#"must be a JSON array of {"group_dn": ..., "role": ...}"#));
    };
    let mut mappings = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(fields) = item else {
            return Err(ConfigError::new(var, format!("[{i}] must be an object")));
        };
        let group = match fields.get("group_dn") {
            None => return Err(ConfigError::new(var, format!("[{i}] is missing the field 'group_dn'"))),
            Some(Value::String(dn)) if dn.trim() == "*" => GroupMatch::Any,
            Some(Value::String(dn)) if !dn.trim().is_empty() => match canonical_dn(dn.trim()) {
                Some(canonical) => GroupMatch::Dn(canonical),
                None => {
                    return Err(ConfigError::new(
                        var,
                        format!("[{i}].group_dn has invalid LDAP DN syntax: {dn:?}"),
                    ));
                }
            },
            Some(_) => {
                return Err(ConfigError::new(var, format!("[{i}].group_dn must be a non-empty string")));
            }
        };
        let role = match fields.get("role") {
            None => return Err(ConfigError::new(var, format!("[{i}] is missing the field 'role'"))),
            Some(Value::String(role)) => Role::parse(role).filter(|r| *r != Role::System),
            Some(_) => None,
        }
        .ok_or_else(|| {
            ConfigError::new(var, format!("[{i}].role must be ADMIN, MEMBER or VIEWER (any case)"))
        })?;
        mappings.push(GroupRoleMapping { group, role });
    }
    if mappings.is_empty() {
        return Err(ConfigError::new(
            var,
            r#"must contain at least one mapping, e.g. '[{"group_dn": "*", "role": "MEMBER"}]'"#,
        ));
    }
    Ok(mappings)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
