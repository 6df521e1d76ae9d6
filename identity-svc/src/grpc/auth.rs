//! `AuthService`: sign-in and sessions.

use std::sync::Arc;

use ashgate_proto::identity::{self as pb, auth_service_server::AuthService};
use tonic::{Request, Response, Status};

use super::convert::{pair_to_pb, principal_to_pb};
use super::{bearer, client_addr};
use crate::identity::Identity;
use crate::secret::Secret;

/// The public sign-in API.
pub struct AuthApi(pub Arc<Identity>);

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::TokenPair>, Status> {
        let addr = client_addr(&self.0, &request);
        let body = request.into_inner();
        let pair = self.0.login(&body.email, &Secret::new(body.password), addr).await?;
        Ok(Response::new(pair_to_pb(pair)))
    }

    async fn ldap_login(
        &self,
        request: Request<pb::LdapLoginRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let addr = client_addr(&self.0, &request);
        let body = request.into_inner();
        let pair = self.0.ldap_login(&body.username, &Secret::new(body.password), addr).await?;
        Ok(Response::new(pair_to_pb(pair)))
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Result<Response<pb::TokenPair>, Status> {
        let addr = client_addr(&self.0, &request);
        let pair = self.0.refresh(&request.into_inner().refresh_token, addr).await?;
        Ok(Response::new(pair_to_pb(pair)))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        // Sign-out works with a credential that is no longer good for anything else.
        let principal = match bearer(&request) {
            Some(token) => self.0.authenticate(Some(&token), true).await.ok(),
            None => None,
        };
        let refresh = Some(request.get_ref().refresh_token.as_str()).filter(|t| !t.is_empty());
        let addr = client_addr(&self.0, &request);
        let user_id = self.0.logout(principal.as_ref(), refresh, addr).await?;
        Ok(Response::new(pb::LogoutResponse { user_id }))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::Principal>, Status> {
        let principal = self.0.authenticate(bearer(&request).as_deref(), true).await?;
        let mut reply = principal_to_pb(&principal, self.0.cache_until_ms(&principal));
        if let Some(user) = self.0.get_self(&principal).await? {
            reply.username = user.username;
            reply.email = user.email;
        }
        Ok(Response::new(reply))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        // The caller chooses where the emailed link (a credential) points: only the gateway may.
        super::require_gateway(&self.0, &request, "RequestPasswordReset").await?;
        let addr = client_addr(&self.0, &request);
        let body = request.into_inner();
        self.0.request_password_reset(&body.email, addr).await?;
        Ok(Response::new(pb::RequestPasswordResetResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        let addr = client_addr(&self.0, &request);
        let body = request.into_inner();
        self.0.reset_password(&body.token, &Secret::new(body.password), addr).await?;
        Ok(Response::new(pb::ResetPasswordResponse {}))
    }
}
