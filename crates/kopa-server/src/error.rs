//! The two error shapes of the HTTP edge: TAXII error resources on TAXII routes, `{"error": …}` on the
//! REST API. Bad input is described as it is; internal causes are logged and the client only reads
//! "internal error". A 401 carries `WWW-Authenticate`; a 429 (failed authentications throttled)
//! carries `Retry-After`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kopa_store::StoreError;

use crate::TAXII_MEDIA_TYPE;

/// Value of `WWW-Authenticate` on every 401.
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"kopa\", Bearer";

/// A TAXII 2.1 error resource with its HTTP status.
#[derive(Debug, Clone)]
pub struct TaxiiError {
    pub status: StatusCode,
    pub title: String,
    pub description: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl TaxiiError {
    pub fn new(status: StatusCode, title: &str, description: impl Into<String>) -> Self {
        TaxiiError {
            status,
            title: title.into(),
            description: description.into(),
            retry_after: None,
        }
    }
    /// 429 with `Retry-After: seconds`.
    pub fn too_many_requests(description: impl Into<String>, seconds: u64) -> Self {
        TaxiiError {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                description,
            )
        }
    }
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", description)
    }
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", description)
    }
    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", description)
    }
    pub fn unauthorized(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", description)
    }
    /// An internal failure: `cause` is logged, the client reads only "internal error".
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "internal error",
        )
    }
}

impl From<StoreError> for TaxiiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => TaxiiError::not_found(format!("{what} not found")),
            StoreError::Conflict(m) => TaxiiError::new(StatusCode::CONFLICT, "Conflict", m),
            StoreError::Invalid(m) => TaxiiError::bad_request(m),
            StoreError::Refused(m) => TaxiiError::forbidden(m),
            StoreError::Backend { .. } => TaxiiError::internal(e),
        }
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_u16().to_string(),
        });
        let mut resp = (self.status, body.to_string()).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(TAXII_MEDIA_TYPE),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        resp
    }
}

/// A REST API error: `{"error": message}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 429 with `Retry-After: seconds`.
    pub fn too_many_requests(message: impl Into<String>, seconds: u64) -> Self {
        ApiError {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            StoreError::Refused(m) => ApiError::forbidden(m),
            StoreError::Backend { .. } => ApiError::internal(e),
        }
    }
}

impl From<TaxiiError> for ApiError {
    fn from(e: TaxiiError) -> Self {
        ApiError {
            retry_after: e.retry_after,
            ..ApiError::new(e.status, e.description)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        if let Some(seconds) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        resp
    }
}
