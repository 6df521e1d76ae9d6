//! The TLS client side of StartTLS and LDAPS: rustls with ring, trusting
//! `PHOENIX_LDAP_TLS_CA_CERT_FILE` (else the system's trust store), presenting
//! `PHOENIX_LDAP_TLS_CLIENT_CERT_FILE` + `_KEY_FILE` when the directory wants mutual TLS, and
//! checking nothing only when `PHOENIX_LDAP_TLS_VERIFY=false` says so.

use std::sync::Arc;

use ashgate_runtime::env::{ConfigError, Env};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

const CA_CERT_FILE: &str = "PHOENIX_LDAP_TLS_CA_CERT_FILE";
const CLIENT_CERT_FILE: &str = "PHOENIX_LDAP_TLS_CLIENT_CERT_FILE";
const CLIENT_KEY_FILE: &str = "PHOENIX_LDAP_TLS_CLIENT_KEY_FILE";

/// Builds the client configuration; every file is read and parsed now, so a bad one stops
/// start-up naming its variable.
pub fn client_config(env: &Env, verify: bool) -> Result<Arc<ClientConfig>, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new(CA_CERT_FILE, format!("TLS setup failed: {e}")))?;
    let builder = if verify {
        builder.with_root_certificates(roots(env)?)
    } else {
        // Still parse a configured CA file, so a typo is found now rather than when verification
        // is turned back on.
        roots(env)?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
    };
    let config = match client_pair(env)? {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| ConfigError::new(CLIENT_KEY_FILE, format!("does not match the certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The CA file's certificates, or the system's trust store.
fn roots(env: &Env) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    match env.string(CA_CERT_FILE) {
        Some(path) => {
            let pem = read(CA_CERT_FILE, &path)?;
            let certs = certificates(CA_CERT_FILE, &path, &pem)?;
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    ConfigError::new(CA_CERT_FILE, format!("{path} holds an unusable certificate: {e}"))
                })?;
            }
        }
        None => {
            let system = rustls_native_certs::load_native_certs();
            for error in &system.errors {
                tracing::warn!(%error, "part of the system trust store could not be read");
            }
            roots.add_parsable_certificates(system.certs);
        }
    }
    Ok(roots)
}

/// `PHOENIX_LDAP_TLS_CLIENT_CERT_FILE` and `_KEY_FILE`: both or neither.
fn client_pair(
    env: &Env,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, ConfigError> {
    match (env.string(CLIENT_CERT_FILE), env.string(CLIENT_KEY_FILE)) {
        (None, None) => Ok(None),
        (Some(_), None) => {
            Err(ConfigError::new(CLIENT_KEY_FILE, format!("is required with {CLIENT_CERT_FILE}")))
        }
        (None, Some(_)) => {
            Err(ConfigError::new(CLIENT_CERT_FILE, format!("is required with {CLIENT_KEY_FILE}")))
        }
        (Some(cert_path), Some(key_path)) => {
            let certs = certificates(CLIENT_CERT_FILE, &cert_path, &read(CLIENT_CERT_FILE, &cert_path)?)?;
            let key = PrivateKeyDer::from_pem_slice(&read(CLIENT_KEY_FILE, &key_path)?).map_err(|_| {
                ConfigError::new(CLIENT_KEY_FILE, format!("{key_path} holds no PEM private key"))
            })?;
            Ok(Some((certs, key)))
        }
    }
}

fn read(var: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::new(var, format!("cannot read {path}: {e}")))
}

fn certificates(var: &str, path: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|_| ConfigError::new(var, format!("{path} is not a PEM certificate file")))?;
    if certs.is_empty() {
        return Err(ConfigError::new(var, format!("{path} holds no PEM certificate")));
    }
    Ok(certs)
}

/// `PHOENIX_LDAP_TLS_VERIFY=false`: any certificate is accepted (the handshake's signatures are
/// still checked, so the connection is encrypted to whoever answered).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
