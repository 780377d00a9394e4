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
use kopa_core::{OrgId, Principal, Role};
use kopa_store::{Access, NewCollection, ObjectFilter, StoreError, User, VersionMatch};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{ApiAuth, Origin};
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
    ("delete", "/api/tokens/{id}"),
    ("get", "/api/collections"),
    ("post", "/api/collections"),
    ("get", "/api/export/{collection}"),
    ("get", "/api/audit"),
    ("get", "/api/peers"),
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
        .route("/api/tokens/{id}", delete(revoke_token))
        .route(
            "/api/collections",
            get(list_collections).post(add_collection),
        )
        .route("/api/export/{collection}", get(export))
        .route("/api/audit", get(audit_log))
        .route("/api/peers", get(list_peers))
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
];

fn status_zero(key: &str) -> Value {
    match key {
        "rejected" => json!({}),
        "skipped" => json!([]),
        _ => json!(0),
    }
}

/// One peer as the REST API shows it: declaration, policy, sync status (never its token).
fn peer_json(p: &kopa_store::PeerRecord) -> Value {
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
    Ok(Json(
        json!({"peers": peers.iter().map(peer_json).collect::<Vec<_>>()}),
    ))
}

/// Append an audit entry for an act of `p`. A failure to audit is logged loudly; the act itself has
/// already been committed and is reported to the client as done.
pub async fn audit(
    state: &AppState,
    p: &Principal,
    origin: &str,
    action: &str,
    target: &str,
    detail: Value,
) {
    audit_as(state, &p.user_name, origin, action, target, detail).await;
}

/// Append an audit entry for an act of `actor` (a user name, or `peer:NAME` for a peer node).
pub async fn audit_as(
    state: &AppState,
    actor: &str,
    origin: &str,
    action: &str,
    target: &str,
    detail: Value,
) {
    let entry = NewAuditEntry {
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        origin: origin.into(),
        detail: detail.to_string(),
    };
    if let Err(e) = state.store().audit(entry).await {
        tracing::error!(error = %e, action, target, "could not append to the audit log");
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

async fn me(ApiAuth(p): ApiAuth) -> Json<Value> {
    Json(json!({
        "name": p.user_name,
        "org": p.org_name,
        "role": p.role.as_str(),
    }))
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

fn require_admin(p: &Principal) -> Result<(), ApiError> {
    if p.role.manages_node() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this needs the node administrator role",
        ))
    }
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
    let name = b.name.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    let org = state.store().add_org(name).await?;
    audit(
        &state,
        &p,
        &origin,
        "org.add",
        &org.name,
        json!({"id": org.id.0}),
    )
    .await;
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

/// May `p` manage user accounts of organisation `org`?
fn manages_users_of(p: &Principal, org: &OrgId) -> bool {
    p.role.manages_node() || (p.role.manages_org_users() && &p.org == org)
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
    let name = b.name.trim();
    if name.is_empty() || name.contains(':') {
        return Err(ApiError::bad_request(
            "name must be non-empty and contain no ':' (it is the HTTP Basic user name)",
        ));
    }
    if !p.role.manages_org_users() {
        return Err(ApiError::forbidden(
            "managing users needs the org-admin or admin role",
        ));
    }
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
    if !manages_users_of(&p, &org.id) {
        return Err(ApiError::forbidden(
            "an org-admin manages the users of its own organisation only",
        ));
    }
    if role == Role::Admin && !p.role.manages_node() {
        return Err(ApiError::forbidden(
            "only a node administrator can make an administrator",
        ));
    }
    let user = state.store().add_user(name, &org.id, role).await?;
    let (record, token) = new_token(&user.id);
    state.store().add_token(&record).await?;
    audit(
        &state,
        &p,
        &origin,
        "user.add",
        &user.name,
        json!({"org": user.org_name, "role": role.as_str(), "token_id": record.id}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"name": user.name, "org": user.org_name, "role": role.as_str(), "token": token}),
        ),
    )
        .into_response())
}

async fn list_users(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
) -> Result<Json<Value>, ApiError> {
    if !p.role.manages_org_users() {
        return Err(ApiError::forbidden(
            "listing users needs the org-admin or admin role",
        ));
    }
    let users = state.store().users().await?;
    Ok(Json(json!({
        "users": users
            .iter()
            .filter(|u| manages_users_of(&p, &u.org))
            .map(user_json)
            .collect::<Vec<_>>()
    })))
}

async fn add_token(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    Origin(origin): Origin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let user = match state.store().user_by_name(&name).await {
        Ok(u) => u,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(format!("no user named {name:?}")))
        }
        Err(e) => return Err(e.into()),
    };
    if user.id != p.user && !manages_users_of(&p, &user.org) {
        return Err(ApiError::forbidden(
            "you may make tokens for yourself, or as org-admin for your organisation's users",
        ));
    }
    let (record, token) = new_token(&user.id);
    state.store().add_token(&record).await?;
    audit(
        &state,
        &p,
        &origin,
        "token.add",
        &user.name,
        json!({"token_id": record.id}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": record.id, "user": user.name, "token": token})),
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
    if owner.id != p.user && !manages_users_of(&p, &owner.org) {
        // Do not reveal other organisations' token ids.
        return Err(not_found());
    }
    state.store().revoke_token(&id).await?;
    audit(
        &state,
        &p,
        &origin,
        "token.revoke",
        &owner.name,
        json!({"token_id": id}),
    )
    .await;
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
    let c = state
        .store()
        .add_collection(&NewCollection {
            id: None,
            title: b.title.trim().to_string(),
            description: b.description,
            alias: b.alias,
            read,
            write,
        })
        .await?;
    audit(
        &state,
        &p,
        &origin,
        "collection.add",
        &c.id,
        json!({"title": c.title}),
    )
    .await;
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

/// `GET /api/export/{collection}`: every version of every object the caller may see in a collection,
/// as one STIX 2.1 bundle, streamed page by page.
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
    struct Cursor {
        store: std::sync::Arc<dyn kopa_store::Store>,
        who: kopa_core::Reader,
        cid: String,
        after: Option<i64>,
        started: bool,
        emitted: bool,
        done: bool,
        header: String,
        page_size: usize,
    }
    let cursor = Cursor {
        store: state.store().clone(),
        who,
        cid,
        after: None,
        started: false,
        emitted: false,
        done: false,
        header,
        page_size,
    };
    let stream = futures_util::stream::unfold(cursor, |mut c| async move {
        if c.done {
            return None;
        }
        let filter = ObjectFilter {
            added_after: None,
            after_seq: c.after,
            limit: c.page_size,
            ids: Vec::new(),
            types: Vec::new(),
            versions: VersionMatch {
                all: true,
                ..Default::default()
            },
            spec_versions: Vec::new(),
        };
        let page = match c.store.objects(&c.who, &c.cid, &filter).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, collection = %c.cid, "export failed");
                c.done = true;
                return Some((Err(std::io::Error::other("export failed")), c));
            }
        };
        let mut out =
            Vec::with_capacity(page.objects.iter().map(|o| o.json.len() + 1).sum::<usize>() + 64);
        if !c.started {
            out.extend_from_slice(c.header.as_bytes());
            c.started = true;
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
        Some((Ok::<_, std::io::Error>(Bytes::from(out)), c))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/stix+json;version=2.1")],
        Body::from_stream(stream),
    )
        .into_response())
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
