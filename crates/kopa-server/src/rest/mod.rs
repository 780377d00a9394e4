//! The REST API beside TAXII, under `/api/`: what TAXII lacks — administration of organisations,
//! users, tokens and collections, search by value, export of a collection as a STIX bundle, and the
//! audit log. JSON in and out; errors are `{"error": message}`. Described by `/api/openapi.json`.
//!
//! Administrators manage people and collections; they read intelligence under the same visibility
//! rule as everyone else (search and export go through the store's audience-filtered reads).
//!
//! Layout: one module per resource, each holding its handlers and the request and response shapes
//! only it uses — [`orgs`], [`users`] (users, their tokens, enrolment), [`collections`], [`export`],
//! [`search`], [`audit`] (the audit log and the signed checkpoint), [`peers`], [`me`], and [`node`]
//! (`/healthz` and the OpenAPI document). This module holds the router ([`routes`]), the route list
//! [`ROUTES`] with the OpenAPI document (`openapi.json`, beside this file), and the helpers the
//! resources share: reading a body or a query, asking the permission rule, attributing an act to
//! the audit log. A new resource's handlers go in a new module named after the resource; its routes
//! are added to [`routes`], [`ROUTES`] and `openapi.json` together (a test checks the last two).

mod audit;
mod collections;
mod export;
mod me;
mod node;
mod orgs;
mod peers;
mod search;
mod users;

use axum::body::Bytes;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use kopa_core::audit::NewAuditEntry;
use kopa_core::names::NameError;
use kopa_core::permission::{decide, Action, Actor};
use kopa_core::Principal;
use kopa_store::AuditBy;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::AppState;

pub use node::healthz;

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
    ("post", "/api/users/{name}/enrolment"),
    ("post", "/api/enrol"),
    ("delete", "/api/tokens/{id}"),
    ("get", "/api/collections"),
    ("post", "/api/collections"),
    ("get", "/api/export/{collection}"),
    ("get", "/api/audit"),
    ("get", "/api/peers"),
    ("get", "/api/checkpoint"),
    ("get", "/healthz"),
    ("get", "/metrics"),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(node::openapi))
        .route("/api/me", get(me::me))
        .route("/api/search", get(search::search))
        .route("/api/orgs", get(orgs::list_orgs).post(orgs::add_org))
        .route("/api/users", get(users::list_users).post(users::add_user))
        .route("/api/users/{name}/tokens", post(users::add_token))
        .route("/api/users/{name}/enrolment", post(users::enrol_user))
        .route("/api/enrol", post(users::redeem_enrolment))
        .route("/api/tokens/{id}", delete(users::revoke_token))
        .route(
            "/api/collections",
            get(collections::list_collections).post(collections::add_collection),
        )
        .route("/api/export/{collection}", get(export::export))
        .route("/api/audit", get(audit::audit_log))
        .route("/api/peers", get(peers::list_peers))
        .route("/api/checkpoint", get(audit::checkpoint))
}

/// The attribution of an act of administration by `p` from `origin`.
fn by(p: &Principal, origin: String, detail: Value) -> AuditBy {
    AuditBy {
        actor: p.user_name.clone(),
        origin,
        detail,
    }
}

/// The audit entry of an act of `actor`, to be written in the act's own transaction.
fn entry(actor: &str, origin: &str, action: &str, target: &str, detail: Value) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        origin: origin.into(),
        detail: detail.to_string(),
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

/// Ask the permission rule whether `p` may do `action`; its refusal is a 403 with the rule's reason.
fn permit(p: &Principal, action: &Action<'_>) -> Result<(), ApiError> {
    decide(&Actor::Person(p), action).map_err(|r| ApiError::forbidden(r.0))
}

fn require_admin(p: &Principal) -> Result<(), ApiError> {
    permit(p, &Action::AdministerNode)
}

/// A refused new name: 409 when the very name exists, 400 otherwise (with the rule it breaks).
fn name_refused(e: NameError) -> ApiError {
    let status = match e {
        NameError::Taken { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.to_string())
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
