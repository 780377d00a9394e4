//! Discovery (`GET /taxii2/`) and the API root.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::taxii_body;
use crate::auth::TaxiiCaller;
use crate::{AppState, TAXII_MEDIA_TYPE};

fn api_root_url(state: &AppState, headers: &HeaderMap) -> String {
    let root = &state.config().api_root;
    match headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
    {
        Some(host) => {
            // Behind a TLS-terminating proxy, the proxy says which scheme the client used.
            let https = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
            let scheme = if https { "https" } else { "http" };
            format!("{scheme}://{host}/{root}/")
        }
        None => format!("/{root}/"),
    }
}

pub(super) async fn discovery(
    State(state): State<AppState>,
    _auth: TaxiiCaller,
    headers: HeaderMap,
) -> Response {
    let url = api_root_url(&state, &headers);
    let body = json!({
        "title": state.config().title,
        "description": "Kopa node: STIX 2.1 intelligence shared under TLP 2.0",
        "default": url,
        "api_roots": [url],
    });
    taxii_body(StatusCode::OK, body.to_string())
}

pub(super) async fn api_root(State(state): State<AppState>, _auth: TaxiiCaller) -> Response {
    let body = json!({
        "title": state.config().title,
        "description": "Collections shared on this node",
        "versions": [TAXII_MEDIA_TYPE],
        "max_content_length": state.config().max_content_length,
    });
    taxii_body(StatusCode::OK, body.to_string())
}
