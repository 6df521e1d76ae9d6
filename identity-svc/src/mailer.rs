//! Sending password-reset mail over SMTP with lettre (rustls): implicit TLS on 465, STARTTLS
//! elsewhere, plain allowed only to a loopback server. Sending happens off the request path
//! and never hangs it (each mail has 30 s in all); a failure is logged with the server's answer
//! and counted in [`MailStats`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use ashgate_runtime::env::{ConfigError, Env};

use crate::secret::Secret;

/// `PHOENIX_SMTP_*`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// `PHOENIX_SMTP_HOSTNAME`.
    pub hostname: String,
    /// `PHOENIX_SMTP_PORT` (587).
    pub port: u16,
    /// `PHOENIX_SMTP_USERNAME`.
    pub username: String,
    /// `PHOENIX_SMTP_PASSWORD`.
    pub password: Secret,
    /// `PHOENIX_SMTP_MAIL_FROM`.
    pub mail_from: String,
    /// `PHOENIX_SMTP_VALIDATE_CERTS` (true).
    pub validate_certs: bool,
}

impl SmtpConfig {
    /// `None` when `PHOENIX_SMTP_HOSTNAME` is unset; Phoenix then requires username, password
    /// and sender to be set.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(hostname) = env.string("PHOENIX_SMTP_HOSTNAME") else { return Ok(None) };
        let required = |var: &str| {
            env.string(var)
                .ok_or_else(|| ConfigError::new(var, "is required when PHOENIX_SMTP_HOSTNAME is set"))
        };
        let mail_from = env.string("PHOENIX_SMTP_MAIL_FROM").unwrap_or_else(|| "noreply@arize.com".into());
        if mail_from.parse::<Mailbox>().is_err() {
            return Err(ConfigError::new("PHOENIX_SMTP_MAIL_FROM", "must be an email address"));
        }
        Ok(Some(Self {
            port: env.port("PHOENIX_SMTP_PORT", 587)?,
            username: required("PHOENIX_SMTP_USERNAME")?,
            password: Secret::new(required("PHOENIX_SMTP_PASSWORD")?),
            mail_from,
            validate_certs: env.bool("PHOENIX_SMTP_VALIDATE_CERTS", true)?,
            hostname,
        }))
    }

    fn is_loopback(&self) -> bool {
        matches!(self.hostname.as_str(), "localhost" | "127.0.0.1" | "::1")
    }
}

/// The longest one mail may take, connection and every SMTP command included.
const SEND_DEADLINE: Duration = Duration::from_secs(30);

/// How many mails were handed to the server, and how many could not be.
#[derive(Debug, Default)]
pub struct MailStats {
    sent: AtomicU64,
    failed: AtomicU64,
}

impl MailStats {
    /// Mails the server accepted.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Mails that could not be delivered to the server (refused, unreachable, timed out).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// Sends mail through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
    stats: Arc<MailStats>,
}

impl Mailer {
    /// A mailer for `config` (no connection is made until the first mail).
    pub fn new(config: &SmtpConfig) -> Result<Self, ConfigError> {
        let tls_error = |e: lettre::transport::smtp::Error| {
            ConfigError::new("PHOENIX_SMTP_HOSTNAME", format!("TLS setup failed: {e}"))
        };
        let parameters = TlsParameters::builder(config.hostname.clone())
            .dangerous_accept_invalid_certs(!config.validate_certs)
            .build_rustls()
            .map_err(tls_error)?;
        let tls = if config.port == 465 {
            Tls::Wrapper(parameters)
        } else if config.is_loopback() {
            Tls::Opportunistic(parameters)
        } else {
            Tls::Required(parameters)
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.hostname.clone())
            .port(config.port)
            .tls(tls)
            .credentials(Credentials::new(config.username.clone(), config.password.expose().to_owned()))
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let from = config
            .mail_from
            .parse()
            .map_err(|_| ConfigError::new("PHOENIX_SMTP_MAIL_FROM", "must be an email address"))?;
        let server = format!("{}:{}", config.hostname, config.port);
        Ok(Self { transport, from, server, stats: Arc::default() })
    }

    /// What happened to the mails sent so far.
    pub fn stats(&self) -> &MailStats {
        &self.stats
    }

    /// Sends the reset link in the background.
    pub fn send_password_reset(&self, to: &str, link: &str) {
        let text = format!(
            "Someone asked to reset the password of your ashgate account.\n\nOpen this link to choose a new \
             password:\n{link}\n\nThe link works once and expires soon. If you did not ask, ignore this email."
        );
        let html = format!(
            "<p>Someone asked to reset the password of your ashgate account.</p>\
             <p><a href=\"{link}\">Choose a new password</a></p>\
             <p>The link works once and expires soon. If you did not ask, ignore this email.</p>",
            link = html_escape(link)
        );
        self.send(to, "[ashgate] Password Reset Request", text, html);
    }

    fn send(&self, to: &str, subject: &'static str, text: String, html: String) {
        let Ok(to) = to.parse::<Mailbox>() else {
            tracing::warn!("not sending mail to an address lettre cannot parse");
            return;
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html));
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                tracing::error!(error = %e, "could not build mail");
                return;
            }
        };
        let (transport, stats, server) = (self.transport.clone(), self.stats.clone(), self.server.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(SEND_DEADLINE, transport.send(message)).await {
                Ok(Ok(_)) => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(subject, %server, "mail sent");
                }
                Ok(Err(e)) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, subject, %server, "SMTP server did not take the mail");
                }
                Err(_) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(subject, %server, "SMTP server did not answer within 30 s; mail not sent");
                }
            }
        });
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
