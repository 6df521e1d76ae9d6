//! `AuditService`: the security events, for admins and system keys.

use std::sync::Arc;

use ashgate_proto::identity::{self as pb, audit_service_server::AuditService};
use tonic::{Request, Response, Status};

use super::caller;
use crate::audit::{AuditQuery, EventType, StoredEvent, parse_cursor};
use crate::error::Error;
use crate::identity::Identity;

/// The public audit API.
pub struct AuditApi(pub Arc<Identity>);

fn event_to_pb(event: StoredEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        id: event.id,
        event_type: event.event_type,
        occurred_at_ms: event.occurred_at_ms,
        last_occurred_at_ms: event.last_at_ms,
        count: event.count,
        actor_type: event.actor_type,
        actor_id: event.actor_id.unwrap_or_default(),
        actor: event.actor.unwrap_or_default(),
        subject_type: event.subject_type.unwrap_or_default(),
        subject_id: event.subject_id.unwrap_or_default(),
        subject: event.subject.unwrap_or_default(),
        user_id: event.user_id.unwrap_or_default(),
        client_addr: event.client_addr.unwrap_or_default(),
        outcome: event.outcome,
        detail_json: event.detail,
    }
}

/// 0 means "no bound" on the wire.
fn bound(ms: i64) -> Option<i64> {
    (ms != 0).then_some(ms)
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let principal = caller(&self.0, &request).await?.principal;
        let body = request.into_inner();
        let event_types = body
            .event_types
            .iter()
            .map(|t| EventType::parse(t).ok_or_else(|| Error::Invalid(format!("Unknown event type: {t}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let query = AuditQuery {
            event_types,
            user_id: (body.user_id != 0).then_some(body.user_id),
            start_ms: bound(body.start_time_ms),
            end_ms: bound(body.end_time_ms),
            before_id: parse_cursor(&body.cursor)?,
            limit: body.limit,
        };
        let (events, next_cursor) = self.0.list_audit_events(&principal, query).await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: events.into_iter().map(event_to_pb).collect(),
            next_cursor,
        }))
    }
}
