//! `UserService`: user management.

use std::sync::Arc;

use ashgate_proto::identity::{self as pb, user_service_server::UserService};
use tonic::{Request, Response, Status};

use super::convert::{auth_method_from_pb, optional_text, role_from_pb, user_to_pb};
use super::{authenticated, bearer, caller};
use crate::identity::Identity;
use crate::secret::Secret;
use crate::user::CreateUser;

/// The public user-management API.
pub struct UserApi(pub Arc<Identity>);

#[tonic::async_trait]
impl UserService for UserApi {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let caller = caller(&self.0, &request).await?;
        let body = request.into_inner();
        let create = CreateUser {
            email: body.email,
            username: body.username,
            role: role_from_pb(body.role)?,
            auth_method: auth_method_from_pb(body.auth_method)?,
            password: optional_text(body.password).map(Secret::new),
            oauth2_client_id: optional_text(body.oauth2_client_id),
            oauth2_user_id: optional_text(body.oauth2_user_id),
        };
        Ok(Response::new(user_to_pb(self.0.create_user(&caller, create).await?)))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let caller = caller(&self.0, &request).await?;
        self.0.delete_user(&caller, request.get_ref().user_id).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let principal = caller(&self.0, &request).await?.principal;
        let body = request.get_ref();
        let (users, next_cursor) = self.0.list_users(&principal, &body.cursor, body.limit).await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(user_to_pb).collect(),
            next_cursor,
        }))
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Result<Response<pb::User>, Status> {
        let principal = caller(&self.0, &request).await?.principal;
        Ok(Response::new(user_to_pb(self.0.get_user(&principal, request.get_ref().user_id).await?)))
    }

    async fn get_self(&self, request: Request<pb::GetSelfRequest>) -> Result<Response<pb::User>, Status> {
        // The forced-password-change page must be able to show who is signed in.
        let principal = self.0.authenticate(bearer(&request).as_deref(), true).await?;
        let user = self.0.get_self(&principal).await?;
        // Auth disabled: an anonymous user with id 0 and no auth method (Phoenix: ANONYMOUS).
        Ok(Response::new(user.map(user_to_pb).unwrap_or_default()))
    }

    async fn update_username(
        &self,
        request: Request<pb::UpdateUsernameRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let caller = caller(&self.0, &request).await?;
        let body = request.get_ref();
        Ok(Response::new(user_to_pb(self.0.update_username(&caller, body.user_id, &body.username).await?)))
    }

    async fn update_password(
        &self,
        request: Request<pb::UpdatePasswordRequest>,
    ) -> Result<Response<pb::User>, Status> {
        // A user who must change their password may do exactly this (to themself).
        let caller = authenticated(&self.0, &request, true).await?;
        let body = request.into_inner();
        if caller.principal.password_needs_reset && caller.principal.user_id != body.user_id {
            return Err(
                crate::error::Error::Forbidden(crate::identity::PASSWORD_CHANGE_REQUIRED.into()).into()
            );
        }
        let current = optional_text(body.current_password).map(Secret::new);
        let user = self
            .0
            .update_password(&caller, body.user_id, &Secret::new(body.new_password), current.as_ref())
            .await?;
        Ok(Response::new(user_to_pb(user)))
    }

    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let caller = caller(&self.0, &request).await?;
        let body = request.get_ref();
        let role = role_from_pb(body.role)?;
        Ok(Response::new(user_to_pb(self.0.update_role(&caller, body.user_id, role).await?)))
    }
}
