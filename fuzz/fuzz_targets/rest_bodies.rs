//! The JSON bodies of the gateway's sign-in and REST routes (parsed as the handlers parse
//! them), paging parameters, and the OAuth2 role and group rules applied to an ID token's
//! claims. Errors become 4xx with a message; nothing panics.
#![no_main]

use std::sync::OnceLock;

use ashgate_gateway::body::parse_json;
use ashgate_gateway::oauth2::attribute::{decide_role, in_allowed_group};
use ashgate_gateway::oauth2::config::ProviderConfig;
use ashgate_gateway::routes::Page;
use ashgate_gateway::routes::api_keys::CreateApiKeyBody;
use ashgate_gateway::routes::users::CreateUserBody;
use ashgate_runtime::env::Env;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn provider() -> Option<&'static ProviderConfig> {
    static PROVIDER: OnceLock<Option<ProviderConfig>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let env = Env::from_pairs([
                ("PHOENIX_OAUTH2_IDP_CLIENT_ID", "client"),
                ("PHOENIX_OAUTH2_IDP_CLIENT_SECRET", "secret"),
                ("PHOENIX_OAUTH2_IDP_OIDC_CONFIG_URL", "http://127.0.0.1:1/.well-known/openid-configuration"),
                ("PHOENIX_OAUTH2_IDP_GROUPS_ATTRIBUTE_PATH", "groups[*].name || groups"),
                ("PHOENIX_OAUTH2_IDP_ALLOWED_GROUPS", "admins,dev"),
                ("PHOENIX_OAUTH2_IDP_ROLE_ATTRIBUTE_PATH", "roles[0] || realm_access.roles[0]"),
                ("PHOENIX_OAUTH2_IDP_ROLE_MAPPING", "Owner:ADMIN,Dev:MEMBER,Guest:VIEWER"),
                ("PHOENIX_OAUTH2_IDP_ROLE_ATTRIBUTE_STRICT", "true"),
            ]);
            ashgate_gateway::oauth2::config::providers_from_env(&env).ok()?.into_iter().next()
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = parse_json::<Value>(data) {
        // `/auth/login` and the password-reset routes read these fields.
        for field in ["email", "password", "token"] {
            let _ = body.get(field).and_then(Value::as_str).map(str::trim);
        }
        if let Some(provider) = provider() {
            if let Some(rule) = &provider.groups {
                let _ = in_allowed_group(rule, &body);
            }
            if let Some(rule) = &provider.role {
                let _ = decide_role(rule, &body);
            }
        }
    }
    if let Err(error) = parse_json::<CreateUserBody>(data) {
        assert!(error.status().is_client_error() && !error.public_message().is_empty());
    }
    if let Err(error) = parse_json::<CreateApiKeyBody>(data) {
        assert!(error.status().is_client_error() && !error.public_message().is_empty());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let (cursor, limit) = text.split_once('&').unwrap_or((text, ""));
        let page = Page { cursor: Some(cursor.to_owned()), limit: Some(limit.to_owned()) };
        if let Ok(n) = page.limit(1000) {
            assert!((1..=1000).contains(&n));
        }
        let _ = page.to_identity("User");
    }
});
