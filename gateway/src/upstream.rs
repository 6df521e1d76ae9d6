//! The gateway's two upstreams: identity-svc (every credential operation, called with the end
//! user's credential) and collector-svc (span reads over gRPC, OTLP/HTTP forwarding).

use std::net::IpAddr;
use std::time::Duration;

use ashgate_identity_client::INTERNAL_TOKEN_METADATA;
use ashgate_proto::collector::span_query_service_client::SpanQueryServiceClient;
use ashgate_proto::identity::api_key_service_client::ApiKeyServiceClient;
use ashgate_proto::identity::audit_service_client::AuditServiceClient;
use ashgate_proto::identity::auth_service_client::AuthServiceClient;
use ashgate_proto::identity::internal_service_client::InternalServiceClient;
use ashgate_proto::identity::user_service_client::UserServiceClient;
use ashgate_runtime::tls::ClientTls;
use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::config::GatewayConfig;

/// Metadata with the end user's address; identity-svc trusts it only from the gateway.
pub const CLIENT_ADDR_METADATA: &str = "x-ashgate-client-addr";
/// Metadata carrying the gateway's own credential (identity-svc's `GATEWAY_TOKEN_METADATA`).
pub const GATEWAY_TOKEN_METADATA: &str = "x-ashgate-gateway-token";

/// Who a call to identity-svc is made for.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The end user's credential, sent as `authorization: Bearer`.
    pub bearer: Option<String>,
    /// The end user's address (brute-force lockout and per-address limits key on it).
    pub client_addr: Option<IpAddr>,
}

/// identity-svc's public services on one (possibly balanced) channel.
#[derive(Clone, Debug)]
pub struct IdentityClient {
    channel: Channel,
    internal_token: Option<MetadataValue<Ascii>>,
    gateway_token: Option<MetadataValue<Ascii>>,
}

impl IdentityClient {
    /// Calls identity-svc over `channel`, presenting `internal_token` and `gateway_token` (so
    /// that it trusts the client address the gateway reports and takes its sign-in completions).
    pub fn new(
        channel: Channel,
        internal_token: Option<&str>,
        gateway_token: Option<&str>,
    ) -> Result<Self, String> {
        let metadata = |token: Option<&str>, var: &str| {
            token
                .map(MetadataValue::try_from)
                .transpose()
                .map_err(|_| format!("{var} is not valid gRPC metadata"))
        };
        Ok(Self {
            channel,
            internal_token: metadata(internal_token, "ASHGATE_INTERNAL_TOKEN")?,
            gateway_token: metadata(gateway_token, "ASHGATE_GATEWAY_TOKEN")?,
        })
    }

    /// A request carrying the caller's credential, the internal token and the client address.
    pub fn request<T>(&self, message: T, context: &CallContext) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(Duration::from_secs(10));
        let metadata = request.metadata_mut();
        if let Some(token) = &self.internal_token {
            metadata.insert(INTERNAL_TOKEN_METADATA, token.clone());
        }
        if let Some(token) = &self.gateway_token {
            metadata.insert(GATEWAY_TOKEN_METADATA, token.clone());
        }
        if let Some(bearer) = &context.bearer
            && let Ok(value) = MetadataValue::try_from(format!("Bearer {bearer}"))
        {
            metadata.insert("authorization", value);
        }
        if let Some(addr) = context.client_addr
            && let Ok(value) = MetadataValue::try_from(addr.to_string())
        {
            metadata.insert(CLIENT_ADDR_METADATA, value);
        }
        request
    }

    /// `AuditService`.
    pub fn audit(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.channel.clone())
    }

    /// `AuthService`.
    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    /// `UserService`.
    pub fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.channel.clone())
    }

    /// `InternalService` (OAuth2 sign-in completion; needs the internal token).
    pub fn internal(&self) -> InternalServiceClient<Channel> {
        InternalServiceClient::new(self.channel.clone())
    }

    /// `ApiKeyService`.
    pub fn keys(&self) -> ApiKeyServiceClient<Channel> {
        ApiKeyServiceClient::new(self.channel.clone())
    }

    /// The channel (for health checks).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }
}

/// collector-svc: span queries over gRPC and OTLP/HTTP forwarding.
#[derive(Clone, Debug)]
pub struct CollectorClient {
    channel: Channel,
    /// Base URLs of the OTLP/HTTP listeners, tried in order on connection errors.
    pub http_urls: Vec<String>,
    /// The HTTP client used to forward exports.
    pub http: reqwest::Client,
}

impl CollectorClient {
    /// Queries over `channel`, exports forwarded to `http_urls`.
    pub fn new(channel: Channel, http_urls: Vec<String>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { channel, http_urls, http })
    }

    /// `SpanQueryService` (accepts gzip answers).
    pub fn spans(&self) -> SpanQueryServiceClient<Channel> {
        SpanQueryServiceClient::new(self.channel.clone())
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// The gRPC channel (for health checks).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }
}

/// A lazily connecting channel to one URL, or balanced over several (`https://` URLs with `tls`).
pub fn lazy_channel(urls: &[String], tls: &ClientTls) -> Result<Channel, String> {
    let endpoints = urls
        .iter()
        .map(|url| {
            ashgate_runtime::tls::endpoint(url, tls).map(|e| {
                e.connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(10))
                    .keep_alive_timeout(Duration::from_secs(5))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad URL: {e}"))?;
    match endpoints.as_slice() {
        [] => Err("no URL".into()),
        [one] => Ok(one.connect_lazy()),
        _ => Ok(Channel::balance_list(endpoints.into_iter())),
    }
}

/// The upstream clients a gateway is built from, from its configuration.
pub fn connect(config: &GatewayConfig) -> Result<(IdentityClient, CollectorClient), String> {
    let identity = IdentityClient::new(
        lazy_channel(&config.identity_urls, &config.identity_tls)
            .map_err(|e| format!("ASHGATE_IDENTITY_URL: {e}"))?,
        config.internal_token.as_ref().map(|s| s.expose()),
        config.gateway_token.as_ref().map(|s| s.expose()),
    )?;
    let collector = CollectorClient::new(
        lazy_channel(&config.collector_grpc_urls, &ClientTls::default())
            .map_err(|e| format!("ASHGATE_COLLECTOR_GRPC_URLS: {e}"))?,
        config.collector_http_urls.clone(),
    )?;
    Ok((identity, collector))
}
