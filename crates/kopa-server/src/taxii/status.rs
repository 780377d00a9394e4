//! Status resources: the outcome of a POST of objects, readable by the poster's organisation (a
//! peer's by that peer).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use kopa_store::StoreError;

use super::taxii_body;
use crate::auth::TaxiiCaller;
use crate::error::TaxiiError;
use crate::AppState;

/// `GET {api-root}/status/{id}/`: who may read a status is decided in the store's query (its
/// poster's organisation; a peer's status by that peer); a hidden status and a missing one look the
/// same.
pub(super) async fn status(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    match state.store().status(&c.reader(), &id).await {
        Ok(record) => Ok(taxii_body(StatusCode::OK, record.json)),
        Err(StoreError::NotFound(_)) => {
            Err(TaxiiError::not_found(format!("no status resource {id:?}")))
        }
        Err(e) => Err(e.into()),
    }
}
