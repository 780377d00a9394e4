//! Media-type negotiation: what `Accept` and `Content-Type` a TAXII request may carry.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::TaxiiError;
use crate::TAXII_MEDIA_TYPE;

/// Media-type negotiation for every TAXII route: 406 when `Accept` admits no TAXII 2.1 type, 415 when
/// a POST body is not `application/taxii+json;version=2.1`.
pub(super) async fn negotiate(req: Request, next: Next) -> Response {
    if let Some(accept) = req.headers().get(header::ACCEPT) {
        let ok = accept.to_str().map(accepts_taxii).unwrap_or(false);
        if !ok {
            return TaxiiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "Not acceptable",
                format!("this endpoint only answers with {TAXII_MEDIA_TYPE}; set Accept to it"),
            )
            .into_response();
        }
    }
    if req.method() == Method::POST {
        let ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_taxii_content_type);
        if !ok {
            return TaxiiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                format!("the request body must be sent as Content-Type: {TAXII_MEDIA_TYPE}"),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Split a media type into (lower-case type, [(param, value)]).
fn media_type(s: &str) -> (String, Vec<(String, String)>) {
    let mut parts = s.split(';');
    let mt = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ))
        })
        .collect();
    (mt, params)
}

fn version_ok(params: &[(String, String)]) -> bool {
    params
        .iter()
        .find(|(k, _)| k == "version")
        .is_none_or(|(_, v)| v == "2.1")
}

/// Whether an `Accept` header admits `application/taxii+json;version=2.1`.
pub fn accepts_taxii(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let (mt, params) = media_type(range);
        let refused = params
            .iter()
            .any(|(k, v)| k == "q" && v.parse::<f32>().is_ok_and(|q| q <= 0.0));
        !refused
            && match mt.as_str() {
                "*/*" | "application/*" => true,
                "application/taxii+json" => version_ok(&params),
                _ => false,
            }
    })
}

fn is_taxii_content_type(ct: &str) -> bool {
    let (mt, params) = media_type(ct);
    mt == "application/taxii+json" && version_ok(&params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        for ok in [
            "application/taxii+json;version=2.1",
            "application/taxii+json",
            "application/taxii+json; version=2.1",
            "*/*",
            "application/*",
            "text/html, application/taxii+json;version=2.1;q=0.9",
        ] {
            assert!(accepts_taxii(ok), "{ok}");
        }
        for bad in [
            "application/json",
            "application/taxii+json;version=2.0",
            "text/html",
            "application/stix+json;version=2.1",
            "application/taxii+json;q=0",
        ] {
            assert!(!accepts_taxii(bad), "{bad}");
        }
        assert!(is_taxii_content_type("application/taxii+json;version=2.1"));
        assert!(is_taxii_content_type("application/taxii+json"));
        assert!(!is_taxii_content_type("application/json"));
        assert!(!is_taxii_content_type("application/taxii+json;version=2.0"));
    }
}
