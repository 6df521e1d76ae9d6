//! The settings page: profile, own API keys for everyone; users and system API keys for admins.
//! Members never see the admin parts, and identity-svc refuses them regardless (the refusal is
//! shown on the page). Every action is a form post that answers with a 303 back to the page,
//! except key creation, which renders the new key once.

use ashgate_proto::identity as pb;
use askama::Template;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde::Deserialize;

use crate::caller::ClientAddr;
use crate::error::ApiError;
use crate::pages::session::session;
use crate::pages::{FormFields, Session, render, see_other};
use crate::routes::users::role_name;
use crate::state::AppState;
use crate::timestamp::{now_millis, parse_iso_millis};

/// Roles an admin can give.
const ROLES: [&str; 3] = ["ADMIN", "MEMBER", "VIEWER"];
/// The seeded admin, who can be neither deleted nor demoted.
const DEFAULT_ADMIN_EMAIL: &str = "admin@localhost";

/// One API key row.
struct KeyView {
    id: i64,
    name: String,
    description: String,
    created: String,
    expires: String,
}

/// One user row.
struct UserView {
    id: i64,
    username: String,
    email: String,
    role: &'static str,
    auth_method: &'static str,
    needs_reset: bool,
    is_self: bool,
    local: bool,
    deletable: bool,
    role_changeable: bool,
}

/// A key that was just created, shown once.
struct NewKey {
    kind: &'static str,
    name: String,
    key: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage<'a> {
    root: &'a str,
    session: &'a Session,
    is_admin: bool,
    has_password: bool,
    notice: Option<&'static str>,
    error: Option<&'a str>,
    new_key: Option<NewKey>,
    own_keys: Vec<KeyView>,
    users: Vec<UserView>,
    system_keys: Vec<KeyView>,
    roles: [&'static str; 3],
}

fn day(ms: i64) -> String {
    crate::timestamp::iso_from_millis(ms).get(..10).unwrap_or_default().to_owned()
}

fn key_view(key: pb::ApiKey) -> KeyView {
    KeyView {
        id: key.id,
        name: key.name,
        description: key.description,
        created: day(key.created_at_ms),
        expires: if key.expires_at_ms > 0 { day(key.expires_at_ms) } else { "Never".into() },
    }
}

fn user_view(user: pb::User, me: i64) -> UserView {
    let protected = user.email == DEFAULT_ADMIN_EMAIL;
    let local = user.auth_method == i32::from(pb::AuthMethod::Local);
    UserView {
        id: user.id,
        role: role_name(user.role),
        auth_method: match pb::AuthMethod::try_from(user.auth_method) {
            Ok(pb::AuthMethod::Oauth2) => "OAuth2",
            Ok(pb::AuthMethod::Ldap) => "LDAP",
            _ => "Password",
        },
        needs_reset: user.password_needs_reset && local,
        is_self: user.id == me,
        local,
        deletable: !protected,
        role_changeable: !protected,
        username: user.username,
        email: user.email,
    }
}

/// The message for `?done=<code>` after a successful action.
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "username-saved" => "Username saved.",
        "password-changed" => "Your password was changed. Your other sessions were signed out.",
        "key-deleted" => "API key deleted. It stopped working at once.",
        "system-key-deleted" => "System API key deleted. It stopped working at once.",
        "user-created" => "User added. They choose their own password at first sign-in.",
        "user-deleted" => "User deleted, with their sessions and API keys.",
        "user-renamed" => "Username changed.",
        "role-changed" => "Role changed. The user was signed out everywhere.",
        "password-reset" => "Password reset. The user must choose a new one at next sign-in.",
        _ => return None,
    })
}

/// Renders the page with fresh data.
async fn page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<&str>,
    new_key: Option<NewKey>,
) -> Response {
    let identity = &state.identity;
    let (mut keys_client, mut users_client, mut system_client) =
        (identity.keys(), identity.users(), identity.keys());
    let own = keys_client.list_own_api_keys(identity.request(pb::ListOwnApiKeysRequest {}, &session.context));
    let admin_data = async {
        if !session.is_admin {
            return Ok((Vec::new(), Vec::new()));
        }
        let users_request =
            identity.request(pb::ListUsersRequest { cursor: String::new(), limit: 1000 }, &session.context);
        let keys_request = identity.request(pb::ListSystemApiKeysRequest {}, &session.context);
        let (users, keys) = tokio::join!(
            users_client.list_users(users_request),
            system_client.list_system_api_keys(keys_request)
        );
        Ok::<_, tonic::Status>((users?.into_inner().users, keys?.into_inner().api_keys))
    };
    // Only local users have a password to change (not OAuth2 or LDAP users).
    let mut self_client = identity.users();
    let me = self_client.get_self(identity.request(pb::GetSelfRequest {}, &session.context));
    let (own, admin, me) = tokio::join!(own, admin_data, me);
    let (own_keys, (users, system_keys), me) = match (own, admin, me) {
        (Ok(own), Ok(admin), Ok(me)) => (own.into_inner().api_keys, admin, me.into_inner()),
        (Err(status), _, _) | (_, Err(status), _) | (_, _, Err(status)) => {
            return super::error_page(state, &status.into());
        }
    };
    let newest_first = |mut keys: Vec<pb::ApiKey>| {
        keys.sort_by_key(|k| std::cmp::Reverse(k.id));
        keys.into_iter().map(key_view).collect()
    };
    let page = SettingsPage {
        root: &state.config.root_path,
        session,
        is_admin: session.is_admin,
        has_password: me.auth_method == i32::from(pb::AuthMethod::Local),
        notice,
        error,
        new_key,
        own_keys: newest_first(own_keys),
        users: users.into_iter().map(|u| user_view(u, session.user_id)).collect(),
        system_keys: newest_first(system_keys),
        roles: ROLES,
    };
    render(status, &page)
}

/// Query of `GET /settings`.
#[derive(Debug, Default, Deserialize)]
pub struct SettingsQuery {
    done: Option<String>,
}

/// `GET /settings`.
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    client: ClientAddr,
) -> Response {
    let query = Query::<SettingsQuery>::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    match session(&state, &Method::GET, &uri, &headers, client, false).await {
        Ok(session) => {
            let done = query.done.and_then(|code| notice(&code));
            page(&state, &session, StatusCode::OK, done, None, None).await
        }
        Err(response) => response,
    }
}

/// What a form action did.
enum Outcome {
    /// 303 back to the page with this notice code.
    Done(&'static str),
    /// Show the page with a key shown once.
    Created(NewKey),
}

/// Runs a form action for the signed-in session: session, form token, action, and the answer
/// (303 with a notice, or the page with the error and its status).
async fn act<F, Fut>(
    state: AppState,
    uri: Uri,
    headers: HeaderMap,
    client: ClientAddr,
    form: FormFields,
    action: F,
) -> Response
where
    F: FnOnce(AppState, Session, FormFields) -> Fut,
    Fut: Future<Output = Result<Outcome, ApiError>>,
{
    let session = match session(&state, &Method::POST, &uri, &headers, client, false).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let result = match session.check_form(&form) {
        Ok(()) => action(state.clone(), session.clone(), form).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(Outcome::Done(code)) => see_other(&state, &format!("/settings?done={code}")),
        Ok(Outcome::Created(key)) => page(&state, &session, StatusCode::OK, None, None, Some(key)).await,
        Err(error) => {
            if let ApiError::Internal(detail) = &error {
                tracing::error!(%detail, "settings action failed");
            }
            page(&state, &session, error.status(), None, Some(error.public_message()), None).await
        }
    }
}

/// The expiry of a key form: `YYYY-MM-DD` means the end of that day (UTC).
fn expiry(form: &FormFields) -> Result<i64, ApiError> {
    let raw = form.text("expires_at");
    if raw.is_empty() {
        return Ok(0);
    }
    let start =
        parse_iso_millis(raw).ok_or_else(|| ApiError::Unprocessable("Enter the expiry as a date.".into()))?;
    let end = if raw.len() == 10 { start + 86_400_000 } else { start };
    if end <= now_millis() {
        return Err(ApiError::Unprocessable("Expiration time must be in the future".into()));
    }
    Ok(end)
}

fn key_request(form: &FormFields) -> Result<pb::CreateApiKeyRequest, ApiError> {
    let name = form.text("name");
    if name.is_empty() {
        return Err(ApiError::Unprocessable("Give the key a name.".into()));
    }
    Ok(pb::CreateApiKeyRequest {
        name: name.to_owned(),
        description: form.text("description").to_owned(),
        expires_at_ms: expiry(form)?,
    })
}

fn created(kind: &'static str, reply: pb::CreatedApiKey) -> Outcome {
    Outcome::Created(NewKey { kind, name: reply.api_key.map(|k| k.name).unwrap_or_default(), key: reply.key })
}

macro_rules! form_action {
    ($(#[$doc:meta])* $name:ident, |$state:ident, $session:ident, $form:ident $(, $id:ident)?| $body:expr) => {
        $(#[$doc])*
        #[tracing::instrument(skip_all)]
        pub async fn $name(
            State(state): State<AppState>,
            OriginalUri(uri): OriginalUri,
            $(Path($id): Path<i64>,)?
            headers: HeaderMap,
            client: ClientAddr,
            form: FormFields,
        ) -> Response {
            act(state, uri, headers, client, form, move |$state: AppState, $session: Session, $form: FormFields| async move { $body }).await
        }
    };
}

form_action!(
    /// `POST /settings/username`: renames the signed-in user.
    rename_self, |state, session, form| {
        let request = pb::UpdateUsernameRequest { user_id: session.user_id, username: form.text("username").to_owned() };
        state.identity.users().update_username(state.identity.request(request, &session.context)).await?;
        Ok(Outcome::Done("username-saved"))
    }
);

form_action!(
    /// `POST /settings/api-keys`: a user key, shown once.
    create_own_key, |state, session, form| {
        let request = state.identity.request(key_request(&form)?, &session.context);
        Ok(created("User", state.identity.keys().create_user_api_key(request).await?.into_inner()))
    }
);

form_action!(
    /// `POST /settings/api-keys/{id}/delete`.
    delete_own_key, |state, session, _form, id| {
        let request = state.identity.request(pb::DeleteApiKeyRequest { id }, &session.context);
        state.identity.keys().delete_user_api_key(request).await?;
        Ok(Outcome::Done("key-deleted"))
    }
);

form_action!(
    /// `POST /settings/system-keys` (admins): a system key, shown once.
    create_system_key, |state, session, form| {
        let request = state.identity.request(key_request(&form)?, &session.context);
        Ok(created("System", state.identity.keys().create_system_api_key(request).await?.into_inner()))
    }
);

form_action!(
    /// `POST /settings/system-keys/{id}/delete` (admins).
    delete_system_key, |state, session, _form, id| {
        let request = state.identity.request(pb::DeleteApiKeyRequest { id }, &session.context);
        state.identity.keys().delete_system_api_key(request).await?;
        Ok(Outcome::Done("system-key-deleted"))
    }
);

/// The role named in a form.
fn role(form: &FormFields) -> Result<pb::Role, ApiError> {
    match form.text("role") {
        "ADMIN" => Ok(pb::Role::Admin),
        "MEMBER" => Ok(pb::Role::Member),
        "VIEWER" => Ok(pb::Role::Viewer),
        _ => Err(ApiError::Unprocessable("Choose a role: ADMIN, MEMBER or VIEWER.".into())),
    }
}

form_action!(
    /// `POST /settings/users` (admins): a local user who must change the password at first sign-in.
    create_user, |state, session, form| {
        let request = pb::CreateUserRequest {
            email: form.text("email").to_owned(),
            username: form.text("username").to_owned(),
            role: role(&form)?.into(),
            auth_method: pb::AuthMethod::Local.into(),
            password: form.raw("password").to_owned(),
            ..Default::default()
        };
        state.identity.users().create_user(state.identity.request(request, &session.context)).await?;
        Ok(Outcome::Done("user-created"))
    }
);

form_action!(
    /// `POST /settings/users/{id}/delete` (admins).
    delete_user, |state, session, _form, id| {
        let request = state.identity.request(pb::DeleteUserRequest { user_id: id }, &session.context);
        state.identity.users().delete_user(request).await?;
        Ok(Outcome::Done("user-deleted"))
    }
);

form_action!(
    /// `POST /settings/users/{id}/username` (admins).
    rename_user, |state, session, form, id| {
        let request = pb::UpdateUsernameRequest { user_id: id, username: form.text("username").to_owned() };
        state.identity.users().update_username(state.identity.request(request, &session.context)).await?;
        Ok(Outcome::Done("user-renamed"))
    }
);

form_action!(
    /// `POST /settings/users/{id}/role` (admins).
    change_role, |state, session, form, id| {
        let request = pb::UpdateRoleRequest { user_id: id, role: role(&form)?.into() };
        state.identity.users().update_role(state.identity.request(request, &session.context)).await?;
        Ok(Outcome::Done("role-changed"))
    }
);

form_action!(
    /// `POST /settings/users/{id}/password` (admins): the user must change it at next sign-in.
    reset_password, |state, session, form, id| {
        let new_password = form.raw("new_password");
        if new_password.is_empty() {
            return Err(ApiError::Unprocessable("Enter a new password.".into()));
        }
        let request = pb::UpdatePasswordRequest { user_id: id, new_password: new_password.to_owned(), current_password: String::new() };
        state.identity.users().update_password(state.identity.request(request, &session.context)).await?;
        Ok(Outcome::Done("password-reset"))
    }
);
