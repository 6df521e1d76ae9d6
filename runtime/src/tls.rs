//! TLS between ashgate services (tonic over rustls): identity-svc can serve gRPC over TLS and
//! require client certificates (mTLS); its clients trust a private CA and can present a
//! certificate. A client certificate signed by identity's client CA counts as the internal
//! service credential, as an alternative to `ASHGATE_INTERNAL_TOKEN`.

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::env::{ConfigError, Env};

/// identity-svc's TLS: its certificate and key, and optionally the CA its clients' certificates
/// must be signed by (`ASHGATE_IDENTITY_TLS_CERT_FILE`, `_KEY_FILE`, `_CLIENT_CA_FILE`).
#[derive(Clone)]
pub struct ServerTls {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("mutual", &self.client_ca.is_some()).finish_non_exhaustive()
    }
}

impl ServerTls {
    /// `None` unless `ASHGATE_IDENTITY_TLS_CERT_FILE` is set; the key must be set with it.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let pair = read_pair(env, "ASHGATE_IDENTITY_TLS_CERT_FILE", "ASHGATE_IDENTITY_TLS_KEY_FILE")?;
        let client_ca = read_pem(env, "ASHGATE_IDENTITY_TLS_CLIENT_CA_FILE")?;
        match pair {
            Some((cert, key)) => Ok(Some(Self { cert, key, client_ca })),
            None if client_ca.is_some() => Err(ConfigError::new(
                "ASHGATE_IDENTITY_TLS_CLIENT_CA_FILE",
                "needs ASHGATE_IDENTITY_TLS_CERT_FILE and ASHGATE_IDENTITY_TLS_KEY_FILE",
            )),
            None => Ok(None),
        }
    }

    /// Whether clients must present a certificate signed by the client CA.
    pub fn is_mutual(&self) -> bool {
        self.client_ca.is_some()
    }

    /// The tonic server configuration.
    pub fn tonic_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(Identity::from_pem(&self.cert, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

/// What a client of identity-svc uses for `https://` URLs: the CA to trust
/// (`ASHGATE_TLS_CA_FILE`) and, for mTLS, its own certificate (`ASHGATE_TLS_CERT_FILE`,
/// `ASHGATE_TLS_KEY_FILE`).
#[derive(Clone, Default)]
pub struct ClientTls {
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.ca.is_some())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

impl ClientTls {
    /// Reads the client side's files; all optional, but a certificate needs its key.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let ca = read_pem(env, "ASHGATE_TLS_CA_FILE")?;
        let identity = read_pair(env, "ASHGATE_TLS_CERT_FILE", "ASHGATE_TLS_KEY_FILE")?;
        Ok(Self { ca, identity })
    }

    /// From PEM bytes (tests and embedders).
    pub fn from_pem(ca: Option<Vec<u8>>, identity: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        Self { ca, identity }
    }

    /// The tonic client configuration for a server named `domain`.
    pub fn tonic_config(&self, domain: &str) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new().domain_name(domain);
        if let Some(ca) = &self.ca {
            config = config.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        config
    }
}

/// An `https://` URL's endpoint with `tls` applied; `http://` URLs are left as they are.
pub fn endpoint(url: &str, tls: &ClientTls) -> Result<tonic::transport::Endpoint, String> {
    let endpoint =
        tonic::transport::Endpoint::from_shared(url.to_owned()).map_err(|e| format!("{url}: {e}"))?;
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    let host = endpoint.uri().host().unwrap_or_default().trim_matches(['[', ']']).to_owned();
    endpoint.tls_config(tls.tonic_config(&host)).map_err(|e| format!("{url}: {e}"))
}

/// A PEM certificate (chain) and its PEM key.
type PemPair = (Vec<u8>, Vec<u8>);

/// A certificate and its key from two variables: both set, or neither.
fn read_pair(env: &Env, cert_var: &str, key_var: &str) -> Result<Option<PemPair>, ConfigError> {
    match (read_pem(env, cert_var)?, read_pem(env, key_var)?) {
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(key_var, format!("is required with {cert_var}"))),
        (None, Some(_)) => Err(ConfigError::new(cert_var, format!("is required with {key_var}"))),
    }
}

fn read_pem(env: &Env, var: &str) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = env.string(var) else { return Ok(None) };
    let bytes =
        std::fs::read(&path).map_err(|e| ConfigError::new(var, format!("cannot read {path}: {e}")))?;
    if !bytes.starts_with(b"-----BEGIN") {
        return Err(ConfigError::new(var, format!("{path} is not a PEM file")));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("ashgate-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("x.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").unwrap();
        let junk = dir.join("junk");
        std::fs::write(&junk, "nope").unwrap();
        let path = pem.display().to_string();
        let env = Env::from_pairs([("ASHGATE_IDENTITY_TLS_CERT_FILE", path.as_str())]);
        assert_eq!(
            ServerTls::from_env(&env).unwrap_err().to_string(),
            "ASHGATE_IDENTITY_TLS_KEY_FILE: is required with ASHGATE_IDENTITY_TLS_CERT_FILE"
        );
        let env = Env::from_pairs([("ASHGATE_TLS_CA_FILE", junk.display().to_string())]);
        assert!(ClientTls::from_env(&env).unwrap_err().reason.ends_with("is not a PEM file"));
        let env = Env::from_pairs([("ASHGATE_TLS_CA_FILE", "/nonexistent/ca.pem")]);
        assert!(ClientTls::from_env(&env).unwrap_err().reason.starts_with("cannot read /nonexistent/ca.pem"));
        assert!(ServerTls::from_env(&Env::default()).unwrap().is_none());
        // Every half-configured pair names the missing variable.
        let only = |var: &str| Env::from_pairs([(var, path.as_str())]);
        let cases = [
            (
                ServerTls::from_env(&only("ASHGATE_IDENTITY_TLS_KEY_FILE")).map(|_| ()),
                "ASHGATE_IDENTITY_TLS_CERT_FILE: is required with ASHGATE_IDENTITY_TLS_KEY_FILE",
            ),
            (
                ServerTls::from_env(&only("ASHGATE_IDENTITY_TLS_CLIENT_CA_FILE")).map(|_| ()),
                "ASHGATE_IDENTITY_TLS_CLIENT_CA_FILE: needs ASHGATE_IDENTITY_TLS_CERT_FILE and ASHGATE_IDENTITY_TLS_KEY_FILE",
            ),
            (
                ClientTls::from_env(&only("ASHGATE_TLS_CERT_FILE")).map(|_| ()),
                "ASHGATE_TLS_KEY_FILE: is required with ASHGATE_TLS_CERT_FILE",
            ),
            (
                ClientTls::from_env(&only("ASHGATE_TLS_KEY_FILE")).map(|_| ()),
                "ASHGATE_TLS_CERT_FILE: is required with ASHGATE_TLS_KEY_FILE",
            ),
        ];
        for (result, message) in cases {
            assert_eq!(result.unwrap_err().to_string(), message);
        }
    }
}
