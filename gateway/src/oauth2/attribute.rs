//! Reading the email, groups and role out of the provider's claims with JMESPath expressions
//! (`*_ATTRIBUTE_PATH`, as Phoenix), and deciding the ashgate role from them.

use std::fmt;

use ashgate_proto::identity::Role;
use ashgate_runtime::env::ConfigError;
use serde_json::Value;

use crate::oauth2::config::{GroupRule, RoleRule};

/// A compiled JMESPath expression (`jmespath` crate, thread-safe build).
#[derive(Clone)]
pub struct AttributePath(jmespath::Expression<'static>);

impl fmt::Debug for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttributePath({:?})", self.0.as_str())
    }
}

impl AttributePath {
    /// Compiles `expression`; a syntax error names `var`.
    pub fn compile(var: &str, expression: &str) -> Result<Self, ConfigError> {
        jmespath::compile(expression)
            .map(Self)
            .map_err(|e| ConfigError::new(var, format!("is not a valid JMESPath expression: {e}")))
    }

    /// The value at this path; `None` for null, a missing value or an evaluation error.
    pub fn find(&self, claims: &Value) -> Option<Value> {
        let found = self.0.search(claims).ok()?;
        serde_json::to_value(&*found).ok().filter(|v| !v.is_null())
    }

    /// A non-empty string at this path (a list gives its first element, as Phoenix).
    pub fn text(&self, claims: &Value) -> Option<String> {
        scalar_text(&first_if_list(self.find(claims)?))
    }
}

fn first_if_list(value: Value) -> Value {
    match value {
        Value::Array(items) => items.into_iter().next().unwrap_or(Value::Null),
        other => other,
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether the claims name at least one allowed group (a string counts as a one-group list).
pub fn in_allowed_group(rule: &GroupRule, claims: &Value) -> bool {
    let groups: Vec<String> = match rule.path.find(claims) {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(other) => scalar_text(&other).into_iter().collect(),
        None => Vec::new(),
    };
    groups.iter().any(|g| rule.allowed.contains(g))
}

/// The outcome of role mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleDecision {
    /// This role (new users get it; existing users too when `ROLE_RESYNC`).
    Mapped(Role),
    /// Nothing mappable and `ROLE_ATTRIBUTE_STRICT`: the sign-in is refused.
    Refused,
}

/// Maps the provider's role: `ROLE_MAPPING` first (exact match); without a mapping, a value
/// that names an ashgate role (ADMIN, MEMBER, VIEWER, any case) is taken as it is.
pub fn decide_role(rule: &RoleRule, claims: &Value) -> RoleDecision {
    let mapped = rule.path.text(claims).and_then(|value| {
        if rule.mapping.is_empty() {
            match value.to_ascii_uppercase().as_str() {
                "ADMIN" => Some(Role::Admin),
                "MEMBER" => Some(Role::Member),
                "VIEWER" => Some(Role::Viewer),
                _ => None,
            }
        } else {
            rule.mapping.iter().find(|(idp_role, _)| *idp_role == value).map(|(_, role)| *role)
        }
    });
    match mapped {
        Some(role) => RoleDecision::Mapped(role),
        None if rule.strict => RoleDecision::Refused,
        // Phoenix: nothing mappable, not strict, is VIEWER (and demotes with ROLE_RESYNC).
        None => RoleDecision::Mapped(Role::Viewer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(expression: &str) -> AttributePath {
        AttributePath::compile("V", expression).unwrap()
    }

    #[test]
    fn paths_read_claims() {
        let claims = json!({"email": "a@b.c", "upn": ["x@y.z"], "realm_access": {"roles": ["r1", "r2"]}});
        assert_eq!(path("email").text(&claims).as_deref(), Some("a@b.c"));
        assert_eq!(path("upn").text(&claims).as_deref(), Some("x@y.z"));
        assert_eq!(path("realm_access.roles").text(&claims).as_deref(), Some("r1"));
        assert_eq!(path("missing").text(&claims), None);
        assert_eq!(path("email || upn[0]").text(&json!({"upn": ["u@v.w"]})).as_deref(), Some("u@v.w"));
        let expr = "contains(realm_access.roles, 'r2') && 'ADMIN' || 'VIEWER'";
        assert_eq!(path(expr).text(&claims).as_deref(), Some("ADMIN"));
    }

    #[test]
    fn groups_and_roles() {
        let rule = GroupRule { path: path("groups"), allowed: vec!["eng".into()] };
        assert!(in_allowed_group(&rule, &json!({"groups": ["sales", "eng"]})));
        assert!(in_allowed_group(&rule, &json!({"groups": "eng"})));
        assert!(!in_allowed_group(&rule, &json!({"groups": ["sales"]})));
        assert!(!in_allowed_group(&rule, &json!({})));
        let mut rule = RoleRule {
            path: path("role"),
            mapping: vec![("owner".into(), Role::Admin)],
            strict: false,
            resync: true,
        };
        assert_eq!(decide_role(&rule, &json!({"role": "owner"})), RoleDecision::Mapped(Role::Admin));
        assert_eq!(decide_role(&rule, &json!({"role": "ADMIN"})), RoleDecision::Mapped(Role::Viewer));
        assert_eq!(decide_role(&rule, &json!({})), RoleDecision::Mapped(Role::Viewer));
        rule.strict = true;
        assert_eq!(decide_role(&rule, &json!({"role": "other"})), RoleDecision::Refused);
        rule.mapping.clear();
        assert_eq!(decide_role(&rule, &json!({"role": "viewer"})), RoleDecision::Mapped(Role::Viewer));
    }
}
