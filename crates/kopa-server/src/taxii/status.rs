//! Status resources: the outcome of a POST of objects, readable by the poster's organisation (a
//! peer's by that peer).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use kopa_store::StoreError;

use super::taxii_body;
use crate::auth::{Caller, TaxiiCaller};
use crate::error::TaxiiError;
use crate::AppState;

pub(super) async fn status(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    let not_found = || TaxiiError::not_found(format!("no status resource {id:?}"));
    let record = match state.store().status(&id).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    // Readable by the poster's organisation only; a peer's by that peer only.
    let p = match c {
        Caller::User(p) => p,
        Caller::Peer(peer) if record.owner.0 == peer.node_id.as_str() => {
            return Ok(taxii_body(StatusCode::OK, record.json))
        }
        Caller::Peer(_) => return Err(not_found()),
    };
    if record.owner != p.user {
        let owner = match state.store().user_by_id(&record.owner).await {
            Ok(u) => u,
            Err(StoreError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        if owner.org != p.org {
            return Err(not_found());
        }
    }
    Ok(taxii_body(StatusCode::OK, record.json))
}
