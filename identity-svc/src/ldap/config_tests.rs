//! Every `PHOENIX_LDAP_*` rule names its variable (Phoenix `LDAPConfig.from_env`).

use super::*;

fn base() -> Env {
    Env::from_pairs([
        ("PHOENIX_LDAP_HOST", "ldap.example.com"),
        ("PHOENIX_LDAP_ATTR_EMAIL", "mail"),
        ("PHOENIX_LDAP_USER_SEARCH_BASE_DNS", r#"["ou=people,dc=example,dc=com"]"#),
        ("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS", r#"[{"group_dn": "*", "role": "member"}]"#),
    ])
}

fn config(env: &Env) -> LdapConfig {
    LdapConfig::from_env(env, &[]).unwrap().unwrap()
}

fn err(env: &Env) -> String {
    LdapConfig::from_env(env, &[]).unwrap_err().to_string()
}

#[test]
fn off_without_a_host_and_phoenix_defaults_with_one() {
    assert!(LdapConfig::from_env(&Env::default(), &[]).unwrap().is_none());
    let config = config(&base());
    assert_eq!(config.hosts, [LdapHost { name: "ldap.example.com".into(), port: 389 }]);
    assert_eq!(config.tls_mode, TlsMode::StartTls);
    assert!(config.tls.is_some());
    assert_eq!(config.user_search_filter, DEFAULT_USER_SEARCH_FILTER);
    assert_eq!(config.attr_email.as_deref(), Some("mail"));
    assert_eq!(config.attr_display_name.as_deref(), Some("displayName"));
    assert_eq!(config.attr_member_of.as_deref(), Some("memberOf"));
    assert_eq!(config.attr_unique_id, None);
    assert!(config.allow_sign_up);
    assert!(config.bind.is_none());
    assert_eq!(config.group_role_mappings, [GroupRoleMapping { group: GroupMatch::Any, role: Role::Member }]);
    assert_eq!(config.timeout, Duration::from_secs(20));
    let ldaps = config_of(base().with("PHOENIX_LDAP_TLS_MODE", "LDAPS"));
    assert_eq!((ldaps.tls_mode, ldaps.hosts[0].port), (TlsMode::Ldaps, 636));
    let plain = config_of(base().with("PHOENIX_LDAP_TLS_MODE", "none"));
    assert!(plain.tls.is_none());
}

fn config_of(env: Env) -> LdapConfig {
    config(&env)
}

#[test]
fn hosts_fail_over_in_order_with_their_own_ports() {
    let env = base()
        .with("PHOENIX_LDAP_HOST", " dc1.corp.com, 10.0.0.2:3389 ,,dc3.corp.com ")
        .with("PHOENIX_LDAP_PORT", "1389");
    let hosts = config(&env).hosts;
    let spelled: Vec<(String, u16)> = hosts.into_iter().map(|h| (h.name, h.port)).collect();
    assert_eq!(
        spelled,
        [("dc1.corp.com".into(), 1389), ("10.0.0.2".into(), 3389), ("dc3.corp.com".into(), 1389)]
    );
    let v6 = base().with("PHOENIX_LDAP_HOST", "[::1]:389").with("PHOENIX_LDAP_TLS_MODE", "none");
    assert_eq!(config(&v6).hosts[0].name, "::1");
    let cases = [
        (" , ", "PHOENIX_LDAP_HOST: must contain at least one non-empty host"),
        ("ldaps://dc1", "PHOENIX_LDAP_HOST: \"ldaps://dc1\": give host names"),
        ("dc1:0", "PHOENIX_LDAP_HOST: \"dc1:0\" has an invalid port"),
        ("dc1:x", "PHOENIX_LDAP_HOST: \"dc1:x\" has an invalid port"),
        ("[::1]", "PHOENIX_LDAP_HOST: \"[::1]\": TLS needs a host name"),
        ("dc 1", "PHOENIX_LDAP_HOST: \"dc 1\" is not a host name"),
    ];
    for (hosts, message) in cases {
        let got = err(&base().with("PHOENIX_LDAP_HOST", hosts));
        assert!(got.starts_with(message), "{hosts:?}: {got}");
    }
    assert_eq!(
        err(&base().with("PHOENIX_LDAP_PORT", "0")),
        "PHOENIX_LDAP_PORT: must be a port number between 1 and 65535"
    );
}

#[test]
fn mappings_follow_phoenix() {
    let cases = [
        ("not-json", "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: is not valid JSON"),
        ("{}", "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: must be a JSON array"),
        ("[]", "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: must contain at least one mapping"),
        ("[1]", "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: [0] must be an object"),
        (r#"[{"role": "ADMIN"}]"#, "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: [0] is missing the field 'group_dn'"),
        (r#"[{"group_dn": "*"}]"#, "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: [0] is missing the field 'role'"),
        (
            r#"[{"group_dn": " ", "role": "ADMIN"}]"#,
            "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: [0].group_dn must be a non-empty string",
        ),
        (
            r#"[{"group_dn": "admins", "role": "ADMIN"}]"#,
            "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: [0].group_dn has invalid LDAP DN syntax",
        ),
        (
            r#"[{"group_dn": "*", "role": "SYSTEM"}]"#,
            "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: [0].role must be ADMIN, MEMBER or VIEWER",
        ),
        (
            r#"[{"group_dn": "*", "role": 1}]"#,
            "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: [0].role must be ADMIN, MEMBER or VIEWER",
        ),
    ];
    for (json, message) in cases {
        let got = err(&base().with("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS", json));
        assert!(got.starts_with(message), "{json}: {got}");
    }
    let mut unset = base();
    unset = unset.with("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS", "");
    assert!(err(&unset).starts_with("PHOENIX_LDAP_GROUP_ROLE_MAPPINGS: must contain at least one mapping"));

    // First match wins; DNs compare canonically; no match, no role.
    let env = base().with(
        "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS",
        r#"[{"group_dn": "CN=Admins, OU=Groups,DC=example,DC=com", "role": "admin"},
            {"group_dn": "cn=devs,ou=groups,dc=example,dc=com", "role": "MEMBER"}]"#,
    );
    let config = config(&env);
    let admins = "cn=admins,ou=groups,dc=example,dc=com".to_owned();
    let devs = "cn=Devs,ou=Groups,dc=Example,dc=com".to_owned();
    assert_eq!(config.role_for(&[devs.clone(), admins]), Some(Role::Admin));
    assert_eq!(config.role_for(&[devs]), Some(Role::Member));
    assert_eq!(config.role_for(&["cn=other,dc=example,dc=com".into(), "not a dn".into()]), None);
    assert_eq!(config.role_for(&[]), None);
}

#[test]
fn searches_and_filters_are_checked() {
    let cases = [
        ("PHOENIX_LDAP_USER_SEARCH_BASE_DNS", "", "PHOENIX_LDAP_USER_SEARCH_BASE_DNS: must be set"),
        (
            "PHOENIX_LDAP_USER_SEARCH_BASE_DNS",
            "ou=people",
            "PHOENIX_LDAP_USER_SEARCH_BASE_DNS: is not valid JSON",
        ),
        (
            "PHOENIX_LDAP_USER_SEARCH_BASE_DNS",
            r#""ou=x""#,
            "PHOENIX_LDAP_USER_SEARCH_BASE_DNS: must be a JSON array",
        ),
        (
            "PHOENIX_LDAP_USER_SEARCH_BASE_DNS",
            "[]",
            "PHOENIX_LDAP_USER_SEARCH_BASE_DNS: must contain at least one base DN",
        ),
        (
            "PHOENIX_LDAP_USER_SEARCH_BASE_DNS",
            "[1]",
            "PHOENIX_LDAP_USER_SEARCH_BASE_DNS: [0] must be a string",
        ),
        (
            "PHOENIX_LDAP_USER_SEARCH_BASE_DNS",
            r#"["people"]"#,
            "PHOENIX_LDAP_USER_SEARCH_BASE_DNS: [0] has invalid LDAP DN syntax",
        ),
        (
            "PHOENIX_LDAP_USER_SEARCH_FILTER",
            "(uid=alice)",
            "PHOENIX_LDAP_USER_SEARCH_FILTER: must contain the '%s' placeholder",
        ),
        (
            "PHOENIX_LDAP_USER_SEARCH_FILTER",
            "(uid=%s",
            "PHOENIX_LDAP_USER_SEARCH_FILTER: \"(uid=%s\" is not a valid LDAP filter",
        ),
        (
            "PHOENIX_LDAP_GROUP_SEARCH_FILTER",
            "(memberUid=x)",
            "PHOENIX_LDAP_GROUP_SEARCH_FILTER: must contain the '%s' placeholder",
        ),
        (
            "PHOENIX_LDAP_GROUP_SEARCH_FILTER",
            "(memberUid=%s)",
            "PHOENIX_LDAP_GROUP_SEARCH_BASE_DNS: is required when PHOENIX_LDAP_GROUP_SEARCH_FILTER is set",
        ),
        (
            "PHOENIX_LDAP_GROUP_SEARCH_BASE_DNS",
            r#"["x"]"#,
            "PHOENIX_LDAP_GROUP_SEARCH_BASE_DNS: [0] has invalid LDAP DN syntax",
        ),
        (
            "PHOENIX_LDAP_GROUP_SEARCH_FILTER_USER_ATTR",
            "uid",
            "PHOENIX_LDAP_GROUP_SEARCH_FILTER_USER_ATTR: only applies with PHOENIX_LDAP_GROUP_SEARCH_FILTER",
        ),
        (
            "PHOENIX_LDAP_TLS_MODE",
            "tls",
            "PHOENIX_LDAP_TLS_MODE: must be 'none', 'starttls', or 'ldaps' (got \"tls\")",
        ),
        ("PHOENIX_LDAP_TLS_VERIFY", "no", "PHOENIX_LDAP_TLS_VERIFY: must be true or false"),
        ("PHOENIX_LDAP_ALLOW_SIGN_UP", "yes", "PHOENIX_LDAP_ALLOW_SIGN_UP: must be true or false"),
        (
            "PHOENIX_LDAP_ATTR_DISPLAY_NAME",
            "display Name",
            "PHOENIX_LDAP_ATTR_DISPLAY_NAME: \"display Name\" contains spaces; LDAP attribute names have none (did you mean \"displayName\"?)",
        ),
        (
            "PHOENIX_LDAP_ATTR_MEMBER_OF",
            "member of",
            "PHOENIX_LDAP_ATTR_MEMBER_OF: \"member of\" contains spaces",
        ),
        (
            "PHOENIX_LDAP_ATTR_UNIQUE_ID",
            "object GUID",
            "PHOENIX_LDAP_ATTR_UNIQUE_ID: \"object GUID\" contains spaces",
        ),
        ("PHOENIX_LDAP_BIND_DN", "svc", "PHOENIX_LDAP_BIND_DN: has invalid LDAP DN syntax: \"svc\""),
        (
            "PHOENIX_LDAP_BIND_PASSWORD",
            "pw",
            "PHOENIX_LDAP_BIND_DN: is required with PHOENIX_LDAP_BIND_PASSWORD",
        ),
        ("ASHGATE_LDAP_TIMEOUT_SECONDS", "0", "ASHGATE_LDAP_TIMEOUT_SECONDS: must be between 1 and 60"),
    ];
    for (var, value, message) in cases {
        let got = err(&base().with(var, value));
        assert!(got.starts_with(message), "{var}={value}: {got}");
    }
    let env = base().with("PHOENIX_LDAP_BIND_DN", "cn=svc,dc=example,dc=com");
    assert_eq!(err(&env), "PHOENIX_LDAP_BIND_PASSWORD: is required with PHOENIX_LDAP_BIND_DN");
    let bound = config(&env.with("PHOENIX_LDAP_BIND_PASSWORD", "s3cret"));
    assert!(!format!("{bound:?}").contains("s3cret"), "the bind password never shows in Debug");
    let posix = config(
        &base()
            .with("PHOENIX_LDAP_GROUP_SEARCH_FILTER", "(&(objectClass=posixGroup)(memberUid=%s))")
            .with("PHOENIX_LDAP_GROUP_SEARCH_BASE_DNS", r#"[" ou=groups,dc=example,dc=com "]"#)
            .with("PHOENIX_LDAP_GROUP_SEARCH_FILTER_USER_ATTR", "uid"),
    );
    assert_eq!(posix.group_search_base_dns, ["ou=groups,dc=example,dc=com"]);
    assert_eq!(posix.group_search_filter_user_attr.as_deref(), Some("uid"));
    // docs/ldap.md's Active Directory filters are accepted (extensible matches included).
    let ad = config(
        &base()
            .with(
                "PHOENIX_LDAP_USER_SEARCH_FILTER",
                "(&(objectClass=user)(sAMAccountName=%s)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
            )
            .with("PHOENIX_LDAP_GROUP_SEARCH_FILTER", "(member:1.2.840.113556.1.4.1941:=%s)")
            .with("PHOENIX_LDAP_GROUP_SEARCH_FILTER_USER_ATTR", "distinguishedName")
            .with("PHOENIX_LDAP_GROUP_SEARCH_BASE_DNS", r#"["OU=Groups,DC=corp,DC=example,DC=com"]"#),
    );
    assert!(ad.group_search_filter.is_some());
    // An empty attribute name turns the attribute off.
    assert_eq!(config(&base().with("PHOENIX_LDAP_ATTR_DISPLAY_NAME", "")).attr_display_name, None);
}

#[test]
fn a_directory_without_emails_needs_unique_ids_and_sign_up() {
    let no_email = base().with("PHOENIX_LDAP_ATTR_EMAIL", "null");
    assert!(
        err(&no_email)
            .starts_with("PHOENIX_LDAP_ATTR_UNIQUE_ID: is required when PHOENIX_LDAP_ATTR_EMAIL is 'null'")
    );
    let with_id = no_email.with("PHOENIX_LDAP_ATTR_UNIQUE_ID", "entryUUID");
    assert_eq!(config(&with_id).attr_email, None);
    assert!(
        err(&with_id.clone().with("PHOENIX_LDAP_ALLOW_SIGN_UP", "false"))
            .starts_with("PHOENIX_LDAP_ALLOW_SIGN_UP: must be true when PHOENIX_LDAP_ATTR_EMAIL is 'null'")
    );
    let admins = [("root".to_owned(), "root@example.com".to_owned())];
    assert!(
        LdapConfig::from_env(&with_id, &admins)
            .unwrap_err()
            .to_string()
            .starts_with("PHOENIX_ADMINS: is not supported when PHOENIX_LDAP_ATTR_EMAIL is 'null'")
    );
    // Set empty is the same as null; unset is Phoenix's deprecated default, `mail`.
    let empty = base().with("PHOENIX_LDAP_ATTR_EMAIL", "").with("PHOENIX_LDAP_ATTR_UNIQUE_ID", "objectGUID");
    assert_eq!(config(&empty).attr_email, None);
}

#[test]
fn tls_files_are_read_at_start_up() {
    let dir = std::env::temp_dir().join(format!("ashgate-ldap-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let junk = junk.display().to_string();
    let cases = [
        (
            "PHOENIX_LDAP_TLS_CA_CERT_FILE",
            "/nonexistent/ca.pem",
            "PHOENIX_LDAP_TLS_CA_CERT_FILE: cannot read /nonexistent/ca.pem",
        ),
        ("PHOENIX_LDAP_TLS_CA_CERT_FILE", junk.as_str(), "PHOENIX_LDAP_TLS_CA_CERT_FILE: "),
        (
            "PHOENIX_LDAP_TLS_CLIENT_CERT_FILE",
            junk.as_str(),
            "PHOENIX_LDAP_TLS_CLIENT_KEY_FILE: is required with PHOENIX_LDAP_TLS_CLIENT_CERT_FILE",
        ),
        (
            "PHOENIX_LDAP_TLS_CLIENT_KEY_FILE",
            junk.as_str(),
            "PHOENIX_LDAP_TLS_CLIENT_CERT_FILE: is required with PHOENIX_LDAP_TLS_CLIENT_KEY_FILE",
        ),
    ];
    for (var, value, message) in cases {
        let got = err(&base().with(var, value));
        assert!(got.starts_with(message), "{var}={value}: {got}");
    }
    let both = base()
        .with("PHOENIX_LDAP_TLS_CLIENT_CERT_FILE", &junk)
        .with("PHOENIX_LDAP_TLS_CLIENT_KEY_FILE", &junk);
    assert!(err(&both).starts_with("PHOENIX_LDAP_TLS_CLIENT_CERT_FILE: "), "{}", err(&both));
    // Without TLS, TLS files are not needed, so they are not read.
    assert!(
        LdapConfig::from_env(
            &base()
                .with("PHOENIX_LDAP_TLS_MODE", "none")
                .with("PHOENIX_LDAP_TLS_CA_CERT_FILE", "/nonexistent"),
            &[]
        )
        .is_ok()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
