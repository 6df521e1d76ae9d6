//! The audit view of the settings (`/settings/audit`): identity-svc's security events, newest
//! first, filtered by type, user and time, paged with an "Older events" link. Admins only; a
//! member gets identity-svc's refusal as a 403 page.

use ashgate_proto::identity as pb;
use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode};

use crate::caller::ClientAddr;
use crate::error::ApiError;
use crate::pages::session::session;
use crate::pages::{Session, error_page, render};
use crate::routes::ADMIN_ONLY;
use crate::routes::audit::{AUDIT_EVENT, EVENT_TYPES, audit_request};
use crate::routes::read::params::QueryParams;
use crate::state::AppState;
use crate::timestamp::iso_from_millis;

/// One row of the table.
struct EventView {
    time: String,
    event_type: String,
    count: i64,
    actor: String,
    subject: String,
    client_address: String,
    outcome: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    root: &'a str,
    session: &'a Session,
    error: Option<String>,
    events: Vec<EventView>,
    event_types: [&'static str; 17],
    selected_type: String,
    user: String,
    start_time: String,
    end_time: String,
    /// The query of the next page, if there is one.
    older: Option<String>,
}

/// A party's name, else its kind ("admin_secret" has a name; "none" shows as nothing).
fn name_of(kind: &str, name: String) -> String {
    match kind {
        "none" => String::new(),
        _ if name.is_empty() => kind.to_owned(),
        _ => name,
    }
}

fn event_view(event: pb::AuditEvent) -> EventView {
    let time = iso_from_millis(event.occurred_at_ms);
    EventView {
        time: time.get(..19).unwrap_or_default().replace('T', " "),
        count: event.count,
        actor: name_of(&event.actor_type, event.actor),
        subject: name_of(&event.subject_type, event.subject),
        client_address: event.client_addr,
        outcome: event.outcome,
        detail: event.detail_json,
        event_type: event.event_type,
    }
}

/// `GET /settings/audit`.
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    client: ClientAddr,
) -> Response {
    let session = match session(&state, &Method::GET, &uri, &headers, client, false).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if !session.is_admin {
        return error_page(&state, &ApiError::Forbidden(ADMIN_ONLY.into()));
    }
    let query = uri.query().unwrap_or_default();
    let mut params = QueryParams::from_form_query(query);
    let field = |name: &str| params.one(name).unwrap_or_default().to_owned();
    let (selected_type, user, start_time, end_time) =
        (field("event_type"), field("user"), field("start_time"), field("end_time"));
    let mut page = AuditPage {
        root: &state.config.root_path,
        session: &session,
        error: None,
        events: Vec::new(),
        event_types: EVENT_TYPES,
        selected_type,
        user,
        start_time,
        end_time,
        older: None,
    };
    let request = match audit_request(&mut params) {
        Ok(request) => request,
        Err(error) => {
            page.error = Some(error.summary());
            return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let request = state.identity.request(request, &session.context);
    match state.identity.audit().list_audit_events(request).await {
        Ok(reply) => {
            let reply = reply.into_inner();
            page.events = reply.events.into_iter().map(event_view).collect();
            if !reply.next_cursor.is_empty() {
                let cursor = crate::global_id::encode(AUDIT_EVENT, &reply.next_cursor);
                let mut next = url::form_urlencoded::Serializer::new(String::new());
                for (key, value) in params.pairs().iter().filter(|(k, _)| k != "cursor") {
                    next.append_pair(key, value);
                }
                next.append_pair("cursor", &cursor);
                page.older = Some(next.finish());
            }
            render(StatusCode::OK, &page)
        }
        Err(status) => {
            let error = ApiError::from(status);
            page.error = Some(error.public_message().to_owned());
            render(error.status(), &page)
        }
    }
}
