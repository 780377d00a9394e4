//! The REST API beside TAXII, under `/api/`: what TAXII lacks — administration of organisations,
//! users, tokens and collections, search by value, export of a collection as a STIX bundle, and the
//! audit log. JSON in and out; errors are `{"error": message}`. Described by `/api/openapi.json`.
//!
//! Administrators manage people and collections; they read intelligence under the same visibility
//! rule as everyone else (search and export go through the store's audience-filtered reads).

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use kopa_core::audit::NewAuditEntry;
use kopa_core::names::{new_name, NameError, NameKind};
use kopa_core::permission::{decide, Account, Action, Actor};
use kopa_core::{Principal, Role, UserId};
use kopa_store::{
    Access, AdminAct, AuditBy, NewCollection, ObjectFilter, Org, StoreError, User, VersionMatch,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{ApiAuth, ApiCaller, Caller, Origin};
use crate::error::ApiError;
use crate::token::new_token;
use crate::AppState;

/// The OpenAPI 3 document of the REST API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every REST route as (method, path template): the router and the OpenAPI document must agree with
/// this list (a test checks the document).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/openapi.json"),
    ("get", "/api/me"),
    ("get", "/api/search"),
    ("get", "/api/orgs"),
    ("post", "/api/orgs"),
    ("get", "/api/users"),
    ("post", "/api/users"),
    ("post", "/api/users/{name}/tokens"),
    ("post", "/api/users/{name}/enrolment"),
    ("post", "/api/enrol"),
    ("delete", "/api/tokens/{id}"),
    ("get", "/api/collections"),
    ("post", "/api/collections"),
    ("get", "/api/export/{collection}"),
    ("get", "/api/audit"),
    ("get", "/api/peers"),
    ("get", "/api/checkpoint"),
    ("get", "/healthz"),
    ("get", "/metrics"),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/me", get(me))
        .route("/api/search", get(search))
        .route("/api/orgs", get(list_orgs).post(add_org))
        .route("/api/users", get(list_users).post(add_user))
        .route("/api/users/{name}/tokens", post(add_token))
        .route("/api/users/{name}/enrolment", post(enrol_user))
        .route("/api/enrol", post(redeem_enrolment))
        .route("/api/tokens/{id}", delete(revoke_token))
        .route(
            "/api/collections",
            get(list_collections).post(add_collection),
        )
        .route("/api/export/{collection}", get(export))
        .route("/api/audit", get(audit_log))
        .route("/api/peers", get(list_peers))
        .route("/api/checkpoint", get(checkpoint))
}

/// Keys of the sync loop's status report shown beside the peer's own columns (zero until the
/// first round).
const STATUS_FIELDS: &[&str] = &[
    "lag_objects",
    "lag_seconds",
    "received",
    "duplicates",
    "own",
    "rejected",
    "pushed",
    "sightings_sent",
    "skipped",
    "audit_checkpoint",
    "audit_alarm",
];

fn status_zero(key: &str) -> Value {
    match key {
        "rejected" => json!({}),
        "skipped" => json!([]),
        "audit_checkpoint" | "audit_alarm" => Value::Null,
        _ => json!(0),
    }
}

/// One peer as the REST API shows it: declaration, policy, sync status, and what this node refused
/// from it since it started, as `/metrics` counts it (never its token).
fn peer_json(
    p: &kopa_store::PeerRecord,
    (posts_refused, objects_refused): (u64, std::collections::BTreeMap<String, u64>),
) -> Value {
    let ts = |t: Option<kopa_stix::Timestamp>| t.map_or(Value::Null, |t| json!(t.to_taxii()));
    let policy: Value =
        serde_json::from_str(&p.peer.policy).unwrap_or_else(|_| json!(p.peer.policy));
    let mut m = serde_json::Map::new();
    m.insert("name".into(), json!(p.peer.name));
    m.insert("node_id".into(), json!(p.peer.node_id));
    m.insert("url".into(), json!(p.peer.url));
    m.insert("public_key".into(), json!(p.peer.public_key));
    m.insert("token_set".into(), json!(p.peer.token.is_some()));
    m.insert("push".into(), json!(p.push));
    m.insert("policy".into(), policy);
    m.insert("added_at".into(), ts(Some(p.added_at)));
    m.insert("last_sync_at".into(), ts(p.last_sync_at));
    m.insert("last_error".into(), json!(p.last_error));
    m.insert("last_error_at".into(), ts(p.last_error_at));
    m.insert("error_count".into(), json!(p.error_count));
    for key in STATUS_FIELDS {
        let v = p
            .status
            .as_ref()
            .and_then(|s| s.get(*key))
            .cloned()
            .unwrap_or_else(|| status_zero(key));
        m.insert((*key).into(), v);
    }
    m.insert("posts_refused".into(), json!(posts_refused));
    m.insert("objects_refused".into(), json!(objects_refused));
    m.insert("status".into(), p.status.clone().unwrap_or(Value::Null));
    Value::Object(m)
}

/// `GET /api/peers` (administrators): every declared peer with its sync status.
async fn list_peers(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
) -> Result<Json<Value>, ApiError> {
    require_admin(&p)?;
    let peers = state.store().peers().await?;
    Ok(Json(json!({"peers": peers
            .iter()
            .map(|p| peer_json(p, state.metrics().peer_refusals(&p.peer.name)))
            .collect::<Vec<_>>()})))
}

/// `GET /api/checkpoint` (declared peers, administrators): a checkpoint of the audit log's last
/// entry, signed now with the node key. Peers keep the latest they obtained as a witness: a log cut
/// short or rewritten later no longer matches it (`kopa audit verify --checkpoint`).
async fn checkpoint(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<Value>, ApiError> {
    let actor_peer;
    let actor = match &caller {
        Caller::User(p) => Actor::Person(p),
        Caller::Peer(peer) => {
            actor_peer = peer.policy.peer_audience(&peer.node_id.to_string());
            Actor::Peer(&actor_peer)
        }
    };
    decide(&actor, &Action::ReadCheckpoint).map_err(|r| ApiError::forbidden(r.0))?;
    let Some(node) = state.node() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this node has no identity (node key), so it signs no checkpoint",
        ));
    };
    let checkpoint = match state.store().audit_head().await? {
        None => Value::Null,
        Some((seq, hash)) => {
            let at = state.now().to_taxii();
            json!(kopa_federation::Checkpoint::sign(
                node.key(),
                seq,
                &hash,
                &at
            ))
        }
    };
    Ok(Json(json!({ "checkpoint": checkpoint })))
}

/// The attribution of an act of administration by `p` from `origin`.
fn by(p: &Principal, origin: String, detail: Value) -> AuditBy {
    AuditBy {
        actor: p.user_name.clone(),
        origin,
        detail,
    }
}

/// The audit entry of an act of `actor`, to be written in the act's own transaction.
fn entry(actor: &str, origin: &str, action: &str, target: &str, detail: Value) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        origin: origin.into(),
        detail: detail.to_string(),
    }
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn query<T: DeserializeOwned>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))
}

/// `GET /healthz`: 200 when the store answers.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.store().node().await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ok"}))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /api/me`: who the caller is, and every enrolment of its account (who issued each code,
/// when, and when and from where it was redeemed), so that a recovery is never silent.
async fn me(State(state): State<AppState>, ApiAuth(p): ApiAuth) -> Result<Json<Value>, ApiError> {
    let enrolments = state.store().enrolments(&p.user).await?;
    let ts = |t: Option<kopa_stix::Timestamp>| t.map(|t| t.to_taxii());
    Ok(Json(json!({
        "name": p.user_name,
        "org": p.org_name,
        "role": p.role.as_str(),
        "enrolments": enrolments.iter().map(|e| json!({
            "issued_by": e.issued_by,
            "issued_at": e.issued_at.to_taxii(),
            "expires_at": e.expires_at.to_taxii(),
            "redeemed_at": ts(e.redeemed_at),
            "redeemed_from": e.redeemed_from,
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct SearchQuery {
    value: String,
    limit: Option<usize>,
}

async fn search(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let value = q.value.trim();
    if value.is_empty() {
        return Err(ApiError::bad_request("value must not be empty"));
    }
    if value.contains('\0') {
        return Err(ApiError::bad_request(
            "value must not contain a NUL character (U+0000)",
        ));
    }
    let limit = q
        .limit
        .unwrap_or(1000)
        .clamp(1, state.config().max_page_size);
    let found = state.store().search(&p.audience(), value, limit).await?;
    let mut out = Vec::with_capacity(found.iter().map(|o| o.json.len() + 1).sum::<usize>() + 16);
    out.extend_from_slice(b"{\"objects\":[");
    for (i, o) in found.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(o.json.as_bytes());
    }
    out.extend_from_slice(b"]}");
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

/// Ask the permission rule whether `p` may do `action`; its refusal is a 403 with the rule's reason.
fn permit(p: &Principal, action: &Action<'_>) -> Result<(), ApiError> {
    decide(&Actor::Person(p), action).map_err(|r| ApiError::forbidden(r.0))
}

fn require_admin(p: &Principal) -> Result<(), ApiError> {
    permit(p, &Action::AdministerNode)
}

/// A refused new name: 409 when the very name exists, 400 otherwise (with the rule it breaks).
fn name_refused(e: NameError) -> ApiError {
    let status = match e {
        NameError::Taken { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrgBody {
    name: String,
}

async fn add_org(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    Origin(origin): Origin,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_admin(&p)?;
    let b: NewOrgBody = parse_body(&body)?;
    let orgs = state.store().orgs().await?;
    let name = new_name(
        NameKind::Organisation,
        &b.name,
        orgs.iter().map(|o| o.name.as_str()),
    )
    .map_err(name_refused)?;
    let org = state
        .store()
        .administer(
            AdminAct::AddOrg { name, node: None },
            Some(by(&p, origin, json!({}))),
        )
        .await?
        .org()?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": org.id.0, "name": org.name})),
    )
        .into_response())
}

async fn list_orgs(
    State(state): State<AppState>,
    ApiAuth(_p): ApiAuth,
) -> Result<Json<Value>, ApiError> {
    let orgs = state.store().orgs().await?;
    Ok(Json(json!({
        "orgs": orgs.iter().map(|o| json!({"id": o.id.0, "name": o.name})).collect::<Vec<_>>()
    })))
}

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

async fn add_user(
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

async fn list_users(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
) -> Result<Json<Value>, ApiError> {
    // The caller may list some organisation's users at all (its own, as an org-admin).
    permit(&p, &Action::ListUsers { org: &p.org })?;
    let users = state.store().users().await?;
    let actor = Actor::Person(&p);
    Ok(Json(json!({
        "users": users
            .iter()
            .filter(|u| decide(&actor, &Action::ListUsers { org: &u.org }).is_ok())
            .map(user_json)
            .collect::<Vec<_>>()
    })))
}

/// `POST /api/users/{name}/tokens`: a new token for oneself. No one makes a token for another user,
/// the administrator included (see `enrol_user` for a user who lost every token).
async fn add_token(
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
async fn enrol_user(
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
async fn redeem_enrolment(
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

async fn revoke_token(
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

/// A collection's read or write list: `"all"` or a list of organisation names.
#[derive(Deserialize)]
#[serde(untagged)]
enum AccessBody {
    Keyword(String),
    Names(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCollectionBody {
    title: String,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    description: Option<String>,
    read: AccessBody,
    write: AccessBody,
}

async fn access(state: &AppState, field: &str, a: AccessBody) -> Result<Access, ApiError> {
    match a {
        AccessBody::Keyword(k) if k == "all" => Ok(Access::All),
        AccessBody::Keyword(k) => Err(ApiError::bad_request(format!(
            "{field}: {k:?} must be \"all\" or a list of organisation names"
        ))),
        AccessBody::Names(names) => {
            let mut ids = Vec::new();
            for n in names {
                match state.store().org_by_name(&n).await {
                    Ok(o) => ids.push(o.id),
                    Err(StoreError::NotFound(_)) => {
                        return Err(ApiError::bad_request(format!(
                            "{field}: no organisation named {n:?}"
                        )))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Access::Orgs(ids))
        }
    }
}

async fn add_collection(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    Origin(origin): Origin,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_admin(&p)?;
    let b: NewCollectionBody = parse_body(&body)?;
    if b.title.trim().is_empty() {
        return Err(ApiError::bad_request("title must not be empty"));
    }
    let read = access(&state, "read", b.read).await?;
    let write = access(&state, "write", b.write).await?;
    let title = b.title.trim().to_string();
    let c = state
        .store()
        .administer(
            AdminAct::AddCollection(NewCollection {
                id: None,
                title: title.clone(),
                description: b.description,
                alias: b.alias,
                read,
                write,
            }),
            Some(by(&p, origin, json!({ "title": title }))),
        )
        .await?
        .collection()?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": c.id, "title": c.title})),
    )
        .into_response())
}

async fn list_collections(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
) -> Result<Json<Value>, ApiError> {
    let views = state.store().collections(&p.reader()).await?;
    Ok(Json(json!({
        "collections": views.iter().map(|v| json!({
            "id": v.collection.id,
            "title": v.collection.title,
            "alias": v.collection.alias,
            "description": v.collection.description,
            "can_read": v.can_read,
            "can_write": v.can_write,
        })).collect::<Vec<_>>()
    })))
}

/// `GET /api/export/{collection}` (by id or alias): every version of every object the caller may
/// see in a collection, as one STIX 2.1 bundle, streamed page by page.
///
/// The first page is read before the response starts, so a failure there is a plain error
/// response. A failure after that ends the body with an error: the connection is cut before the
/// end of the chunked body and the bundle is never closed, so no client takes a truncated export
/// for a complete one.
async fn export(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    Path(cid): Path<String>,
) -> Result<Response, ApiError> {
    let who = p.reader();
    let view = match state.store().collection(&who, &cid).await {
        Ok(v) => v,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(format!(
                "no collection {cid:?} that you may read"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if !view.can_read {
        return Err(ApiError::forbidden(format!(
            "you may not read collection {cid}"
        )));
    }
    let page_size = state.config().max_page_size.min(5000);
    let header = format!(
        "{{\"type\":\"bundle\",\"id\":\"bundle--{}\",\"objects\":[",
        uuid::Uuid::new_v4()
    );
    // The path may name the collection by its alias; the store keys objects by its id.
    let pages = ExportPages {
        store: state.store().clone(),
        who,
        cid: view.collection.id,
        page_size,
    };
    let first = pages.page(None).await?;
    let stream = bundle_stream(header, first, move |after| {
        let pages = pages.clone();
        async move { pages.page(Some(after)).await }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/stix+json;version=2.1")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The pages of one export: every version the reader may see, in order.
#[derive(Clone)]
struct ExportPages {
    store: std::sync::Arc<dyn kopa_store::Store>,
    who: kopa_core::Reader,
    cid: String,
    page_size: usize,
}

impl ExportPages {
    async fn page(&self, after: Option<i64>) -> Result<kopa_store::Page, StoreError> {
        let filter = ObjectFilter {
            added_after: None,
            after_seq: after,
            limit: self.page_size,
            ids: Vec::new(),
            types: Vec::new(),
            versions: VersionMatch {
                all: true,
                ..Default::default()
            },
            spec_versions: Vec::new(),
        };
        let page = self.store.objects(&self.who, &self.cid, &filter).await;
        if let Err(e) = &page {
            tracing::error!(error = %e, collection = %self.cid, "export failed");
        }
        page
    }
}

/// A bundle's body: `header`, the objects of `first` and of each page `next(after)` gives while
/// the last said there is more, and the closing `]}`. A failed page ends the stream with an error
/// and without the closing: what was sent is not a bundle.
fn bundle_stream<F, Fut>(
    header: String,
    first: kopa_store::Page,
    next: F,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = Result<kopa_store::Page, StoreError>>,
{
    struct State<F> {
        next: F,
        header: Option<String>,
        page: Option<kopa_store::Page>,
        after: Option<i64>,
        emitted: bool,
        done: bool,
    }
    let state = State {
        next,
        header: Some(header),
        page: Some(first),
        after: None,
        emitted: false,
        done: false,
    };
    futures_util::stream::unfold(state, |mut c| async move {
        if c.done {
            return None;
        }
        let page = match c.page.take() {
            Some(p) => p,
            None => match (c.next)(c.after.unwrap_or_default()).await {
                Ok(p) => p,
                Err(_) => {
                    c.done = true;
                    return Some((Err(std::io::Error::other("export failed")), c));
                }
            },
        };
        let mut out =
            Vec::with_capacity(page.objects.iter().map(|o| o.json.len() + 1).sum::<usize>() + 64);
        if let Some(h) = c.header.take() {
            out.extend_from_slice(h.as_bytes());
        }
        for o in &page.objects {
            if c.emitted {
                out.push(b',');
            }
            c.emitted = true;
            out.extend_from_slice(o.json.as_bytes());
        }
        match page.objects.last() {
            Some(last) if page.more => c.after = Some(last.seq),
            _ => {
                out.extend_from_slice(b"]}");
                c.done = true;
            }
        }
        Some((Ok(Bytes::from(out)), c))
    })
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
}

async fn audit_log(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&p)?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let entries = state.store().audit_entries(q.after, limit).await?;
    Ok(Json(json!({ "entries": entries })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn page(seqs: &[i64], more: bool) -> kopa_store::Page {
        let ts = kopa_stix::Timestamp::from_micros(0);
        kopa_store::Page {
            objects: seqs
                .iter()
                .map(|&seq| kopa_store::StoredObject {
                    seq,
                    id: format!("x-thing--{seq}"),
                    type_: "x-thing".into(),
                    spec_version: "2.1".into(),
                    version: ts,
                    date_added: ts,
                    json: format!("{{\"n\":{seq}}}"),
                    origin: None,
                })
                .collect(),
            more,
        }
    }

    /// The bundle's chunks until the stream ends, and whether it ended with an error.
    async fn drain(
        s: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>,
    ) -> (String, bool) {
        let mut s = std::pin::pin!(s);
        let mut text = String::new();
        while let Some(chunk) = s.next().await {
            match chunk {
                Ok(b) => text.push_str(std::str::from_utf8(&b).unwrap()),
                Err(_) => return (text, true),
            }
        }
        (text, false)
    }

    #[tokio::test]
    async fn an_export_that_fails_midway_ends_in_an_error_not_a_bundle() {
        // Three pages; the second read fails after the first page was sent.
        let (text, failed) = drain(bundle_stream(
            "[".into(),
            page(&[1], true),
            |after| async move {
                assert_eq!(after, 1);
                Err(StoreError::Backend("disk gone".into()))
            },
        ))
        .await;
        assert!(failed, "the body must end with an error");
        assert_eq!(text, "[{\"n\":1}");
        assert!(serde_json::from_str::<Value>(&format!("{{\"o\":{text}")).is_err());

        // The same pages without a failure make the whole bundle.
        let (text, failed) = drain(bundle_stream(
            "{\"objects\":[".into(),
            page(&[1], true),
            |after| async move {
                Ok(match after {
                    1 => page(&[2, 3], true),
                    _ => page(&[4], false),
                })
            },
        ))
        .await;
        assert!(!failed);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["objects"].as_array().unwrap().len(), 4);
        // An empty collection is an empty bundle.
        let (text, _) = drain(bundle_stream(
            "{\"objects\":[".into(),
            page(&[], false),
            |_| async { Ok(page(&[], false)) },
        ))
        .await;
        assert_eq!(text, "{\"objects\":[]}");
    }

    #[test]
    fn openapi_describes_every_route() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        for (method, path) in ROUTES {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing from openapi.json"
            );
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(
            documented,
            ROUTES.len(),
            "openapi.json documents a route the server lacks"
        );
    }
}
