//! The seed's permission matrix, plus Phoenix's viewer role, the admin secret and API keys:
//! every action × every kind of caller, own vs other's, with the exact gRPC code.

use ashgate_proto::identity as pb;
use ashgate_testkit::identity::{ADMIN_PASSWORD, ADMIN_SECRET, IdentityFixture, bearer};
use tonic::{Code, Request};

use crate::{outcome, unique};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Admin,
    Member,
    Viewer,
    Anonymous,
    AdminSecret,
    SystemKey,
    MemberKey,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    CreateUser,
    DeleteOtherUser,
    ListUsers,
    GetOtherUser,
    GetSelf,
    RenameSelf,
    RenameOther,
    ChangeOwnPassword,
    ChangeOtherPassword,
    ChangeOtherRole,
    ChangeOwnRole,
    CreateSystemKey,
    ListSystemKeys,
    DeleteSystemKey,
    CreateUserKey,
    ListOwnKeys,
    ListAllUserKeys,
    DeleteOwnUserKey,
    DeleteOthersUserKey,
}

use Action::*;
use Actor::*;

const OK: Code = Code::Ok;
const PD: Code = Code::PermissionDenied;
const UA: Code = Code::Unauthenticated;
const NF: Code = Code::NotFound;

/// Columns: Admin, Member, Viewer, Anonymous, AdminSecret, SystemKey, MemberKey.
/// `None` = the action has no meaning for that caller (the system user owns no user keys).
const MATRIX: &[(Action, [Option<Code>; 7])] = &[
    (CreateUser, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (DeleteOtherUser, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (ListUsers, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (GetOtherUser, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (GetSelf, [Some(OK), Some(OK), Some(OK), Some(UA), Some(OK), Some(OK), Some(OK)]),
    (RenameSelf, [Some(OK), Some(OK), Some(OK), Some(UA), Some(PD), Some(PD), Some(OK)]),
    (RenameOther, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (ChangeOwnPassword, [Some(OK), Some(OK), Some(OK), Some(UA), Some(PD), Some(PD), Some(PD)]),
    (ChangeOtherPassword, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (ChangeOtherRole, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (ChangeOwnRole, [Some(PD), Some(PD), Some(PD), Some(UA), Some(PD), Some(PD), Some(PD)]),
    (CreateSystemKey, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (ListSystemKeys, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (DeleteSystemKey, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (CreateUserKey, [Some(OK), Some(OK), Some(OK), Some(UA), Some(PD), Some(PD), Some(PD)]),
    (ListOwnKeys, [Some(OK), Some(OK), Some(OK), Some(UA), Some(OK), Some(OK), Some(OK)]),
    (ListAllUserKeys, [Some(OK), Some(PD), Some(PD), Some(UA), Some(OK), Some(PD), Some(PD)]),
    (DeleteOwnUserKey, [Some(OK), Some(OK), Some(OK), Some(UA), None, None, Some(OK)]),
    (DeleteOthersUserKey, [Some(OK), Some(NF), Some(NF), Some(UA), Some(OK), Some(NF), Some(NF)]),
];

const ACTORS: [Actor; 7] = [Admin, Member, Viewer, Anonymous, AdminSecret, SystemKey, MemberKey];
const PASSWORD: &str = "user-password-1";

struct World {
    fx: IdentityFixture,
    admin_id: i64,
    system_id: i64,
    member_id: i64,
    viewer_id: i64,
    system_key: String,
    member_key: String,
}

impl World {
    async fn new() -> Self {
        let fx = IdentityFixture::start().await;
        let admin = fx
            .users()
            .get_self(bearer(pb::GetSelfRequest {}, &fx.admin_token().await))
            .await
            .unwrap()
            .into_inner();
        let system =
            fx.users().get_self(bearer(pb::GetSelfRequest {}, ADMIN_SECRET)).await.unwrap().into_inner();
        assert_eq!((admin.email.as_str(), system.email.as_str()), ("admin@localhost", "system@localhost"));
        let (member_id, member_token) = fx.user_with_role("member", pb::Role::Member).await;
        let (viewer_id, _) = fx.user_with_role("viewer", pb::Role::Viewer).await;
        let system_key = fx.system_key("matrix").await;
        let request = pb::CreateApiKeyRequest { name: "member key".into(), ..Default::default() };
        let member_key =
            fx.keys().create_user_api_key(bearer(request, &member_token)).await.unwrap().into_inner().key;
        Self { fx, admin_id: admin.id, system_id: system.id, member_id, viewer_id, system_key, member_key }
    }

    /// A fresh credential for `actor` (sessions are signed in anew: some actions end them).
    async fn credential(&self, actor: Actor) -> (Option<String>, i64) {
        match actor {
            Admin => {
                (Some(self.fx.login("admin@localhost", ADMIN_PASSWORD).await.access_token), self.admin_id)
            }
            Member => {
                (Some(self.fx.login("member@example.com", PASSWORD).await.access_token), self.member_id)
            }
            Viewer => {
                (Some(self.fx.login("viewer@example.com", PASSWORD).await.access_token), self.viewer_id)
            }
            Anonymous => (None, 0),
            AdminSecret => (Some(ADMIN_SECRET.to_owned()), self.system_id),
            SystemKey => (Some(self.system_key.clone()), self.system_id),
            MemberKey => (Some(self.member_key.clone()), self.member_id),
        }
    }

    fn admin_id(&self) -> i64 {
        self.admin_id
    }
}

fn request<T>(message: T, credential: &Option<String>) -> Request<T> {
    match credential {
        Some(token) => bearer(message, token),
        None => Request::new(message),
    }
}

async fn perform(world: &World, action: Action, actor: Actor) -> (Code, String) {
    let fx = &world.fx;
    let (credential, own_id) = world.credential(actor).await;
    let self_id = own_id;
    macro_rules! r {
        ($m:expr) => {
            request($m, &credential)
        };
    }
    match action {
        CreateUser => {
            let name = unique("created");
            let m = pb::CreateUserRequest {
                email: format!("{name}@example.com"),
                username: name,
                role: pb::Role::Member.into(),
                auth_method: pb::AuthMethod::Local.into(),
                ..Default::default()
            };
            outcome(fx.users().create_user(r!(m)).await)
        }
        DeleteOtherUser => {
            let victim = victim_id(fx).await;
            outcome(fx.users().delete_user(r!(pb::DeleteUserRequest { user_id: victim })).await)
        }
        ListUsers => outcome(fx.users().list_users(r!(pb::ListUsersRequest::default())).await),
        GetOtherUser => {
            let other = if actor == Admin { world.member_id } else { world.admin_id() };
            outcome(fx.users().get_user(r!(pb::GetUserRequest { user_id: other })).await)
        }
        GetSelf => outcome(fx.users().get_self(r!(pb::GetSelfRequest {})).await),
        RenameSelf => {
            let m = pb::UpdateUsernameRequest { user_id: self_id, username: unique("renamed") };
            outcome(fx.users().update_username(r!(m)).await)
        }
        RenameOther => {
            let m = pb::UpdateUsernameRequest { user_id: victim_id(fx).await, username: unique("renamed") };
            outcome(fx.users().update_username(r!(m)).await)
        }
        ChangeOwnPassword => {
            // A change must change it: to a temporary password, then back for the next actions.
            let current = if actor == Admin { ADMIN_PASSWORD } else { PASSWORD };
            let change = |from: &str, to: &str| pb::UpdatePasswordRequest {
                user_id: self_id,
                new_password: to.into(),
                current_password: from.into(),
            };
            let result = outcome(fx.users().update_password(r!(change(current, "temporary-1"))).await);
            if result.0 == OK {
                let email = match actor {
                    Admin => "admin@localhost",
                    Member => "member@example.com",
                    _ => "viewer@example.com",
                };
                let session = fx.login(email, "temporary-1").await.access_token;
                fx.users().update_password(bearer(change("temporary-1", current), &session)).await.unwrap();
            }
            result
        }
        ChangeOtherPassword => {
            let m = pb::UpdatePasswordRequest {
                user_id: victim_id(fx).await,
                new_password: "another-1".into(),
                current_password: String::new(),
            };
            outcome(fx.users().update_password(r!(m)).await)
        }
        ChangeOtherRole => {
            let m = pb::UpdateRoleRequest { user_id: victim_id(fx).await, role: pb::Role::Viewer.into() };
            outcome(fx.users().update_role(r!(m)).await)
        }
        ChangeOwnRole => {
            let m = pb::UpdateRoleRequest { user_id: self_id, role: pb::Role::Viewer.into() };
            outcome(fx.users().update_role(r!(m)).await)
        }
        CreateSystemKey => {
            let m = pb::CreateApiKeyRequest { name: "k".into(), ..Default::default() };
            outcome(fx.keys().create_system_api_key(r!(m)).await)
        }
        ListSystemKeys => outcome(fx.keys().list_system_api_keys(r!(pb::ListSystemApiKeysRequest {})).await),
        DeleteSystemKey => {
            let key = fx
                .keys()
                .create_system_api_key(bearer(
                    pb::CreateApiKeyRequest { name: "victim".into(), ..Default::default() },
                    ADMIN_SECRET,
                ))
                .await
                .unwrap()
                .into_inner();
            outcome(
                fx.keys()
                    .delete_system_api_key(r!(pb::DeleteApiKeyRequest { id: key.api_key.unwrap().id }))
                    .await,
            )
        }
        CreateUserKey => {
            let m = pb::CreateApiKeyRequest { name: "k".into(), ..Default::default() };
            outcome(fx.keys().create_user_api_key(r!(m)).await)
        }
        ListOwnKeys => outcome(fx.keys().list_own_api_keys(r!(pb::ListOwnApiKeysRequest {})).await),
        ListAllUserKeys => {
            outcome(fx.keys().list_all_user_api_keys(r!(pb::ListAllUserApiKeysRequest::default())).await)
        }
        DeleteOwnUserKey => {
            // A key the actor's own user owns, made through a session of that user.
            let session = match actor {
                Admin => fx.login("admin@localhost", ADMIN_PASSWORD).await.access_token,
                Member | MemberKey => fx.login("member@example.com", PASSWORD).await.access_token,
                Viewer => fx.login("viewer@example.com", PASSWORD).await.access_token,
                _ => fx.login("member@example.com", PASSWORD).await.access_token,
            };
            let key = fx
                .keys()
                .create_user_api_key(bearer(
                    pb::CreateApiKeyRequest { name: "own".into(), ..Default::default() },
                    &session,
                ))
                .await
                .unwrap()
                .into_inner();
            outcome(
                fx.keys()
                    .delete_user_api_key(r!(pb::DeleteApiKeyRequest { id: key.api_key.unwrap().id }))
                    .await,
            )
        }
        DeleteOthersUserKey => {
            let name = unique("keyowner");
            let (_, token) = fx.user_with_role(&name, pb::Role::Member).await;
            let key = fx
                .keys()
                .create_user_api_key(bearer(
                    pb::CreateApiKeyRequest { name: "theirs".into(), ..Default::default() },
                    &token,
                ))
                .await
                .unwrap()
                .into_inner();
            outcome(
                fx.keys()
                    .delete_user_api_key(r!(pb::DeleteApiKeyRequest { id: key.api_key.unwrap().id }))
                    .await,
            )
        }
    }
}

/// A fresh member to be acted upon (created with the admin secret).
async fn victim_id(fx: &IdentityFixture) -> i64 {
    let name = unique("victim");
    let m = pb::CreateUserRequest {
        email: format!("{name}@example.com"),
        username: name,
        role: pb::Role::Member.into(),
        auth_method: pb::AuthMethod::Local.into(),
        ..Default::default()
    };
    fx.users().create_user(bearer(m, ADMIN_SECRET)).await.unwrap().into_inner().id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_for_every_caller() {
    let world = World::new().await;
    let mut failures = Vec::new();
    for (action, row) in MATRIX {
        for (actor, expected) in ACTORS.iter().zip(row) {
            let Some(expected) = expected else { continue };
            let (code, message) = perform(&world, *action, *actor).await;
            if code != *expected {
                failures.push(format!(
                    "{action:?} by {actor:?}: expected {expected:?}, got {code:?} {message:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "permission matrix violations:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn denial_messages_are_phoenix_texts() {
    let world = World::new().await;
    let (code, message) = perform(&world, ListUsers, Member).await;
    assert_eq!((code, message.as_str()), (PD, "Only admin or system users can perform this action."));
    let (code, message) = perform(&world, ListUsers, Anonymous).await;
    assert_eq!((code, message.as_str()), (UA, "Invalid token"));
    let (code, message) = perform(&world, CreateSystemKey, SystemKey).await;
    assert_eq!((code, message.as_str()), (PD, "API keys cannot create API keys"));
    let (code, message) = perform(&world, CreateUserKey, MemberKey).await;
    assert_eq!((code, message.as_str()), (PD, "API keys cannot create API keys"));
    let (code, message) = perform(&world, ChangeOwnRole, Admin).await;
    assert_eq!((code, message.as_str()), (PD, "Cannot change your own role"));
    let (code, message) = perform(&world, DeleteOthersUserKey, Member).await;
    assert_eq!((code, message.as_str()), (NF, "API key not found"));
}

#[tokio::test]
async fn auth_disabled_manages_nothing() {
    // With authentication off every caller is anonymous; managing users or keys then would
    // plant credentials that sign in the day it is turned on (tests/security/auth_off.rs).
    let fx = IdentityFixture::start_with(|env| env.with("PHOENIX_ENABLE_AUTH", "false")).await;
    let disabled = (Code::FailedPrecondition, "Authentication is not enabled".to_owned());
    let m = pb::CreateUserRequest {
        email: "x@example.com".into(),
        username: "x".into(),
        role: pb::Role::Member.into(),
        ..Default::default()
    };
    assert_eq!(outcome(fx.users().create_user(Request::new(m)).await), disabled);
    assert_eq!(outcome(fx.users().list_users(Request::new(pb::ListUsersRequest::default())).await), disabled);
    let me = fx.users().get_self(Request::new(pb::GetSelfRequest {})).await.unwrap().into_inner();
    assert_eq!((me.id, me.auth_method), (0, 0), "anonymous");
    let key = pb::CreateApiKeyRequest { name: "k".into(), ..Default::default() };
    assert_eq!(outcome(fx.keys().create_system_api_key(Request::new(key)).await), disabled);
    let (code, _) = outcome(
        fx.auth().login(pb::LoginRequest { email: "admin@localhost".into(), password: "admin".into() }).await,
    );
    assert_eq!(code, Code::FailedPrecondition);
}
