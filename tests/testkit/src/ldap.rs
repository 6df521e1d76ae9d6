//! A real directory for LDAP sign-in tests: OpenLDAP's `slapd` (Debian packages `slapd` and
//! `ldap-utils`) started in the foreground on free loopback ports with a configuration, a
//! database and certificates of its own under a temporary directory, loaded with people and
//! groups by `ldapadd`, and killed when dropped. It listens for plain LDAP (StartTLS offered)
//! and for LDAPS, with a server certificate from a private CA generated per directory.
//!
//! People (password `<uid>-password`, mail `<uid>@example.com`, uid = login):
//! - `alice` in `cn=admins` (mapped to ADMIN), `bob` in `cn=members` (MEMBER),
//! - `carol` in no group, `dave` only in the POSIX group `cn=operators` (memberUid),
//! - `erin` whose mail is `admin@localhost`, the seeded local admin's email,
//! - `frank` twice (under `ou=people` and `ou=contractors`), `heidi` without a mail attribute,
//! - `grace` whose display name is Alice's ("Alice Admin").
//!
//! The `memberof` overlay gives people Active Directory's `memberOf`; `entryUUID` is OpenLDAP's.
//! (`cn=admins` also lists the service account, so it keeps a member when Alice is removed.)

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::process::{Child, Command};

/// The directory's suffix.
pub const BASE_DN: &str = "dc=example,dc=com";
/// Where people live.
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=com";
/// Where groups live.
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=com";
/// Mapped to ADMIN by [`Slapd::env`].
pub const ADMINS_GROUP: &str = "cn=admins,ou=groups,dc=example,dc=com";
/// Mapped to MEMBER by [`Slapd::env`].
pub const MEMBERS_GROUP: &str = "cn=members,ou=groups,dc=example,dc=com";
/// A POSIX group (`memberUid: dave`).
pub const OPERATORS_GROUP: &str = "cn=operators,ou=groups,dc=example,dc=com";
/// The service account the sign-in searches as.
pub const READER_DN: &str = "cn=reader,dc=example,dc=com";
/// Its password.
pub const READER_PASSWORD: &str = "reader-secret";
/// The directory manager (loads entries).
const MANAGER_DN: &str = "cn=manager,dc=example,dc=com";
const MANAGER_PASSWORD: &str = "manager-secret";

/// How sign-in reaches the directory (`PHOENIX_LDAP_TLS_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain LDAP upgraded with StartTLS.
    StartTls,
    /// LDAPS.
    Ldaps,
    /// No TLS.
    None,
}

/// Options of a directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlapdOptions {
    /// TLS clients must present a certificate signed by the directory's CA (mutual TLS).
    pub require_client_certificate: bool,
}

/// A running `slapd`, killed on drop.
pub struct Slapd {
    /// Plain LDAP (and StartTLS) port on 127.0.0.1.
    pub ldap_port: u16,
    /// LDAPS port on 127.0.0.1.
    pub ldaps_port: u16,
    // Killed before its files go (fields drop in order).
    child: Child,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate signed by it,
/// and a second CA that signed nothing here (a client trusting only it must refuse the server).
fn certificates(dir: &Path) {
    let new_ca = || {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA certificate");
        (cert, key)
    };
    let (ca, ca_key) = new_ca();
    let (other_ca, _) = new_ca();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert =
            CertificateParams::new(names).expect("params").signed_by(&key, &ca, &ca_key).expect("cert");
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client, client_key) = leaf(vec!["ashgate.test".into()]);
    write(dir, "ca.pem", &ca.pem());
    write(dir, "other-ca.pem", &other_ca.pem());
    write(dir, "server.pem", &server);
    write(dir, "server.key", &server_key);
    write(dir, "client.pem", &client);
    write(dir, "client.key", &client_key);
}

fn config(dir: &Path, options: SlapdOptions) -> String {
    let d = dir.display();
    let verify_client = if options.require_client_certificate { "demand" } else { "never" };
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
TLSVerifyClient {verify_client}
database mdb
maxsize 16777216
suffix \"{BASE_DN}\"
rootdn \"{MANAGER_DN}\"
rootpw {MANAGER_PASSWORD}
directory {d}/db
overlay memberof
access to attrs=userPassword by anonymous auth by * none
access to * by * read
"
    )
}

fn person(uid: &str, ou: &str, display_name: &str, mail: Option<&str>) -> String {
    let mail = mail.map(|m| format!("mail: {m}\n")).unwrap_or_default();
    format!(
        "dn: uid={uid},ou={ou},{BASE_DN}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {display_name}\nsn: {uid}\n\
         displayName: {display_name}\n{mail}userPassword: {uid}-password\n\n"
    )
}

fn entries() -> String {
    let mut ldif = format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n\
         userPassword: {READER_PASSWORD}\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=contractors,{BASE_DN}\nobjectClass: organizationalUnit\nou: contractors\n\n\
         dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for (uid, name) in [
        ("alice", "Alice Admin"),
        ("bob", "Bob Member"),
        ("carol", "Carol Nogroup"),
        ("dave", "Dave Operator"),
        ("frank", "Frank Twice"),
    ] {
        ldif.push_str(&person(uid, "people", name, Some(&format!("{uid}@example.com"))));
    }
    ldif.push_str(&person("erin", "people", "Erin Collides", Some("admin@localhost")));
    ldif.push_str(&person("grace", "people", "Alice Admin", Some("grace@example.com")));
    ldif.push_str(&person("heidi", "people", "Heidi Nomail", None));
    ldif.push_str(&person("frank", "contractors", "Frank Contractor", Some("frank.c@example.com")));
    ldif.push_str(&format!(
        "dn: {ADMINS_GROUP}\nobjectClass: groupOfNames\ncn: admins\nmember: {READER_DN}\nmember: uid=alice,{PEOPLE_DN}\n\n\
         dn: {MEMBERS_GROUP}\nobjectClass: groupOfNames\ncn: members\nmember: uid=bob,{PEOPLE_DN}\n\
         member: uid=erin,{PEOPLE_DN}\nmember: uid=frank,{PEOPLE_DN}\nmember: uid=grace,{PEOPLE_DN}\n\
         member: uid=heidi,{PEOPLE_DN}\nmember: uid=frank,ou=contractors,{BASE_DN}\n\n\
         dn: {OPERATORS_GROUP}\nobjectClass: posixGroup\ncn: operators\ngidNumber: 5000\nmemberUid: dave\n\n"
    ));
    ldif
}

impl Slapd {
    /// A directory with the people above.
    pub async fn start() -> Self {
        Self::start_with(SlapdOptions::default()).await
    }

    /// A directory with `options`.
    pub async fn start_with(options: SlapdOptions) -> Self {
        assert!(
            Path::new("/usr/sbin/slapd").exists() && Path::new("/usr/bin/ldapadd").exists(),
            "slapd is not installed: run `cargo xtask deps` (or apt-get install slapd ldap-utils)"
        );
        let mut dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir_all(dir.path().join("db")).expect("database directory");
        certificates(dir.path());
        let conf = write(dir.path(), "slapd.conf", &config(dir.path(), options));
        // Another test may take a port between choosing it and slapd binding it: try again.
        for _ in 0..5 {
            let (ldap_port, ldaps_port) = (free_port(), free_port());
            let urls = format!("ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/");
            let child = Command::new("/usr/sbin/slapd")
                .arg("-f")
                .arg(&conf)
                .arg("-h")
                .arg(&urls)
                .arg("-d0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("start /usr/sbin/slapd");
            let mut slapd = Self { ldap_port, ldaps_port, child, dir };
            if slapd.wait_until_listening().await {
                slapd.add(&entries()).await;
                return slapd;
            }
            dir = slapd.into_dir().await;
        }
        panic!("slapd did not start");
    }

    /// Waits for both listeners; `false` when slapd exited (its ports were taken).
    async fn wait_until_listening(&mut self) -> bool {
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    use tokio::io::AsyncReadExt as _;
                    let _ = pipe.read_to_string(&mut stderr).await;
                }
                eprintln!("slapd exited ({status}): {stderr}");
                return false;
            }
            let up = |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up(self.ldap_port) && up(self.ldaps_port) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn into_dir(self) -> tempfile::TempDir {
        let Self { mut child, dir, .. } = self;
        let _ = child.kill().await;
        dir
    }

    /// Adds entries (LDIF) as the directory manager.
    pub async fn add(&self, ldif: &str) {
        self.manage("/usr/bin/ldapadd", ldif).await;
    }

    /// Applies changes (LDIF with `changetype`) as the directory manager.
    pub async fn modify(&self, ldif: &str) {
        self.manage("/usr/bin/ldapmodify", ldif).await;
    }

    async fn manage(&self, tool: &str, ldif: &str) {
        let file = write(self.dir.path(), "changes.ldif", ldif);
        let output = Command::new(tool)
            .args(["-x", "-H", &self.ldap_url(), "-D", MANAGER_DN, "-w", MANAGER_PASSWORD, "-f"])
            .arg(&file)
            .output()
            .await
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(output.status.success(), "{tool}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// `ldap://127.0.0.1:<port>`.
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// A file in the directory's folder (`ca.pem`, `other-ca.pem`, `client.pem`, `client.key`).
    pub fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The `entryUUID` of `uid=<uid>` (under `ou=people`).
    pub async fn entry_uuid(&self, uid: &str) -> String {
        let output = Command::new("/usr/bin/ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-H",
                &self.ldap_url(),
                "-b",
                PEOPLE_DN,
                &format!("(uid={uid})"),
                "entryUUID",
            ])
            .output()
            .await
            .expect("run ldapsearch");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("entryUUID: "))
            .unwrap_or_else(|| panic!("no entryUUID for {uid}"))
            .trim()
            .to_owned()
    }

    /// identity-svc's `PHOENIX_LDAP_*` for this directory: `host` (`127.0.0.1`, or a list) on
    /// the port of `tls`, the private CA trusted, the service account, people found by `uid`,
    /// admins → ADMIN and members → MEMBER by `memberOf`.
    pub fn env(&self, tls: Tls, host: &str) -> Vec<(&'static str, String)> {
        let (mode, port) = match tls {
            Tls::StartTls => ("starttls", self.ldap_port),
            Tls::Ldaps => ("ldaps", self.ldaps_port),
            Tls::None => ("none", self.ldap_port),
        };
        vec![
            ("PHOENIX_LDAP_HOST", host.to_owned()),
            ("PHOENIX_LDAP_PORT", port.to_string()),
            ("PHOENIX_LDAP_TLS_MODE", mode.to_owned()),
            ("PHOENIX_LDAP_TLS_CA_CERT_FILE", self.file("ca.pem")),
            ("PHOENIX_LDAP_BIND_DN", READER_DN.to_owned()),
            ("PHOENIX_LDAP_BIND_PASSWORD", READER_PASSWORD.to_owned()),
            ("PHOENIX_LDAP_USER_SEARCH_BASE_DNS", format!(r#"["{PEOPLE_DN}"]"#)),
            ("PHOENIX_LDAP_USER_SEARCH_FILTER", "(&(objectClass=inetOrgPerson)(uid=%s))".to_owned()),
            ("PHOENIX_LDAP_ATTR_EMAIL", "mail".to_owned()),
            (
                "PHOENIX_LDAP_GROUP_ROLE_MAPPINGS",
                format!(
                    r#"[{{"group_dn": "{ADMINS_GROUP}", "role": "ADMIN"}}, {{"group_dn": "{MEMBERS_GROUP}", "role": "MEMBER"}}]"#
                ),
            ),
        ]
    }
}
