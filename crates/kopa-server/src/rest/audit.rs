//! The audit log (`GET /api/audit`) and the signed checkpoint of its last entry
//! (`GET /api/checkpoint`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use kopa_core::permission::{decide, Action, Actor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{query, require_admin};
use crate::auth::{ApiAuth, ApiCaller, Caller};
use crate::error::ApiError;
use crate::AppState;

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
}

pub(super) async fn audit_log(
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

/// `GET /api/checkpoint` (declared peers, administrators): a checkpoint of the audit log's last
/// entry, signed now with the node key. Peers keep the latest they obtained as a witness: a log cut
/// short or rewritten later no longer matches it (`kopa audit verify --checkpoint`).
pub(super) async fn checkpoint(
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
