//! `GET /api/peers`: the declared peers and how their synchronisation goes.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::require_admin;
use crate::auth::ApiAuth;
use crate::error::ApiError;
use crate::AppState;

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
pub(super) async fn list_peers(
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
