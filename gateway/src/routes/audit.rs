//! `GET /v1/audit_events`: identity-svc's security events, newest first, for admins and system
//! API keys. Cursor-paged like the read API (`next_cursor` is the GlobalID of the page's last
//! event); filters `event_type` (repeatable), `user` (a User GlobalID), `start_time` (inclusive)
//! and `end_time` (exclusive). Badly typed parameters get FastAPI's JSON 422, bad values a plain
//! 422 as Phoenix's `HTTPException`s.

use ashgate_identity_client::CredentialKind;
use ashgate_proto::identity as pb;
use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::read::params::{QueryParams, ReadResult, unprocessable};
use super::{ADMIN_ONLY, require_auth_enabled};
use crate::caller::{AnyCaller, Caller};
use crate::error::ApiError;
use crate::global_id;
use crate::state::AppState;
use crate::timestamp::iso_from_millis;

/// Node type of audit events (ids and cursors).
pub const AUDIT_EVENT: &str = "AuditEvent";

/// Every event type identity-svc records, as the API spells them.
pub const EVENT_TYPES: [&str; 17] = [
    "sign_in_succeeded",
    "sign_in_failed",
    "sign_in_locked_out",
    "rate_limited",
    "signed_out",
    "refresh_token_reused",
    "password_changed",
    "password_reset_requested",
    "password_reset_completed",
    "user_created",
    "user_deleted",
    "user_renamed",
    "user_role_changed",
    "api_key_created",
    "api_key_deleted",
    "admin_secret_used",
    "internal_credential_refused",
];

/// Admins (sessions, their keys, the admin secret) and system API keys.
pub fn may_read_audit(caller: &AnyCaller) -> bool {
    caller.principal.is_admin() || caller.principal.kind == CredentialKind::SystemApiKey
}

/// The identity-svc request for `params`, checked.
pub fn audit_request(params: &mut QueryParams) -> ReadResult<pb::ListAuditEventsRequest> {
    let limit = params.int("limit", 100, 1, Some(1000));
    let start = params.datetime("start_time");
    let end = params.datetime("end_time");
    params.finish()?;
    let event_types: Vec<String> =
        params.all("event_type").iter().flat_map(|v| v.split(',')).map(|v| v.trim().to_owned()).collect();
    let unknown: Vec<String> =
        event_types.iter().filter(|t| !EVENT_TYPES.contains(&t.as_str())).map(|t| format!("'{t}'")).collect();
    if !unknown.is_empty() {
        return Err(unprocessable(format!("Invalid event_type values: [{}]", unknown.join(", "))));
    }
    let user_id = match params.one("user").map(str::trim).filter(|u| !u.is_empty()) {
        None => 0,
        Some(raw) => global_id::decode_id(raw, global_id::USER)
            .ok_or_else(|| unprocessable(format!("Invalid User GlobalID format: {raw}")))?,
    };
    let cursor = match params.one("cursor").map(str::trim).filter(|c| !c.is_empty()) {
        None => String::new(),
        Some(raw) => {
            global_id::decode_id(raw, AUDIT_EVENT).ok_or_else(|| unprocessable("Invalid cursor"))?.to_string()
        }
    };
    let millis = |nanos: Option<i64>| nanos.map_or(0, |n| (n / 1_000_000).max(1));
    Ok(pb::ListAuditEventsRequest {
        cursor,
        limit: u32::try_from(limit).unwrap_or(100),
        event_types,
        user_id,
        start_time_ms: millis(start),
        end_time_ms: millis(end),
    })
}

/// Who or what an event names: `{"type", "id", "name"}`.
fn party(kind: &str, node_type: Option<&str>, id: i64, name: String) -> Value {
    let id = match node_type {
        Some(node_type) if id > 0 => Value::String(global_id::encode(node_type, id)),
        _ => Value::Null,
    };
    json!({"type": kind, "id": id, "name": if name.is_empty() { Value::Null } else { Value::String(name) }})
}

/// One event as the API shows it.
pub fn event_json(event: pb::AuditEvent) -> Value {
    let detail: Map<String, Value> = serde_json::from_str(&event.detail_json).unwrap_or_default();
    let actor = match event.actor_type.as_str() {
        "none" | "" => Value::Null,
        "user" => party("user", Some(global_id::USER), event.actor_id, event.actor),
        "system_key" => party("system_key", Some(global_id::SYSTEM_API_KEY), event.actor_id, event.actor),
        other => party(other, None, 0, event.actor),
    };
    let subject = match event.subject_type.as_str() {
        "" => Value::Null,
        "user" => party("user", Some(global_id::USER), event.subject_id, event.subject),
        "api_key" => {
            let system = detail.get("kind").and_then(Value::as_str) == Some("system");
            let node = if system { global_id::SYSTEM_API_KEY } else { global_id::USER_API_KEY };
            party("api_key", Some(node), event.subject_id, event.subject)
        }
        other => party(other, None, 0, event.subject),
    };
    json!({
        "id": global_id::encode(AUDIT_EVENT, event.id),
        "type": event.event_type,
        "time": iso_from_millis(event.occurred_at_ms),
        "last_time": iso_from_millis(event.last_occurred_at_ms),
        "count": event.count,
        "actor": actor,
        "subject": subject,
        "user": (event.user_id > 0).then(|| global_id::encode(global_id::USER, event.user_id)),
        "client_address": (!event.client_addr.is_empty()).then_some(event.client_addr),
        "outcome": event.outcome,
        "detail": detail,
    })
}

/// `GET /v1/audit_events`: `{"data": [...], "next_cursor": ...}`.
#[tracing::instrument(skip_all)]
pub async fn list_audit_events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    mut params: QueryParams,
) -> ReadResult<Json<Value>> {
    require_auth_enabled(&state)?;
    if !may_read_audit(&caller) {
        return Err(ApiError::Forbidden(ADMIN_ONLY.into()).into());
    }
    let request = audit_request(&mut params)?;
    let request = state.identity.request(request, &caller.context);
    let reply = state.identity.audit().list_audit_events(request).await.map_err(ApiError::from)?.into_inner();
    let next_cursor =
        (!reply.next_cursor.is_empty()).then(|| global_id::encode(AUDIT_EVENT, &reply.next_cursor));
    let data: Vec<Value> = reply.events.into_iter().map(event_json).collect();
    Ok(Json(json!({"data": data, "next_cursor": next_cursor})))
}
