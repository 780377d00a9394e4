//! `GET /api/search`: objects the caller may see that hold a value.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::query;
use crate::auth::ApiAuth;
use crate::error::ApiError;
use crate::AppState;

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    value: String,
    limit: Option<usize>,
}

pub(super) async fn search(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let value = q.value.trim();
    if value.is_empty() {
        return Err(ApiError::bad_request("value must not be empty"));
    }
    if value.contains('\0') {
        return Err(ApiError::bad_request(
            "value must not contain a NUL character (U+0000)",
        ));
    }
    let limit = q
        .limit
        .unwrap_or(1000)
        .clamp(1, state.config().max_page_size);
    let found = state.store().search(&p.audience(), value, limit).await?;
    let mut out = Vec::with_capacity(found.iter().map(|o| o.json.len() + 1).sum::<usize>() + 16);
    out.extend_from_slice(b"{\"objects\":[");
    for (i, o) in found.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(o.json.as_bytes());
    }
    out.extend_from_slice(b"]}");
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}
