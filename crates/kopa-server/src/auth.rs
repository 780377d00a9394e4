//! Authentication extractors: `Authorization: Bearer TOKEN`, or HTTP Basic with the user name and the
//! token as password (what TAXII clients speak). Both yield a [`Principal`]; failures are 401 with
//! `WWW-Authenticate`, as a TAXII error on TAXII routes and as `{"error": …}` on the REST API.
//!
//! On TAXII routes a declared peer node may also call with `Authorization: Kopa-Node <node-id>
//! <unix-seconds> <signature>` (see `kopa_federation::request_auth`): it is then a
//! [`Caller::Peer`], which reads as its export policy and may push. The REST API refuses peers (403).
//!
//! Failed authentications of users are counted per client address and per token id (see
//! [`crate::throttle`]); past the allowance every user authentication from that address or with that
//! token is refused with 429 and `Retry-After` before any credential is checked. Each refusal is
//! logged with the client address and, for tokens in Kopa's form, the public token id; never a
//! secret. A request without any `Authorization` is not counted, nor is a peer's `Kopa-Node`
//! signature (which cannot be guessed; a failed one is logged).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use kopa_core::{Principal, Reader};
use kopa_federation::request_auth::{claimed_node, is_node_auth, verify_request};
use kopa_federation::{ExportPolicy, NodeId};

use crate::error::{ApiError, TaxiiError};
use crate::throttle::{retry_after_seconds, Key};
use crate::token::{authenticate_with, token_id, AuthError};
use crate::AppState;

/// A user authenticated on a TAXII route (peers are refused with 403).
pub struct TaxiiAuth(pub Principal);

/// Who calls a TAXII route: a user of this node, or a declared peer node.
#[derive(Debug, Clone)]
pub enum Caller {
    User(Principal),
    Peer(PeerCaller),
}

/// A declared peer node calling with `Kopa-Node` authorization.
#[derive(Debug, Clone)]
pub struct PeerCaller {
    /// The peer's local name (`kopa peer add NAME`).
    pub name: String,
    pub node_id: NodeId,
    /// What this node exports to it.
    pub policy: ExportPolicy,
    /// Its verified authorization: a POST's body must be the one it signed.
    pub signed: kopa_federation::request_auth::Signed,
}

impl Caller {
    /// Whom the store's reads are for: the user's audience, or the peer's export policy.
    pub fn reader(&self) -> Reader {
        match self {
            Caller::User(p) => p.reader(),
            Caller::Peer(peer) => {
                Reader::Peer(peer.policy.peer_audience(&peer.node_id.to_string()))
            }
        }
    }
}

/// A caller (user or peer) authenticated on a TAXII route.
pub struct TaxiiCaller(pub Caller);

/// A caller authenticated on a REST route.
pub struct ApiAuth(pub Principal);

/// The client address of the request (`unknown` when the server runs without connection info).
pub struct Origin(pub String);

enum Failure {
    Unauthenticated(String),
    /// Too many failed authentications from this address or for this token: wait this long.
    Throttled(Duration),
    /// A peer node on a route for users only.
    PeerRefused,
    Internal(String),
}

/// The client's address, when the server runs with connection info.
fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip())
}

fn shown(client: Option<IpAddr>) -> String {
    client.map_or_else(|| "unknown".into(), |ip| ip.to_string())
}

/// Refuse at once when the client address or the token has used up its allowance of failures.
fn check_throttle(
    state: &AppState,
    client: Option<IpAddr>,
    token: Option<&str>,
) -> Result<(), Failure> {
    let now = Instant::now();
    let throttle = state.throttle();
    let wait = client
        .map(Key::client)
        .into_iter()
        .chain(token.map(|t| Key::Token(t.to_string())))
        .filter_map(|k| throttle.blocked(&k, now))
        .max();
    match wait {
        None => Ok(()),
        Some(wait) => {
            tracing::info!(
                client = %shown(client),
                token_id = token.unwrap_or("-"),
                retry_after_seconds = retry_after_seconds(wait),
                "authentication refused: too many failed authentications"
            );
            Err(Failure::Throttled(wait))
        }
    }
}

/// Count a failed authentication against the client address and, when it named an existing token,
/// against that token; log it; the caller gets `message` (401).
fn refuse(
    state: &AppState,
    client: Option<IpAddr>,
    token: Option<&str>,
    reason: &str,
    message: &str,
) -> Failure {
    let now = Instant::now();
    if let Some(ip) = client {
        state.throttle().fail(Key::client(ip), now);
    }
    if let Some(t) = token {
        state.throttle().fail(Key::Token(t.to_string()), now);
    }
    tracing::info!(
        client = %shown(client),
        token_id = token.unwrap_or("-"),
        reason,
        "authentication refused"
    );
    Failure::Unauthenticated(message.to_string())
}

fn authorization(parts: &Parts) -> Result<&str, Failure> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        Failure::Unauthenticated("authentication required (Bearer token or HTTP Basic)".into())
    })?;
    value
        .to_str()
        .map_err(|_| Failure::Unauthenticated("malformed Authorization header".into()))
}

async fn caller(parts: &Parts, state: &AppState) -> Result<Caller, Failure> {
    let value = authorization(parts)?;
    if is_node_auth(value) {
        // A signature by a declared peer's key cannot be guessed: failures are logged, not counted,
        // and a peer is not refused because users at its address failed.
        match peer(parts, state, value).await {
            Err(Failure::Unauthenticated(why)) => {
                tracing::info!(
                    client = %shown(client_ip(parts)),
                    reason = %why,
                    "peer authentication refused"
                );
                Err(Failure::Unauthenticated(why))
            }
            result => result.map(Caller::Peer),
        }
    } else {
        principal(parts, state).await.map(Caller::User)
    }
}

/// Check a `Kopa-Node` authorization: signed by a declared peer's key, for this node, this method
/// and this path and query, at a time close to ours.
async fn peer(parts: &Parts, state: &AppState, value: &str) -> Result<PeerCaller, Failure> {
    // Logged by the caller.
    let refused = Failure::Unauthenticated;
    let Some(node) = state.node() else {
        return Err(refused(
            "this server has no node identity: Kopa-Node authorization is not accepted".into(),
        ));
    };
    let claimed = claimed_node(value).ok_or_else(|| {
        refused("malformed Kopa-Node authorization (expected 'Kopa-Node <node-id> <unix-seconds> <signature>')".into())
    })?;
    let (entry, known) = state
        .peers()
        .lookup(&claimed)
        .await
        .map_err(|e| Failure::Internal(e.to_string()))?;
    let Some(entry) = entry else {
        return Err(refused(format!(
            "node {claimed} is not a declared peer of this node"
        )));
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
    let now = state.clock().unix_seconds();
    let signed = verify_request(value, node.id(), parts.method.as_str(), target, &known, now)
        .map_err(|e| refused(e.to_string()))?;
    // Only a POST has a body (checked where it is read); the rest signed an empty one.
    if parts.method != axum::http::Method::POST {
        signed.check_body(b"").map_err(|e| refused(e.to_string()))?;
    }
    state
        .peers()
        .first_use(&signed, now)
        .map_err(|e| refused(e.to_string()))?;
    Ok(PeerCaller {
        name: entry.name,
        node_id: entry.node_id,
        policy: entry.policy,
        signed,
    })
}

async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, Failure> {
    let value = authorization(parts)?;
    if is_node_auth(value) {
        return Err(Failure::PeerRefused);
    }
    let client = client_ip(parts);
    check_throttle(state, client, None)?;
    let (token, user) = credentials(value).map_err(|why| refuse(state, client, None, why, why))?;
    let id = token_id(&token);
    check_throttle(state, None, id)?;
    match authenticate_with(
        state.store().as_ref(),
        Some(state.verified_tokens()),
        &token,
        user.as_deref(),
    )
    .await
    {
        Ok(p) => Ok(p),
        Err(AuthError::Store(e)) => Err(Failure::Internal(e.to_string())),
        Err(e) => Err(refuse(
            state,
            client,
            id.filter(|_| e.token_exists()),
            &e.to_string(),
            "invalid credentials (unknown, wrong or revoked token)",
        )),
    }
}

/// The token and (HTTP Basic) the user name of an `Authorization` value.
fn credentials(value: &str) -> Result<(String, Option<String>), &'static str> {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    let (token, user) = if scheme.eq_ignore_ascii_case("bearer") {
        (rest.to_string(), None)
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("malformed HTTP Basic credentials")?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or("malformed HTTP Basic credentials")?;
        (password.to_string(), Some(user.to_string()))
    } else {
        return Err("unsupported authorization scheme (use Bearer or Basic)");
    };
    if token.is_empty() {
        return Err("empty token");
    }
    Ok((token, user))
}

fn throttled_message(wait: Duration) -> String {
    format!(
        "too many failed authentications from this address or for this token; retry in {} s",
        retry_after_seconds(wait)
    )
}

impl FromRequestParts<AppState> for TaxiiAuth {
    type Rejection = TaxiiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match caller(parts, state).await {
            Ok(Caller::User(p)) => Ok(TaxiiAuth(p)),
            Ok(Caller::Peer(_)) => Err(taxii_rejection(Failure::PeerRefused)),
            Err(f) => Err(taxii_rejection(f)),
        }
    }
}

fn taxii_rejection(f: Failure) -> TaxiiError {
    match f {
        Failure::PeerRefused => TaxiiError::forbidden(
            "peer nodes may read and push TAXII objects only; this needs a user",
        ),
        Failure::Unauthenticated(m) => TaxiiError::unauthorized(m),
        Failure::Throttled(wait) => {
            TaxiiError::too_many_requests(throttled_message(wait), retry_after_seconds(wait))
        }
        Failure::Internal(cause) => TaxiiError::internal(cause),
    }
}

impl FromRequestParts<AppState> for TaxiiCaller {
    type Rejection = TaxiiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        caller(parts, state)
            .await
            .map(TaxiiCaller)
            .map_err(taxii_rejection)
    }
}

fn api_rejection(f: Failure) -> ApiError {
    match f {
        Failure::Unauthenticated(m) => ApiError::new(axum::http::StatusCode::UNAUTHORIZED, m),
        Failure::Throttled(wait) => {
            ApiError::too_many_requests(throttled_message(wait), retry_after_seconds(wait))
        }
        Failure::PeerRefused => {
            ApiError::forbidden("peer nodes may not use the REST API; it is for this node's users")
        }
        Failure::Internal(cause) => ApiError::internal(cause),
    }
}

impl FromRequestParts<AppState> for ApiAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        principal(parts, state)
            .await
            .map(ApiAuth)
            .map_err(api_rejection)
    }
}

/// A caller (user or declared peer) on the few REST routes peers may use.
pub struct ApiCaller(pub Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        caller(parts, state)
            .await
            .map(ApiCaller)
            .map_err(api_rejection)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Origin(shown(client_ip(parts))))
    }
}
