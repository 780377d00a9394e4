//! Users and their credentials: `GET /api/users` and `POST /api/users`, a new token for oneself,
//! an enrolment code for a user who lost every token, its redemption (`POST /api/enrol`), and
//! revoking a token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kopa_core::names::{new_name, NameKind};
use kopa_core::permission::{decide, user_list_scope, Account, Action, Actor, UserScope};
use kopa_core::{Role, UserId};
use kopa_store::{AdminAct, Org, StoreError, User};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{by, entry, name_refused, parse_body, permit};
use crate::auth::{ApiAuth, Origin};
use crate::error::ApiError;
use crate::token::new_token;
use crate::AppState;

fn user_json(u: &User) -> Value {
    json!({"name": u.name, "org": u.org_name, "role": u.role.as_str()})
}

/// The account of `user` (of organisation `org`) as a target of the permission rule.
fn account<'a>(user: &'a User, org: &Org) -> Account<'a> {
    Account {
        user: &user.id,
        org: &user.org,
        role: user.role,
        directory: org.node.is_some(),
    }
}

/// A user and its organisation by the user's name; 404 when there is none.
async fn find_user(state: &AppState, name: &str) -> Result<(User, Org), ApiError> {
    let user = match state.store().user_by_name(name).await {
        Ok(u) => u,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(format!("no user named {name:?}")))
        }
        Err(e) => return Err(e.into()),
    };
    let org = state.store().org_by_name(&user.org_name).await?;
    Ok((user, org))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    name: String,
    org: String,
    #[serde(default)]
    role: Option<String>,
}

pub(super) async fn add_user(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    Origin(origin): Origin,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: NewUserBody = parse_body(&body)?;
    let role_name = b.role.as_deref().unwrap_or("analyst");
    let role = Role::parse(role_name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role {role_name:?} is not one of reader, analyst, org-admin, admin"
        ))
    })?;
    let org = match state.store().org_by_name(&b.org).await {
        Ok(o) => o,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(format!(
                "no organisation named {:?}",
                b.org
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let directory = org.node.is_some();
    permit(
        &p,
        &Action::AddUser {
            org: &org.id,
            role,
            directory,
        },
    )?;
    let users = state.store().users().await?;
    let name = new_name(
        NameKind::User,
        &b.name,
        users.iter().map(|u| u.name.as_str()),
    )
    .map_err(name_refused)?;
    // A directory entry (a user of an organisation on another node) never gets a credential here.
    let id = UserId::new();
    let (record, token) = match directory {
        true => (None, None),
        false => {
            let (record, token) = new_token(&id);
            (Some(record), Some(token))
        }
    };
    let detail = json!({"org": org.name, "role": role.as_str(), "node": org.node,
                        "token_id": record.as_ref().map(|t| &t.id)});
    let user = state
        .store()
        .administer(
            AdminAct::AddUser {
                id,
                name,
                org: org.id.clone(),
                role,
                token: record,
            },
            Some(by(&p, origin, detail)),
        )
        .await?
        .user()?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"name": user.name, "org": user.org_name, "role": role.as_str(),
                    "node": org.node, "token": token}),
        ),
    )
        .into_response())
}

pub(super) async fn list_users(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
) -> Result<Json<Value>, ApiError> {
    // Which accounts the caller may list is the permission rule's; the store reads just those.
    let scope = user_list_scope(&Actor::Person(&p)).map_err(|r| ApiError::forbidden(r.0))?;
    let users = match &scope {
        UserScope::All => state.store().users().await?,
        UserScope::Org(org) => state.store().users_of(org).await?,
    };
    Ok(Json(json!({
        "users": users.iter().map(user_json).collect::<Vec<_>>()
    })))
}

/// `POST /api/users/{name}/tokens`: a new token for oneself. No one makes a token for another user,
/// the administrator included (see `enrol_user` for a user who lost every token).
pub(super) async fn add_token(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    Origin(origin): Origin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (user, org) = find_user(&state, &name).await?;
    permit(&p, &Action::AddToken(account(&user, &org)))?;
    let (record, token) = new_token(&user.id);
    let e = entry(
        &p.user_name,
        &origin,
        "token.add",
        &user.name,
        json!({"token_id": record.id}),
    );
    state.store().add_token_audited(&record, Some(e)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": record.id, "user": user.name, "token": token})),
    )
        .into_response())
}

/// `POST /api/users/{name}/enrolment`: a one-time enrolment code for a user who lost every token,
/// issued by whoever manages the account. The user's remaining tokens are revoked.
pub(super) async fn enrol_user(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    Origin(origin): Origin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (user, org) = find_user(&state, &name).await?;
    permit(&p, &Action::Enrol(account(&user, &org)))?;
    let (record, code) = crate::enrolment::new_code(&user.id, &p.user_name, state.now());
    let e = entry(
        &p.user_name,
        &origin,
        "user.enrol",
        &user.name,
        json!({"enrolment_id": record.id}),
    );
    let revoked = state
        .store()
        .add_enrolment_audited(&record, Some(e))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"user": user.name, "code": code, "expires_at": record.expires_at.to_taxii(),
                    "tokens_revoked": revoked}),
        ),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemBody {
    user: String,
    code: String,
}

/// `POST /api/enrol` (no authentication: the code is the credential): redeem an enrolment code
/// once for a new token. Every failure looks the same, so that codes cannot be probed.
pub(super) async fn redeem_enrolment(
    State(state): State<AppState>,
    Origin(origin): Origin,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: RedeemBody = parse_body(&body)?;
    let refused = || {
        tracing::info!(client = %origin, "enrolment code refused");
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this enrolment code is not valid for this user (unknown, used, or expired)",
        )
    };
    let Some((id, secret)) = crate::enrolment::code_parts(b.code.trim()) else {
        return Err(refused());
    };
    let record = match state.store().enrolment(id).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(refused()),
        Err(e) => return Err(e.into()),
    };
    let user = match state.store().user_by_id(&record.user).await {
        Ok(u) => u,
        Err(StoreError::NotFound(_)) => return Err(refused()),
        Err(e) => return Err(e.into()),
    };
    let now = state.now();
    if !crate::enrolment::secret_matches(&record, secret)
        || user.name != b.user
        || record.redeemed_at.is_some()
        || now > record.expires_at
    {
        return Err(refused());
    }
    let (token_record, token) = new_token(&user.id);
    let e = entry(
        &user.name,
        &origin,
        "user.enrolled",
        &user.name,
        json!({"enrolment_id": record.id, "issued_by": record.issued_by,
               "token_id": token_record.id}),
    );
    match state
        .store()
        .redeem_enrolment_audited(&record.id, &token_record, now, &origin, Some(e))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(refused()),
        Err(e) => return Err(e.into()),
    }
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": token_record.id, "user": user.name, "token": token,
                    "issued_by": record.issued_by}),
        ),
    )
        .into_response())
}

pub(super) async fn revoke_token(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    Origin(origin): Origin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no token {id:?}"));
    let record = match state.store().token(&id).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let owner = match state.store().user_by_id(&record.user).await {
        Ok(u) => u,
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let org = state.store().org_by_name(&owner.org_name).await?;
    if decide(
        &Actor::Person(&p),
        &Action::RevokeToken(account(&owner, &org)),
    )
    .is_err()
    {
        // Do not reveal the token ids of accounts the caller does not manage.
        return Err(not_found());
    }
    let e = entry(
        &p.user_name,
        &origin,
        "token.revoke",
        &owner.name,
        json!({"token_id": id}),
    );
    state.store().revoke_token_audited(&id, Some(e)).await?;
    Ok((StatusCode::OK, Json(json!({"id": id, "revoked": true}))).into_response())
}
