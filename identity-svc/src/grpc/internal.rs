//! `InternalService`: credential verification and the revocation stream, for ashgate services
//! only (they present `x-ashgate-internal-token`).

use std::pin::Pin;
use std::sync::Arc;

use ashgate_proto::identity::{
    self as pb, internal_service_server::InternalService, revocation_event::Target,
};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::convert::{optional_text, pair_to_pb, principal_to_pb, role_from_pb};
use super::require_internal;
use crate::identity::Identity;
use crate::oauth2::OAuth2Identity;
use crate::revocation::Revocation;

/// The internal API.
pub struct InternalApi {
    /// The domain.
    pub identity: Arc<Identity>,
    /// Turns true when the server shuts down: revocation streams end then.
    pub closing: tokio::sync::watch::Receiver<bool>,
}

/// How often a revocation stream with nothing to say says so (verifiers count a stream silent
/// for [`ashgate_identity_client::STREAM_SILENCE`] as down).
const HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(500);

/// Why a replica does not serve revocations right now.
const UNRELIABLE: &str = "this replica may be missing revocations (its Redis subscription is down)";

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RevocationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl InternalService for InternalApi {
    async fn verify_credential(
        &self,
        request: Request<pb::VerifyCredentialRequest>,
    ) -> Result<Response<pb::Principal>, Status> {
        require_internal(&self.identity, &request, "VerifyCredential").await?;
        let credential = &request.get_ref().credential;
        let principal = if self.identity.config().auth_enabled {
            let principal = self.identity.verify_credential(credential).await?;
            if principal.kind == crate::principal::CredentialKind::AdminSecret {
                let addr = super::client_addr(&self.identity, &request);
                self.identity.admin_secret_used(addr, "verifier").await;
            }
            principal
        } else {
            crate::principal::Principal::anonymous()
        };
        Ok(Response::new(principal_to_pb(&principal, self.identity.cache_until_ms(&principal))))
    }

    type WatchRevocationsStream = EventStream;

    async fn watch_revocations(
        &self,
        request: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        require_internal(&self.identity, &request, "WatchRevocations").await?;
        // Subscribe before answering: once the caller sees the response, it misses nothing.
        let receiver = self.identity.revocations().subscribe();
        // A replica that may be missing other replicas' revocations (its Redis subscription is
        // down) must not be anyone's source of them: the verifier would take the stream as
        // complete and cache answers of healthy replicas whose revocations reach it through
        // no one. It refuses, and ends its open streams, until it hears everything again.
        let bus = self.identity.revocations().clone();
        if !bus.is_reliable() {
            return Err(Status::unavailable(UNRELIABLE));
        }
        let closing = self.closing.clone();
        let stream = futures::stream::unfold(Some((receiver, closing, 0u64, bus)), |state| async move {
            let (mut receiver, mut closing, seq, bus) = state?;
            let next = tokio::select! {
                next = receiver.recv() => Some(next),
                _ = closing.wait_for(|closing| *closing) => return None,
                // A beat (an event with no target) when there is nothing else: a verifier that
                // hears nothing for longer knows its stream is dead without waiting for TCP.
                () = tokio::time::sleep(HEARTBEAT) => None,
            };
            let Some(next) = next else {
                let beat = pb::RevocationEvent { seq, target: None };
                return Some((Ok(beat), Some((receiver, closing, seq, bus))));
            };
            if matches!(next, Ok(Revocation::Flush)) && !bus.is_reliable() {
                // The last item: the stream ends after it.
                return Some((Err(Status::unavailable(UNRELIABLE)), None));
            }
            let target = match next {
                Ok(Revocation::AccessToken(id)) => Target::Credential(pb::RevokedCredential {
                    kind: pb::CredentialKind::AccessToken.into(),
                    id,
                }),
                Ok(Revocation::ApiKey(id)) => {
                    // Verifiers key their caches by credential, so user vs system does not matter.
                    Target::Credential(pb::RevokedCredential {
                        kind: pb::CredentialKind::UserApiKey.into(),
                        id,
                    })
                }
                Ok(Revocation::User(id)) => Target::UserId(id),
                // Falling behind means events were lost: the subscriber must drop everything.
                Ok(Revocation::Flush) | Err(RecvError::Lagged(_)) => Target::Flush(true),
                Err(RecvError::Closed) => return None,
            };
            let seq = seq + 1;
            Some((Ok(pb::RevocationEvent { seq, target: Some(target) }), Some((receiver, closing, seq, bus))))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn complete_o_auth2_sign_in(
        &self,
        request: Request<pb::CompleteOAuth2SignInRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        // Whose account opens is decided here: only the gateway, which verified the ID token.
        super::require_gateway(&self.identity, &request, "CompleteOAuth2SignIn").await?;
        let addr = super::client_addr(&self.identity, &request);
        let body = request.into_inner();
        let role = match body.role {
            0 => None,
            value => Some(role_from_pb(value)?),
        };
        let identity = OAuth2Identity {
            client_id: body.client_id,
            subject: body.subject,
            email: body.email,
            email_verified: body.email_verified,
            username: body.username,
            profile_picture_url: optional_text(body.profile_picture_url),
            allow_sign_up: body.allow_sign_up,
            role,
            resync_role: body.resync_role,
        };
        Ok(Response::new(pair_to_pb(self.identity.complete_oauth2_sign_in(identity, addr).await?)))
    }
}
