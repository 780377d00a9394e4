//! The TAXII 2.1 endpoints (`specs/taxii.md`): discovery, the API root, status, collections, objects,
//! one object, its versions, the manifest and DELETE.
//!
//! Reads build their bodies by concatenating the stored JSON text of each object: stored objects are
//! never parsed again on the way out.
//!
//! Layout: this module holds the router ([`routes`]) and what every endpoint shares (the query
//! extractor, the response builder, the collection as the caller sees it); [`negotiate`] checks
//! media types on every route; [`discovery`] serves discovery and the API root, [`status`] the
//! status resources, [`collections`] the collection list and one collection, and [`objects`] the
//! reads of a collection's contents (objects, one object, its versions, the manifest) and DELETE.
//! POST of objects is `ingest::post_objects`.

mod collections;
mod discovery;
mod negotiate;
mod objects;
mod status;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use kopa_core::Reader;
use kopa_store::{CollectionView, StoreError};

use crate::error::TaxiiError;
use crate::{ingest, AppState, TAXII_MEDIA_TYPE};

/// The TAXII routes, under `/taxii2/` and the configured API root.
pub fn routes(state: &AppState) -> Router<AppState> {
    let root = format!("/{}", state.config().api_root);
    let coll = format!("{root}/collections/{{collection}}");
    Router::new()
        .route("/taxii2/", get(discovery::discovery))
        .route(&format!("{root}/"), get(discovery::api_root))
        .route(&format!("{root}/status/{{status}}/"), get(status::status))
        .route(
            &format!("{root}/collections/"),
            get(collections::collections),
        )
        .route(&format!("{coll}/"), get(collections::collection))
        .route(&format!("{coll}/manifest/"), get(objects::manifest))
        .route(
            &format!("{coll}/objects/"),
            get(objects::objects).post(ingest::post_objects),
        )
        .route(
            &format!("{coll}/objects/{{object}}/"),
            get(objects::object).delete(objects::delete_object),
        )
        .route(
            &format!("{coll}/objects/{{object}}/versions/"),
            get(objects::versions),
        )
        .route_layer(axum::middleware::from_fn(negotiate::negotiate))
}

/// Query parameters as pairs, with TAXII errors for a malformed query string.
pub struct TaxiiQuery(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for TaxiiQuery {
    type Rejection = TaxiiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|q| TaxiiQuery(q.0))
            .map_err(|e| TaxiiError::bad_request(format!("malformed query string: {e}")))
    }
}

/// A `200` TAXII response with a JSON body.
pub fn taxii_body(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TAXII_MEDIA_TYPE),
    );
    resp
}

/// The collection as the caller sees it; 404 when it may neither read nor write it (or it does not
/// exist: the two are not told apart).
pub async fn view(state: &AppState, who: &Reader, id: &str) -> Result<CollectionView, TaxiiError> {
    match state.store().collection(who, id).await {
        Ok(v) => Ok(v),
        Err(StoreError::NotFound(_)) => Err(TaxiiError::not_found(format!(
            "no collection {id:?} that you may read or write"
        ))),
        Err(e) => Err(e.into()),
    }
}
