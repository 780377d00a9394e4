//! `GET /api/me`: the caller's own account.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::ApiAuth;
use crate::error::ApiError;
use crate::AppState;

/// `GET /api/me`: who the caller is, and every enrolment of its account (who issued each code,
/// when, and when and from where it was redeemed), so that a recovery is never silent.
pub(super) async fn me(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
) -> Result<Json<Value>, ApiError> {
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
