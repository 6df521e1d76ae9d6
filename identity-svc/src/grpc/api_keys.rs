//! `ApiKeyService`: system and user API keys.

use std::sync::Arc;

use ashgate_proto::identity::{self as pb, api_key_service_server::ApiKeyService};
use tonic::{Request, Response, Status};

use super::caller;
use super::convert::{api_key_to_pb, optional_ms, optional_text};
use crate::api_key::{ApiKey, CreateApiKey};
use crate::identity::Identity;

/// The public API-key API.
pub struct ApiKeyApi(pub Arc<Identity>);

fn create_request(body: pb::CreateApiKeyRequest) -> CreateApiKey {
    CreateApiKey {
        name: body.name,
        description: optional_text(body.description),
        expires_at_ms: optional_ms(body.expires_at_ms),
    }
}

fn created((key, token): (ApiKey, String)) -> Response<pb::CreatedApiKey> {
    Response::new(pb::CreatedApiKey { api_key: Some(api_key_to_pb(key)), key: token })
}

fn listed(keys: Vec<ApiKey>, next_cursor: String) -> Response<pb::ListApiKeysResponse> {
    Response::new(pb::ListApiKeysResponse {
        api_keys: keys.into_iter().map(api_key_to_pb).collect(),
        next_cursor,
    })
}

#[tonic::async_trait]
impl ApiKeyService for ApiKeyApi {
    async fn create_system_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreatedApiKey>, Status> {
        let caller = caller(&self.0, &request).await?;
        Ok(created(self.0.create_system_api_key(&caller, create_request(request.into_inner())).await?))
    }

    async fn list_system_api_keys(
        &self,
        request: Request<pb::ListSystemApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let principal = caller(&self.0, &request).await?.principal;
        Ok(listed(self.0.list_system_api_keys(&principal).await?, String::new()))
    }

    async fn delete_system_api_key(
        &self,
        request: Request<pb::DeleteApiKeyRequest>,
    ) -> Result<Response<pb::DeleteApiKeyResponse>, Status> {
        let caller = caller(&self.0, &request).await?;
        self.0.delete_system_api_key(&caller, request.get_ref().id).await?;
        Ok(Response::new(pb::DeleteApiKeyResponse {}))
    }

    async fn create_user_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreatedApiKey>, Status> {
        let caller = caller(&self.0, &request).await?;
        Ok(created(self.0.create_user_api_key(&caller, create_request(request.into_inner())).await?))
    }

    async fn list_own_api_keys(
        &self,
        request: Request<pb::ListOwnApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let principal = caller(&self.0, &request).await?.principal;
        Ok(listed(self.0.list_own_api_keys(&principal).await?, String::new()))
    }

    async fn list_all_user_api_keys(
        &self,
        request: Request<pb::ListAllUserApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let principal = caller(&self.0, &request).await?.principal;
        let body = request.get_ref();
        let (keys, next) = self.0.list_all_user_api_keys(&principal, &body.cursor, body.limit).await?;
        Ok(listed(keys, next))
    }

    async fn delete_user_api_key(
        &self,
        request: Request<pb::DeleteApiKeyRequest>,
    ) -> Result<Response<pb::DeleteApiKeyResponse>, Status> {
        let caller = caller(&self.0, &request).await?;
        self.0.delete_user_api_key(&caller, request.get_ref().id).await?;
        Ok(Response::new(pb::DeleteApiKeyResponse {}))
    }
}
