//! Organisations: `GET /api/orgs` and `POST /api/orgs`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kopa_core::names::{new_name, NameKind};
use kopa_store::AdminAct;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{by, name_refused, parse_body, require_admin};
use crate::auth::{ApiAuth, Origin};
use crate::error::ApiError;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrgBody {
    name: String,
}

pub(super) async fn add_org(
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

pub(super) async fn list_orgs(
    State(state): State<AppState>,
    ApiAuth(_p): ApiAuth,
) -> Result<Json<Value>, ApiError> {
    let orgs = state.store().orgs().await?;
    Ok(Json(json!({
        "orgs": orgs.iter().map(|o| json!({"id": o.id.0, "name": o.name})).collect::<Vec<_>>()
    })))
}
