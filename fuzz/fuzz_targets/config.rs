//! Configuration parsing: the `Env` rules and every service's configuration built from
//! arbitrary values of the variables that take structured text (`PHOENIX_ADMINS`,
//! `PHOENIX_CSRF_TRUSTED_ORIGINS`, OAuth2 provider settings with JMESPath role and group rules
//! and role mappings, `PHOENIX_LDAP_*` hosts, DN lists, filters and group mappings, paths, URLs,
//! numbers). Bad values are a one-line error, never a panic. Every value also goes through the
//! LDAP DN and filter rules: a canonical DN is its own canonical form, and an escaped value
//! cannot change the filter it is put in.
#![no_main]

use ashgate_runtime::env::Env;
use libfuzzer_sys::fuzz_target;

/// Variables the fuzzer sets; each input line is `<selector byte><value>`.
const VARS: &[&str] = &[
    "PHOENIX_ENABLE_AUTH",
    "PHOENIX_SECRET",
    "PHOENIX_ADMIN_SECRET",
    "ASHGATE_PREVIOUS_SECRETS",
    "PHOENIX_ADMINS",
    "PHOENIX_CSRF_TRUSTED_ORIGINS",
    "PHOENIX_HOST",
    "PHOENIX_PORT",
    "PHOENIX_GRPC_PORT",
    "PHOENIX_HOST_ROOT_PATH",
    "PHOENIX_ROOT_URL",
    "PHOENIX_COOKIES_PATH",
    "PHOENIX_ACCESS_TOKEN_EXPIRY_MINUTES",
    "PHOENIX_REFRESH_TOKEN_EXPIRY_MINUTES",
    "PHOENIX_PASSWORD_RESET_TOKEN_EXPIRY_MINUTES",
    "PHOENIX_BRUTE_FORCE_LOGIN_PROTECTION_MAX_ATTEMPTS",
    "PHOENIX_SQL_DATABASE_URL",
    "PHOENIX_SMTP_HOSTNAME",
    "PHOENIX_SMTP_PORT",
    "PHOENIX_DISABLE_BASIC_AUTH",
    "ASHGATE_IDENTITY_URL",
    "ASHGATE_COLLECTOR_HTTP_URLS",
    "ASHGATE_REDIS_URL",
    "ASHGATE_REDIS_NAMESPACE",
    "ASHGATE_INTERNAL_TOKEN",
    "ASHGATE_HTTP_MAX_CONNECTIONS",
    "PHOENIX_OAUTH2_IDP_CLIENT_ID",
    "PHOENIX_OAUTH2_IDP_CLIENT_SECRET",
    "PHOENIX_OAUTH2_IDP_OIDC_CONFIG_URL",
    "PHOENIX_OAUTH2_IDP_DISPLAY_NAME",
    "PHOENIX_OAUTH2_IDP_TOKEN_ENDPOINT_AUTH_METHOD",
    "PHOENIX_OAUTH2_IDP_SCOPES",
    "PHOENIX_OAUTH2_IDP_EMAIL_ATTRIBUTE_PATH",
    "PHOENIX_OAUTH2_IDP_GROUPS_ATTRIBUTE_PATH",
    "PHOENIX_OAUTH2_IDP_ALLOWED_GROUPS",
    "PHOENIX_OAUTH2_IDP_ROLE_ATTRIBUTE_PATH",
    "PHOENIX_OAUTH2_IDP_ROLE_MAPPING",
    "PHOENIX_OAUTH2_IDP_ROLE_ATTRIBUTE_STRICT",
    "PHOENIX_OAUTH2_IDP_ALLOW_SIGN_UP",
    "PHOENIX_OAUTH2_IDP_USE_PKCE",
    "PHOENIX_OAUTH2_OTHER_CLIENT_ID",
    "PHOENIX_LDAP_HOST",
    "PHOENIX_LDAP_PORT",
    "PHOENIX_LDAP_TLS_MODE",
    "PHOENIX_LDAP_BIND_DN",
    "PHOENIX_LDAP_USER_SEARCH_BASE_DNS",
    "PHOENIX_LDAP_USER_SEARCH_FILTER",
    "PHOENIX_LDAP_ATTR_EMAIL",
    "PHOENIX_LDAP_ATTR_UNIQUE_ID",
    "PHOENIX_LDAP_GROUP_SEARCH_BASE_DNS",
    "PHOENIX_LDAP_GROUP_SEARCH_FILTER",
    "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS",
];

fuzz_target!(|data: &[u8]| {
    let working_dir = std::env::temp_dir().join("ashgate-fuzz-config");
    let mut env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        ("PHOENIX_WORKING_DIR", working_dir.to_str().unwrap_or("/tmp")),
    ]);
    for line in data.split(|b| *b == b'\n') {
        let Some((selector, value)) = line.split_first() else { continue };
        let var = VARS[usize::from(*selector) % VARS.len()];
        let value = String::from_utf8_lossy(value).into_owned();
        ldap_text(&value);
        env = env.with(var, value);
    }
    if let Some(admins) = env.string("PHOENIX_ADMINS") {
        if let Ok(pairs) = ashgate_identity::config::parse_admins(&admins) {
            for (_, email) in pairs {
                assert_eq!(email, email.to_lowercase(), "emails are stored lower-cased");
            }
        }
    }
    let _ = ashgate_gateway::GatewayConfig::from_env(&env);
    let _ = ashgate_identity::IdentityConfig::from_env(&env);
    let _ = ashgate_collector::CollectorConfig::from_env(&env);
    let _ = env.minutes("PHOENIX_ACCESS_TOKEN_EXPIRY_MINUTES", 10.0);
    let _ = env.port("PHOENIX_PORT", 6006);
});

fn ldap_text(value: &str) {
    use ashgate_identity::ldap::dn::{canonical_dn, fill_filter};
    if let Some(canonical) = canonical_dn(value) {
        assert_eq!(canonical_dn(&canonical).as_deref(), Some(canonical.as_str()), "canonical DNs are fixed points");
    }
    let filter = fill_filter("(&(objectClass=person)(uid=%s))", value);
    assert!(ldap3::parse_filter(&filter).is_ok(), "an escaped value leaves the filter one filter: {filter:?}");
}
