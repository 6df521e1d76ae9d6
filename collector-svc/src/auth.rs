//! Stand-in for the credential verifier of `ashgate-identity-client`, with the same names and
//! signatures, so the collector compiles and runs with authentication disabled until the real
//! crate lands. Only `CredentialVerifier::disabled()` is usable here.

use std::task::{Context, Poll};
use std::time::Duration;

use ashgate_proto::identity::{CredentialKind, Role};
use futures::future::BoxFuture;

/// How to reach identity-svc and how long to cache its answers.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// identity-svc gRPC endpoints.
    pub identity_urls: Vec<String>,
    /// `x-ashgate-internal-token` sent with internal RPCs.
    pub internal_token: Option<String>,
    /// Upper bound on how long a positive answer is cached.
    pub max_cache_ttl: Duration,
    /// How long a rejection is cached.
    pub negative_cache_ttl: Duration,
    /// Maximum number of cached credentials.
    pub cache_capacity: u64,
}

/// The verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(String);

/// Counters of the verification cache.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    /// Answers served from the cache.
    pub hits: u64,
    /// Answers that needed identity-svc.
    pub misses: u64,
    /// Rejections served from the cache.
    pub negative_hits: u64,
}

/// Who sent a request.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The user the credential belongs to.
    pub user_id: i64,
    /// Which kind of credential it was.
    pub kind: CredentialKind,
    /// The owner's current role.
    pub role: Role,
    /// The credential's expiry (0 = never).
    pub expires_at_ms: i64,
    /// Token row or API key id.
    pub credential_id: i64,
    /// Whether the user must change their password.
    pub password_needs_reset: bool,
}

impl Principal {
    fn anonymous() -> Self {
        Self {
            user_id: 0,
            kind: CredentialKind::Anonymous,
            role: Role::Admin,
            expires_at_ms: 0,
            credential_id: 0,
            password_needs_reset: false,
        }
    }

    /// Whether the role is viewer.
    pub fn is_viewer(&self) -> bool {
        self.role == Role::Viewer
    }

    /// Whether the role is admin (or system).
    pub fn is_admin(&self) -> bool {
        matches!(self.role, Role::Admin | Role::System)
    }
}

/// Why a credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential.
    #[error("Invalid token")]
    Missing,
    /// Unknown, malformed or revoked credential.
    #[error("Invalid token")]
    Invalid,
    /// Expired credential.
    #[error("Expired token")]
    Expired,
    /// A viewer tried to write.
    #[error("Viewers cannot perform this action.")]
    ViewerForbidden,
    /// identity-svc could not be reached.
    #[error("Identity service unavailable")]
    Unavailable,
}

impl AuthError {
    /// Phoenix's text for this refusal.
    pub fn message(&self) -> &'static str {
        match self {
            Self::Missing | Self::Invalid => "Invalid token",
            Self::Expired => "Expired token",
            Self::ViewerForbidden => "Viewers cannot perform this action.",
            Self::Unavailable => "Identity service unavailable",
        }
    }

    /// The gRPC status for this refusal.
    pub fn to_status(&self) -> tonic::Status {
        match self {
            Self::Missing | Self::Invalid | Self::Expired => tonic::Status::unauthenticated(self.message()),
            Self::ViewerForbidden => tonic::Status::permission_denied(self.message()),
            Self::Unavailable => tonic::Status::unavailable(self.message()),
        }
    }

    /// The HTTP status for this refusal.
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            Self::Missing | Self::Invalid | Self::Expired => http::StatusCode::UNAUTHORIZED,
            Self::ViewerForbidden => http::StatusCode::FORBIDDEN,
            Self::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Verifies credentials (stand-in: only the disabled form exists).
#[derive(Clone, Debug)]
pub struct CredentialVerifier {
    enabled: bool,
}

impl CredentialVerifier {
    /// Not available in the stand-in.
    pub fn connect(_config: VerifierConfig) -> Result<Self, ClientError> {
        Err(ClientError("authentication needs ashgate-identity-client's verifier".into()))
    }

    /// Auth off: every request is the anonymous principal.
    pub fn disabled() -> Self {
        Self { enabled: false }
    }

    /// Verifies a bearer credential.
    pub async fn verify_bearer(&self, _credential: &str) -> Result<Principal, AuthError> {
        if self.enabled { Err(AuthError::Unavailable) } else { Ok(Principal::anonymous()) }
    }

    /// Verifies the `authorization` header.
    pub async fn verify_headers(&self, _headers: &http::HeaderMap) -> Result<Principal, AuthError> {
        self.verify_bearer("").await
    }

    /// Cache counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats::default()
    }
}

/// Tower layer that authenticates every gRPC request before the service runs.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    verifier: CredentialVerifier,
    deny_viewers: bool,
}

impl AuthLayer {
    /// Authenticates with `verifier`.
    pub fn new(verifier: CredentialVerifier) -> Self {
        Self { verifier, deny_viewers: false }
    }

    /// Also refuses viewers with PERMISSION_DENIED.
    pub fn deny_viewers(mut self) -> Self {
        self.deny_viewers = true;
        self
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, verifier: self.verifier.clone(), deny_viewers: self.deny_viewers }
    }
}

/// Service made by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    verifier: CredentialVerifier,
    deny_viewers: bool,
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let deny_viewers = self.deny_viewers;
        Box::pin(async move {
            let verdict = match verifier.verify_headers(request.headers()).await {
                Ok(p) if deny_viewers && p.is_viewer() => Err(AuthError::ViewerForbidden),
                other => other,
            };
            match verdict {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(error) => Ok(error.to_status().into_http()),
            }
        })
    }
}
