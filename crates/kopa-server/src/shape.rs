//! Every error the application answers is in its route's documented shape: the TAXII error
//! resource on TAXII routes, `{"error": …}` elsewhere.
//!
//! Handlers and Kopa's extractors already answer so; what does not is what axum answers by itself
//! (a path segment whose percent-encoding is not UTF-8, a body that cannot be read or exceeds the
//! REST limit, …) in `text/plain`, or any answer with no body. [`errors`] rewrites those into the
//! route's shape, keeping their status, their text as the message and their other headers.
//! [`limits`] refuses request targets and header blocks larger than Kopa accepts (414, 431) in
//! that shape too, before any handler runs.
//!
//! Not everything can be shaped here: hyper answers some requests itself, before the application
//! sees them, with an empty body — a request line or header it cannot parse (400), a request
//! target over 65,534 bytes (414), a request head over its buffer (about 408 KB) or with more than
//! 100 headers (431). The limits below are lower than hyper's, so that only requests past those
//! get hyper's bare answers.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// The longest request target (path and query) served, in bytes: longer ones get 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The largest header block (names and values of every header) served, in bytes: larger ones
/// get 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The largest error text of axum's that is passed on as the message.
const MAX_TEXT: usize = 1024;

/// Refuse request targets over [`MAX_URI_BYTES`] (414) and header blocks over
/// [`MAX_HEADER_BYTES`] (431), in the route's error shape.
pub async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return crate::route_error(
            &state,
            req.uri().path(),
            StatusCode::URI_TOO_LONG,
            "URI too long",
            format!(
                "the request target is {target} bytes long; at most {MAX_URI_BYTES} are served \
                 (ask for fewer ids at once)"
            ),
        );
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return crate::route_error(
            &state,
            req.uri().path(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large",
            format!(
                "the request headers take {headers} bytes; at most {MAX_HEADER_BYTES} are served"
            ),
        );
    }
    next.run(req).await
}

/// Rewrite an error answer that is not in the route's shape (plain text, or no body) into it.
pub async fn errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || shaped(&resp) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let plain = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    let text = if plain {
        match axum::body::to_bytes(body, MAX_TEXT).await {
            Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
            Err(_) => String::new(),
        }
    } else {
        String::new()
    };
    let reason = status.canonical_reason().unwrap_or("Error");
    let message = if text.is_empty() {
        reason.to_lowercase()
    } else {
        text
    };
    let mut out = crate::route_error(&state, &path, status, reason, message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Whether an answer is already one of Kopa's error shapes (JSON or a TAXII resource).
fn shaped(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.trim_start().to_ascii_lowercase();
            ct.starts_with("application/json") || ct.starts_with("application/taxii+json")
        })
}
