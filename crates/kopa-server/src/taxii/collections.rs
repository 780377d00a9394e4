//! The collections the caller may read or write, and one collection.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use kopa_store::CollectionView;
use serde_json::json;

use super::{taxii_body, view};
use crate::auth::TaxiiCaller;
use crate::error::TaxiiError;
use crate::{AppState, STIX_MEDIA_TYPE};

fn collection_json(v: &CollectionView) -> serde_json::Value {
    let c = &v.collection;
    let mut m = serde_json::Map::new();
    m.insert("id".into(), json!(c.id));
    m.insert("title".into(), json!(c.title));
    if let Some(d) = &c.description {
        m.insert("description".into(), json!(d));
    }
    if let Some(a) = &c.alias {
        m.insert("alias".into(), json!(a));
    }
    m.insert("can_read".into(), json!(v.can_read));
    m.insert("can_write".into(), json!(v.can_write));
    m.insert("media_types".into(), json!([STIX_MEDIA_TYPE]));
    serde_json::Value::Object(m)
}

pub(super) async fn collections(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
) -> Result<Response, TaxiiError> {
    let views = state.store().collections(&c.reader()).await?;
    let body = if views.is_empty() {
        json!({})
    } else {
        json!({ "collections": views.iter().map(collection_json).collect::<Vec<_>>() })
    };
    Ok(taxii_body(StatusCode::OK, body.to_string()))
}

pub(super) async fn collection(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    let v = view(&state, &c.reader(), &id).await?;
    Ok(taxii_body(StatusCode::OK, collection_json(&v).to_string()))
}
