//! Authentication extractors: `Authorization: Bearer TOKEN`, or HTTP Basic with the user name and the
//! token as password (what TAXII clients speak). Both yield a [`Principal`]; failures are 401 with
//! `WWW-Authenticate`, as a TAXII error on TAXII routes and as `{"error": …}` on the REST API.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use kopa_core::Principal;

use crate::error::{ApiError, TaxiiError};
use crate::token::{authenticate, AuthError};
use crate::AppState;

/// A caller authenticated on a TAXII route.
pub struct TaxiiAuth(pub Principal);

/// A caller authenticated on a REST route.
pub struct ApiAuth(pub Principal);

/// The client address of the request (`unknown` when the server runs without connection info).
pub struct Origin(pub String);

enum Failure {
    Unauthenticated(String),
    Internal(String),
}

async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, Failure> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        Failure::Unauthenticated("authentication required (Bearer token or HTTP Basic)".into())
    })?;
    let value = value
        .to_str()
        .map_err(|_| Failure::Unauthenticated("malformed Authorization header".into()))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    let (token, user): (String, Option<String>) = if scheme.eq_ignore_ascii_case("bearer") {
        (rest.to_string(), None)
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Failure::Unauthenticated("malformed HTTP Basic credentials".into()))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| Failure::Unauthenticated("malformed HTTP Basic credentials".into()))?;
        (password.to_string(), Some(user.to_string()))
    } else {
        return Err(Failure::Unauthenticated(
            "unsupported authorization scheme (use Bearer or Basic)".into(),
        ));
    };
    if token.is_empty() {
        return Err(Failure::Unauthenticated("empty token".into()));
    }
    match authenticate(state.store().as_ref(), &token, user.as_deref()).await {
        Ok(p) => Ok(p),
        Err(AuthError::Store(e)) => Err(Failure::Internal(e.to_string())),
        Err(e) => {
            tracing::info!(reason = %e, "authentication refused");
            Err(Failure::Unauthenticated(
                "invalid credentials (unknown, wrong or revoked token)".into(),
            ))
        }
    }
}

impl FromRequestParts<AppState> for TaxiiAuth {
    type Rejection = TaxiiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match principal(parts, state).await {
            Ok(p) => Ok(TaxiiAuth(p)),
            Err(Failure::Unauthenticated(m)) => Err(TaxiiError::unauthorized(m)),
            Err(Failure::Internal(cause)) => Err(TaxiiError::internal(cause)),
        }
    }
}

impl FromRequestParts<AppState> for ApiAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match principal(parts, state).await {
            Ok(p) => Ok(ApiAuth(p)),
            Err(Failure::Unauthenticated(m)) => {
                Err(ApiError::new(axum::http::StatusCode::UNAUTHORIZED, m))
            }
            Err(Failure::Internal(cause)) => Err(ApiError::internal(cause)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Origin(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ci| ci.0.ip().to_string())
                .unwrap_or_else(|| "unknown".into()),
        ))
    }
}
