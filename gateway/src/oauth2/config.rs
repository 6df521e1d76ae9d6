//! OAuth2 / OIDC identity providers from `PHOENIX_OAUTH2_<IDP>_<SUFFIX>`
//! (docs/phoenix-compat.md §10.1), with Phoenix's names, defaults and rules. Every mistake is
//! one start-up line naming the variable.

use std::fmt;

use ashgate_identity_client::env::{ConfigError, Env};
use ashgate_proto::identity::Role;

use crate::config::Secret;
use crate::oauth2::attribute::AttributePath;

/// The variable prefix.
const PREFIX: &str = "PHOENIX_OAUTH2_";

/// Every suffix Phoenix reads (`config.py` `_OAUTH2_CONFIG_SUFFIXES`).
const SUFFIXES: [&str; 18] = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "OIDC_CONFIG_URL",
    "DISPLAY_NAME",
    "ALLOW_SIGN_UP",
    "AUTO_LOGIN",
    "USE_PKCE",
    "TOKEN_ENDPOINT_AUTH_METHOD",
    "CLIENT_ASSERTION_FILE",
    "CLIENT_ASSERTION_FILE_ENV_VAR",
    "SCOPES",
    "EMAIL_ATTRIBUTE_PATH",
    "GROUPS_ATTRIBUTE_PATH",
    "ALLOWED_GROUPS",
    "ROLE_ATTRIBUTE_PATH",
    "ROLE_MAPPING",
    "ROLE_ATTRIBUTE_STRICT",
    "ROLE_RESYNC",
];

/// Names Phoenix reserves for its own OAuth2 authorization-server routes.
const RESERVED: [&str; 5] = ["authorize", "token", "revoke", "register", "consent"];

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuthMethod {
    /// HTTP Basic with client id and secret (Phoenix's default behaviour).
    ClientSecretBasic,
    /// Client id and secret in the form body.
    ClientSecretPost,
    /// A public client: no secret (PKCE protects the code).
    None,
}

/// `GROUPS_ATTRIBUTE_PATH` + `ALLOWED_GROUPS`: the user needs at least one listed group.
#[derive(Debug, Clone)]
pub struct GroupRule {
    /// Where the groups are in the claims.
    pub path: AttributePath,
    /// Accepted groups (exact, case-sensitive).
    pub allowed: Vec<String>,
}

/// `ROLE_ATTRIBUTE_PATH` and what goes with it.
#[derive(Debug, Clone)]
pub struct RoleRule {
    /// Where the provider's role is (a list means its first element).
    pub path: AttributePath,
    /// `ROLE_MAPPING`: provider role → ashgate role, in the order given.
    pub mapping: Vec<(String, Role)>,
    /// `ROLE_ATTRIBUTE_STRICT`: no mappable role means no sign-in.
    pub strict: bool,
    /// `ROLE_RESYNC` (true): existing users get the mapped role at every sign-in.
    pub resync: bool,
}

/// One configured identity provider.
#[derive(Clone)]
pub struct ProviderConfig {
    /// The `<IDP>` part, lower-cased: the route name (`/oauth2/<name>/login`).
    pub name: String,
    /// The button text after "Sign in with".
    pub display_name: String,
    /// `CLIENT_ID`.
    pub client_id: String,
    /// `CLIENT_SECRET` (absent for `none`).
    pub client_secret: Option<Secret>,
    /// `OIDC_CONFIG_URL`: the discovery document.
    pub discovery_url: url::Url,
    /// `ALLOW_SIGN_UP` (true).
    pub allow_sign_up: bool,
    /// `AUTO_LOGIN` (false).
    pub auto_login: bool,
    /// `TOKEN_ENDPOINT_AUTH_METHOD`.
    pub auth_method: TokenAuthMethod,
    /// `SCOPES`, requested beyond `openid email profile`.
    pub extra_scopes: Vec<String>,
    /// `EMAIL_ATTRIBUTE_PATH` (`email`).
    pub email_path: AttributePath,
    /// `GROUPS_ATTRIBUTE_PATH` + `ALLOWED_GROUPS`.
    pub groups: Option<GroupRule>,
    /// `ROLE_ATTRIBUTE_PATH` + `ROLE_MAPPING` + `ROLE_ATTRIBUTE_STRICT` + `ROLE_RESYNC`.
    pub role: Option<RoleRule>,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("discovery_url", &self.discovery_url.as_str())
            .finish_non_exhaustive()
    }
}

/// The `<IDP>` of a variable name, if it is one of Phoenix's OAuth2 variables. Like Phoenix's
/// `^PHOENIX_OAUTH2_(\w+)_(<suffix>)$`, the name part is as long as possible.
fn idp_of(var: &str) -> Option<String> {
    let rest = var.strip_prefix(PREFIX)?;
    SUFFIXES
        .iter()
        .filter_map(|suffix| rest.strip_suffix(suffix)?.strip_suffix('_'))
        .filter(|idp| !idp.is_empty())
        .max_by_key(|idp| idp.len())
        .map(str::to_ascii_lowercase)
}

/// Phoenix's display name: two special cases, else `_` → space in Python's Title Case.
pub fn display_name(idp: &str) -> String {
    match idp {
        "aws_cognito" => "AWS Cognito".into(),
        "microsoft_entra_id" => "Microsoft Entra ID".into(),
        _ => {
            let mut out = String::with_capacity(idp.len());
            let mut after_letter = false;
            for c in idp.replace('_', " ").chars() {
                if c.is_alphabetic() {
                    if after_letter {
                        out.extend(c.to_lowercase());
                    } else {
                        out.extend(c.to_uppercase());
                    }
                    after_letter = true;
                } else {
                    out.push(c);
                    after_letter = false;
                }
            }
            out
        }
    }
}

/// Whether a discovery URL may be plain http (Phoenix: loopback hosts only).
fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Every provider in the environment, sorted by name (Phoenix's order).
pub fn providers_from_env(env: &Env) -> Result<Vec<ProviderConfig>, ConfigError> {
    let mut names: Vec<String> = env.with_prefix(PREFIX).filter_map(|(k, _)| idp_of(k)).collect();
    names.sort();
    names.dedup();
    names.iter().map(|name| provider_from_env(env, name)).collect()
}

fn provider_from_env(env: &Env, name: &str) -> Result<ProviderConfig, ConfigError> {
    let upper = name.to_ascii_uppercase();
    let var = |suffix: &str| format!("{PREFIX}{upper}_{suffix}");
    let get = |suffix: &str| env.string(&var(suffix));
    let client_id_var = var("CLIENT_ID");
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(ConfigError::new(
            &client_id_var,
            "the provider name may only use letters, digits and '_'",
        ));
    }
    if RESERVED.contains(&name) {
        return Err(ConfigError::new(&client_id_var, format!("the provider name {name:?} is reserved")));
    }
    let client_id = get("CLIENT_ID").ok_or_else(|| ConfigError::new(&client_id_var, "is required"))?;
    let auth_method = match get("TOKEN_ENDPOINT_AUTH_METHOD").map(|m| m.to_ascii_lowercase()).as_deref() {
        None | Some("client_secret_basic") => TokenAuthMethod::ClientSecretBasic,
        Some("client_secret_post") => TokenAuthMethod::ClientSecretPost,
        Some("none") => TokenAuthMethod::None,
        Some("client_assertion_jwt") => {
            return Err(ConfigError::new(
                &var("TOKEN_ENDPOINT_AUTH_METHOD"),
                "client_assertion_jwt is not supported by ashgate; use client_secret_basic, client_secret_post or none",
            ));
        }
        Some(_) => {
            return Err(ConfigError::new(
                &var("TOKEN_ENDPOINT_AUTH_METHOD"),
                "must be client_secret_basic, client_secret_post or none",
            ));
        }
    };
    for suffix in ["CLIENT_ASSERTION_FILE", "CLIENT_ASSERTION_FILE_ENV_VAR"] {
        if get(suffix).is_some() {
            return Err(ConfigError::new(&var(suffix), "client assertions are not supported by ashgate"));
        }
    }
    let client_secret = get("CLIENT_SECRET").map(Secret::new);
    if client_secret.is_none() && auth_method != TokenAuthMethod::None {
        return Err(ConfigError::new(
            &var("CLIENT_SECRET"),
            "is required unless TOKEN_ENDPOINT_AUTH_METHOD is none",
        ));
    }
    let url_var = var("OIDC_CONFIG_URL");
    let raw_url = get("OIDC_CONFIG_URL").ok_or_else(|| ConfigError::new(&url_var, "is required"))?;
    let discovery_url = url::Url::parse(&raw_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| ConfigError::new(&url_var, "must be an absolute http(s) URL"))?;
    if discovery_url.scheme() != "https" && !is_loopback_host(&discovery_url) {
        return Err(ConfigError::new(&url_var, "must use https (plain http only for localhost)"));
    }
    let path = |suffix: &str| get(suffix).map(|p| AttributePath::compile(&var(suffix), &p)).transpose();
    let groups = match (path("GROUPS_ATTRIBUTE_PATH")?, get("ALLOWED_GROUPS")) {
        (None, None) => None,
        (Some(path), Some(list)) => {
            let allowed: Vec<String> =
                list.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect();
            if allowed.is_empty() {
                return Err(ConfigError::new(&var("ALLOWED_GROUPS"), "must name at least one group"));
            }
            Some(GroupRule { path, allowed })
        }
        (Some(_), None) => {
            return Err(ConfigError::new(&var("ALLOWED_GROUPS"), "is required with GROUPS_ATTRIBUTE_PATH"));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(&var("GROUPS_ATTRIBUTE_PATH"), "is required with ALLOWED_GROUPS"));
        }
    };
    let role = match path("ROLE_ATTRIBUTE_PATH")? {
        Some(path) => Some(RoleRule {
            path,
            mapping: get("ROLE_MAPPING")
                .map(|m| role_mapping(&var("ROLE_MAPPING"), &m))
                .transpose()?
                .unwrap_or_default(),
            strict: env.bool(&var("ROLE_ATTRIBUTE_STRICT"), false)?,
            resync: env.bool(&var("ROLE_RESYNC"), true)?,
        }),
        None => {
            for suffix in ["ROLE_MAPPING", "ROLE_ATTRIBUTE_STRICT", "ROLE_RESYNC"] {
                if get(suffix).is_some() {
                    return Err(ConfigError::new(&var(suffix), "requires ROLE_ATTRIBUTE_PATH"));
                }
            }
            None
        }
    };
    // PKCE is always used by ashgate; the switch is still validated as Phoenix does.
    env.bool(&var("USE_PKCE"), false)?;
    Ok(ProviderConfig {
        display_name: get("DISPLAY_NAME").unwrap_or_else(|| display_name(name)),
        name: name.to_owned(),
        client_id,
        client_secret,
        discovery_url,
        allow_sign_up: env.bool(&var("ALLOW_SIGN_UP"), true)?,
        auto_login: env.bool(&var("AUTO_LOGIN"), false)?,
        auth_method,
        extra_scopes: get("SCOPES")
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        email_path: match path("EMAIL_ATTRIBUTE_PATH")? {
            Some(p) => p,
            None => AttributePath::compile(&var("EMAIL_ATTRIBUTE_PATH"), "email")?,
        },
        groups,
        role,
    })
}

/// `IdpRole:ROLE,...` with ADMIN, MEMBER or VIEWER (any case); SYSTEM is refused.
fn role_mapping(var: &str, value: &str) -> Result<Vec<(String, Role)>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (idp_role, role) = entry
                .rsplit_once(':')
                .ok_or_else(|| ConfigError::new(var, format!("entry {entry:?} must be IdpRole:ROLE")))?;
            let role = match role.trim().to_ascii_uppercase().as_str() {
                "ADMIN" => Role::Admin,
                "MEMBER" => Role::Member,
                "VIEWER" => Role::Viewer,
                other => {
                    return Err(ConfigError::new(
                        var,
                        format!("role {other:?} must be ADMIN, MEMBER or VIEWER"),
                    ));
                }
            };
            Ok((idp_role.trim().to_owned(), role))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Env {
        Env::from_pairs([
            ("PHOENIX_OAUTH2_GOOGLE_CLIENT_ID", "id"),
            ("PHOENIX_OAUTH2_GOOGLE_CLIENT_SECRET", "secret"),
            (
                "PHOENIX_OAUTH2_GOOGLE_OIDC_CONFIG_URL",
                "https://accounts.google.com/.well-known/openid-configuration",
            ),
        ])
    }

    fn err(env: Env) -> String {
        providers_from_env(&env).unwrap_err().to_string()
    }

    #[test]
    fn names_and_display_names() {
        assert_eq!(idp_of("PHOENIX_OAUTH2_MY_IDP_CLIENT_ID").as_deref(), Some("my_idp"));
        assert_eq!(idp_of("PHOENIX_OAUTH2_X_ROLE_ATTRIBUTE_STRICT").as_deref(), Some("x"));
        assert_eq!(idp_of("PHOENIX_OAUTH2_CLIENT_ID"), None);
        assert_eq!(idp_of("PHOENIX_OAUTH2_X_UNKNOWN"), None);
        assert_eq!(display_name("aws_cognito"), "AWS Cognito");
        assert_eq!(display_name("microsoft_entra_id"), "Microsoft Entra ID");
        assert_eq!(display_name("my_idp"), "My Idp");
        assert_eq!(display_name("auth0"), "Auth0");
        let providers = providers_from_env(&base()).unwrap();
        assert_eq!(providers.len(), 1);
        let google = providers.first().unwrap();
        assert_eq!((google.name.as_str(), google.display_name.as_str()), ("google", "Google"));
        assert!(google.allow_sign_up && !google.auto_login);
        assert_eq!(google.auth_method, TokenAuthMethod::ClientSecretBasic);
    }

    #[test]
    fn rules_name_the_variable() {
        let env = base().with("PHOENIX_OAUTH2_GOOGLE_OIDC_CONFIG_URL", "http://idp.example.com/x");
        assert!(err(env).starts_with("PHOENIX_OAUTH2_GOOGLE_OIDC_CONFIG_URL: must use https"));
        let ok = base().with("PHOENIX_OAUTH2_GOOGLE_OIDC_CONFIG_URL", "http://127.0.0.1:9/x");
        assert!(providers_from_env(&ok).is_ok());
        let env = Env::from_pairs([("PHOENIX_OAUTH2_X_CLIENT_SECRET", "s")]);
        assert_eq!(err(env), "PHOENIX_OAUTH2_X_CLIENT_ID: is required");
        let env = base().with("PHOENIX_OAUTH2_TOKEN_CLIENT_ID", "x");
        assert!(err(env).contains("reserved"));
        let env = base().with("PHOENIX_OAUTH2_GOOGLE_ALLOWED_GROUPS", "a");
        assert!(err(env).starts_with("PHOENIX_OAUTH2_GOOGLE_GROUPS_ATTRIBUTE_PATH:"));
        let env = base().with("PHOENIX_OAUTH2_GOOGLE_ROLE_MAPPING", "a:ADMIN");
        assert!(err(env).starts_with("PHOENIX_OAUTH2_GOOGLE_ROLE_MAPPING: requires"));
        let env = base()
            .with("PHOENIX_OAUTH2_GOOGLE_ROLE_ATTRIBUTE_PATH", "role")
            .with("PHOENIX_OAUTH2_GOOGLE_ROLE_MAPPING", "a:SYSTEM");
        assert!(err(env).starts_with("PHOENIX_OAUTH2_GOOGLE_ROLE_MAPPING:"));
        let env = base().with("PHOENIX_OAUTH2_GOOGLE_EMAIL_ATTRIBUTE_PATH", "a[");
        assert!(err(env).starts_with("PHOENIX_OAUTH2_GOOGLE_EMAIL_ATTRIBUTE_PATH:"));
        let env = base().with("PHOENIX_OAUTH2_GOOGLE_ALLOW_SIGN_UP", "yes");
        assert_eq!(err(env), "PHOENIX_OAUTH2_GOOGLE_ALLOW_SIGN_UP: must be true or false");
        let env = Env::from_pairs([
            ("PHOENIX_OAUTH2_P_CLIENT_ID", "id"),
            ("PHOENIX_OAUTH2_P_OIDC_CONFIG_URL", "https://p.example.com"),
        ]);
        assert!(err(env.clone()).starts_with("PHOENIX_OAUTH2_P_CLIENT_SECRET:"));
        let public = env.with("PHOENIX_OAUTH2_P_TOKEN_ENDPOINT_AUTH_METHOD", "None");
        assert_eq!(providers_from_env(&public).unwrap().first().unwrap().auth_method, TokenAuthMethod::None);
    }

    #[test]
    fn role_mapping_is_parsed() {
        let mapping = role_mapping("V", "Owner:admin, dev:Member ,ns:x:viewer").unwrap();
        assert_eq!(
            mapping,
            vec![("Owner".into(), Role::Admin), ("dev".into(), Role::Member), ("ns:x".into(), Role::Viewer)]
        );
        assert!(role_mapping("V", "nocolon").is_err());
    }
}
