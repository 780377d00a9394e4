//! Collections: `GET /api/collections` (those the caller may read or write) and
//! `POST /api/collections`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kopa_store::{Access, AdminAct, NewCollection, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{by, parse_body, require_admin};
use crate::auth::{ApiAuth, Origin};
use crate::error::ApiError;
use crate::AppState;

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

pub(super) async fn add_collection(
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

pub(super) async fn list_collections(
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
