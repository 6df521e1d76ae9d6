//! `GET /v1/projects` and `GET /v1/projects/{project_identifier}` (Phoenix's `projects.py`),
//! and how every project route resolves its identifier.

use ashgate_proto::collector as pb;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::params::{QueryParams, ReadResult, unprocessable};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::global_id;
use crate::state::AppState;

/// A route's project identifier: a Project GlobalID is an id and only an id; anything else is
/// a name and only a name (issue 18.1: a project *named* "6" never answers for project 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectIdentifier {
    /// From a Project GlobalID (as sent, for messages).
    Id(i64, String),
    /// A name.
    Name(String),
}

impl ProjectIdentifier {
    /// Phoenix's `get_project_by_identifier`: a GlobalID of type Project whose id is an
    /// integer, else a name.
    pub fn parse(identifier: &str) -> Self {
        match global_id::decode(identifier) {
            Some((node_type, id)) if node_type == global_id::PROJECT => match id.parse::<i64>() {
                Ok(id) => Self::Id(id, identifier.to_owned()),
                Err(_) => Self::Name(identifier.to_owned()),
            },
            _ => Self::Name(identifier.to_owned()),
        }
    }

    /// The collector's selector (an id that cannot exist is sent as 0 and answered 404 here).
    pub fn selector(&self) -> Option<pb::ProjectSelector> {
        match self {
            Self::Id(id, _) => pb::ProjectSelector::by_id(*id),
            Self::Name(name) => pb::ProjectSelector::by_name(name.clone()),
        }
    }

    /// Phoenix's 404 text.
    pub fn not_found(&self) -> ApiError {
        ApiError::NotFound(match self {
            Self::Id(_, raw) => format!("Project with ID {raw} not found"),
            Self::Name(name) => format!("Project with name {name} not found"),
        })
    }

    /// Maps the collector's answers: NOT_FOUND (and an impossible id) to Phoenix's 404.
    pub fn status(&self, status: tonic::Status) -> ApiError {
        match status.code() {
            tonic::Code::NotFound => self.not_found(),
            tonic::Code::InvalidArgument if matches!(self, Self::Id(..)) => self.not_found(),
            _ => status.into(),
        }
    }
}

/// A request to collector-svc carrying the caller's credential.
pub fn upstream<T>(message: T, caller: &Caller) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(std::time::Duration::from_secs(30));
    if let Some(bearer) = &caller.0.context.bearer
        && let Ok(value) = tonic::metadata::MetadataValue::try_from(format!("Bearer {bearer}"))
    {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Phoenix's `Project` JSON.
pub fn project_json(project: &pb::Project) -> Value {
    let description = (!project.description.is_empty()).then_some(project.description.as_str());
    json!({"name": project.name, "description": description, "id": global_id::encode(global_id::PROJECT, project.id)})
}

/// `GET /v1/projects`: newest first, `{"data": [Project], "next_cursor"}`; the cursor is the
/// GlobalID of the next page's first project, as in Phoenix.
#[tracing::instrument(skip_all)]
pub async fn list_projects(
    State(state): State<AppState>,
    caller: Caller,
    mut params: QueryParams,
) -> ReadResult<Json<Value>> {
    // Phoenix has no upper bound; the collector serves at most 1000 a page and the cursor
    // carries on from there.
    let limit = params.int("limit", 100, 1, None);
    params.boolean("include_experiment_projects");
    params.boolean("include_dataset_evaluator_projects");
    params.finish()?;
    let max_id = match params.one("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(raw) => match global_id::decode(raw).and_then(|(_, id)| id.parse::<i64>().ok()) {
            Some(id) if id > 0 => id,
            Some(_) => return Ok(Json(json!({"data": [], "next_cursor": null}))),
            None => return Err(unprocessable(format!("Invalid cursor format: {raw}"))),
        },
    };
    let request = pb::ListProjectsRequest {
        limit: u32::try_from(limit.min(1000)).unwrap_or(1000),
        max_id,
        name_contains: params.one("name_contains").unwrap_or_default().to_owned(),
        with_stats: false,
    };
    let reply =
        state.collector.spans().list_projects(upstream(request, &caller)).await.map_err(ApiError::from)?;
    let reply = reply.into_inner();
    let data: Vec<Value> = reply.projects.iter().map(project_json).collect();
    let next_cursor =
        (reply.next_max_id != 0).then(|| global_id::encode(global_id::PROJECT, reply.next_max_id));
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})))
}

/// `GET /v1/projects/{project_identifier}`: `{"data": Project}`.
#[tracing::instrument(skip_all, fields(project = %project_identifier))]
pub async fn get_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(project_identifier): Path<String>,
) -> ReadResult<Json<Value>> {
    let identifier = ProjectIdentifier::parse(&project_identifier);
    let request = pb::GetProjectRequest { project: identifier.selector(), with_stats: false };
    let project = state
        .collector
        .spans()
        .get_project(upstream(request, &caller))
        .await
        .map_err(|status| identifier.status(status))?
        .into_inner();
    Ok(Json(json!({"data": project_json(&project)})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_ids_or_names_never_both() {
        let id = global_id::encode(global_id::PROJECT, 6);
        assert_eq!(ProjectIdentifier::parse(&id), ProjectIdentifier::Id(6, id.clone()));
        assert_eq!(ProjectIdentifier::parse("6"), ProjectIdentifier::Name("6".into()));
        let user = global_id::encode(global_id::USER, 6);
        assert_eq!(ProjectIdentifier::parse(&user), ProjectIdentifier::Name(user.clone()));
        assert_eq!(
            ProjectIdentifier::Name("x".into()).not_found().to_string(),
            "Project with name x not found"
        );
        assert_eq!(
            ProjectIdentifier::parse(&id).not_found().to_string(),
            format!("Project with ID {id} not found")
        );
    }
}
